"""The controllers' image: Debian bookworm (debootstrap minbase) with systemd and salt in
/opt/salt, cached in /var/cache/k8s-salt-lab/image-<recipe hash>.

keepalived and haproxy are NOT installed: the formula installs them (pkg.installed) and its
clean states purge them, as on a real host. The containers reach no package source, so the
image carries them, with the Debian packages they need that the image lacks, in a local apt
repository (/opt/lab-apt: the .debs and a Packages index), the image's only apt source.

The hash is computed from image_recipe() only: change what goes into the image there (or bump
RECIPE_VERSION) and the next `up` builds a new image; anything else reuses the cached one.
Also the host's own packages and the Debian archive it installs from (read at run time).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .common import (
    CACHE_DIR,
    CONTAINER_PATH,
    IFACE,
    MASTER_IP,
    LabError,
    apt_env,
    run,
    say,
    timed,
    write_file,
)
from .containers import container_image, running_containers

SUITE = "bookworm"
IMAGE_PYTHON = (3, 11)  # bookworm's python3: the salt wheels are built for it
SALT_VERSION = "3008.4"
RECIPE_VERSION = 2  # bump to force a rebuild for a change the recipe data below does not show
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "netbase",
    "python3",
    "python3-venv",
    "python3-yaml",
    "curl",
    "openssl",
    "procps",
    "iputils-ping",
    "ca-certificates",
    "libcap2-bin",
)
IMAGE_UNITS = (
    "lab-host0-rename.service",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
    "salt-minion.service",
)
# Not installed: offered by the image's local apt repository, with their dependency closure.
REPO_PACKAGES = ("keepalived", "haproxy")
REPO_DIR = "opt/lab-apt"
# nftables: faults.split_network drops a controller's lab traffic inside its namespace.
HOST_PACKAGES = (
    "systemd-container",
    "debootstrap",
    "iproute2",
    "openssl",
    "util-linux",
    "nftables",
)


# ---------------------------------------------------------------------------------------------
# host packages and package sources


def dpkg_installed(pkg: str) -> bool:
    proc = run(["dpkg-query", "-W", "-f=${Status}", pkg], check=False)
    return proc.returncode == 0 and proc.stdout.startswith("install ok installed")


def ensure_host_packages() -> None:
    missing = [p for p in HOST_PACKAGES if not dpkg_installed(p)]
    if missing:
        say(f"installing host packages: {' '.join(missing)}")
        run(["apt-get", "update", "-q"], env=apt_env())
        run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
            env=apt_env(),
        )


def _deb822_stanzas(text: str):
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields:
            yield fields


def debian_mirror() -> str:
    """The Debian archive this host installs from, read from its apt sources at run time."""
    candidates = []
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for st in _deb822_stanzas(path.read_text()):
            if "deb" not in st.get("types", "").split() or st.get("enabled", "yes") == "no":
                continue
            suites = st.get("suites", "").split()
            uris = st.get("uris", "").split()
            if uris and not all(s.endswith("-security") for s in suites):
                candidates.append((SUITE not in suites, uris[0]))
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and not m.group(2).endswith("-security"):
                candidates.append((m.group(2) != SUITE, m.group(1)))
    if not candidates:
        raise LabError("no Debian archive found in /etc/apt/sources.list{,.d/*}")
    return min(candidates, key=lambda c: c[0])[1]


# ---------------------------------------------------------------------------------------------
# the image


def image_files() -> dict[str, str]:
    """Files written into the image (path inside the image -> content). Part of the recipe hash."""
    return {
        "etc/systemd/system/salt-minion.service": """\
[Unit]
Description=Salt minion (the lab's pip install in /opt/salt)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=/opt/salt/bin/salt-minion
Restart=on-failure
RestartSec=1
LimitNOFILE=8192

[Install]
WantedBy=multi-user.target
""",
        "etc/systemd/system/lab-host0-rename.service": f"""\
[Unit]
Description=Lab: name the container's interface as the seed does ({IFACE})
DefaultDependencies=no
Before=systemd-networkd.service network-pre.target
Wants=network-pre.target
ConditionPathExists=/sys/class/net/host0

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/ip link set dev host0 down
ExecStart=/usr/sbin/ip link set dev host0 name {IFACE}

[Install]
WantedBy=sysinit.target
""",
        "etc/salt/minion.d/lab.conf": f"""\
# The lab's salt-master on the lab bridge. The minion id is the hostname
# (written per host to /etc/salt/minion_id).
master: {MASTER_IP}
acceptance_wait_time: 1
acceptance_wait_time_max: 2
random_reauth_delay: 0
enable_fqdns_grains: false
log_level_logfile: info
""",
        # Containers have no way out: the only package source is the image's own repository
        # (REPO_PACKAGES and what they need), so a refresh and an install stay offline.
        "etc/apt/sources.list": f"""\
# lab image: the local repository only (the lab has no way out)
deb [trusted=yes] file:/{REPO_DIR} ./
""",
    }


def image_recipe() -> dict:
    return {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "packages": IMAGE_PACKAGES,
        "repository": REPO_PACKAGES,
        "python": IMAGE_PYTHON,
        "salt": SALT_VERSION,
        "files": image_files(),
        "units": IMAGE_UNITS,
    }


def image_dir() -> Path:
    digest = hashlib.sha256(json.dumps(image_recipe(), sort_keys=True).encode()).hexdigest()
    return CACHE_DIR / f"image-{digest[:12]}"


def salt_wheels() -> Path:
    """Salt and its dependencies as wheels, built once on the host with the host's pip config.

    Building on the host keeps the compiler out of the image and the image build off the network:
    pip inside the image then installs from these wheels only (--no-index).
    """
    if sys.version_info[:2] != IMAGE_PYTHON:
        raise LabError(
            f"the lab builds salt wheels for the image's Python {IMAGE_PYTHON}; "
            f"run it with a Python {'.'.join(map(str, IMAGE_PYTHON))}"
        )
    tag = "cp{}{}".format(*IMAGE_PYTHON)
    dest = CACHE_DIR / f"wheels-salt-{SALT_VERSION}-{tag}"
    if (dest / ".complete").exists():
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=".wheels-", dir=CACHE_DIR))
    say(f"building salt=={SALT_VERSION} wheels with the host's pip configuration")
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", tmp, f"salt=={SALT_VERSION}"],
        timeout=1800,
    )
    (tmp / ".complete").write_text("")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    return dest


def chroot(root: Path, cmd: str, timeout: int = 900) -> None:
    env = {"PATH": CONTAINER_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    run(["chroot", root, "/bin/sh", "-ec", cmd], env=env, timeout=timeout)


def download_closure(root: Path, mirror: str, dest: Path) -> list[Path]:
    """The .debs `apt-get install REPO_PACKAGES` needs on the image at `root`, into `dest`.

    Debian computes the closure: the host's apt (its own configuration) resolves the install
    against the image's dpkg status instead of the host's, from the one archive and suite the
    image was debootstrapped from (so nothing the image holds gets upgraded by the install),
    and only downloads. Its lists, states and caches stay in a scratch directory: the host's
    own apt state is left alone.
    """
    scratch = Path(tempfile.mkdtemp(prefix=".apt-", dir=CACHE_DIR))
    (dest / "partial").mkdir(parents=True, exist_ok=True)
    (scratch / "lists" / "partial").mkdir(parents=True)
    keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")  # debootstrap's default
    signed = f"[signed-by={keyring}] " if keyring.exists() else ""
    (scratch / "sources.list").write_text(f"deb {signed}{mirror} {SUITE} main\n")
    options = [
        f"Dir::Etc::sourcelist={scratch}/sources.list",
        "Dir::Etc::sourceparts=-",
        f"Dir::State::lists={scratch}/lists",
        f"Dir::State::status={root}/var/lib/dpkg/status",
        f"Dir::State::extended_states={scratch}/extended_states",
        f"Dir::Cache::archives={dest}",
        "Dir::Cache::pkgcache=",
        "Dir::Cache::srcpkgcache=",
        "Debug::NoLocking=true",
    ]
    apt = ["apt-get", "-q", *(arg for o in options for arg in ("-o", o))]
    try:
        run([*apt, "update"], env=apt_env(), timeout=900)
        run([*apt, "install", "--download-only", "-y", *REPO_PACKAGES], env=apt_env(), timeout=900)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(dest / "partial", ignore_errors=True)
    debs = sorted(dest.glob("*.deb"))
    names = {run(["dpkg-deb", "-f", d, "Package"]).stdout.strip() for d in debs}
    if not set(REPO_PACKAGES) <= names:
        raise LabError(f"apt downloaded {sorted(names)}, not all of {REPO_PACKAGES}")
    return debs


def packages_index(repo: Path) -> str:
    """A flat repository's Packages file for the .debs in `repo` (what dpkg-scanpackages writes:
    the control fields, then Filename, Size and checksums)."""
    stanzas = []
    for deb in sorted(repo.glob("*.deb")):
        control = run(["dpkg-deb", "-f", deb]).stdout.rstrip("\n")
        data = deb.read_bytes()
        stanzas.append(
            f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    return "\n".join(stanzas)


def build_repository(root: Path, mirror: str) -> list[str]:
    """/opt/lab-apt in the image: REPO_PACKAGES and their closure, with a Packages index."""
    repo = root / REPO_DIR
    debs = download_closure(root, mirror, repo)
    for path in (repo, *debs):  # apt downloads as its own user, whose id the image may not know
        os.chown(path, 0, 0)
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    write_file(repo / "Packages", packages_index(repo))
    return [d.name for d in debs]


def build_image(dest: Path) -> None:
    """debootstrap the recipe into a temporary directory, then rename it into place."""
    mirror = debian_mirror()
    wheels = salt_wheels()
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{dest.name}-", dir=CACHE_DIR))
    debs = CACHE_DIR / "debootstrap-debs"
    debs.mkdir(exist_ok=True)
    try:
        say(f"debootstrap {SUITE} (minbase + {len(IMAGE_PACKAGES)} packages)")
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(IMAGE_PACKAGES)}",
                f"--cache-dir={debs}",
                SUITE,
                tmp,
                mirror,
            ],
            timeout=1800,
        )
        say(f"installing salt=={SALT_VERSION} into /opt/salt (a venv of the image's python3)")
        shutil.copytree(wheels, tmp / "tmp" / "salt-wheels")
        chroot(
            tmp,
            "python3 -m venv /opt/salt && /opt/salt/bin/pip install -q --no-index"
            " --disable-pip-version-check --root-user-action=ignore"
            f" --find-links /tmp/salt-wheels salt=={SALT_VERSION}",
        )
        shutil.rmtree(tmp / "tmp" / "salt-wheels")
        for rel, text in image_files().items():
            write_file(tmp / rel, text)
        chroot(tmp, f"systemctl enable {' '.join(IMAGE_UNITS)}")
        offered = build_repository(tmp, mirror)
        say(f"/{REPO_DIR}: {len(offered)} packages for {', '.join(REPO_PACKAGES)} (not installed)")
        # the repository offers what it must and the image does not hold it yet
        chroot(tmp, "apt-get update -q >/dev/null")
        chroot(
            tmp,
            f"apt-get install -s -q {' '.join(REPO_PACKAGES)} | grep -q '^Inst '"
            f" && ! dpkg-query -W {' '.join(REPO_PACKAGES)} >/dev/null 2>&1",
        )
        # facts.md: an empty machine-id (systemd then takes the one nspawn passes), no hostname
        # (then -M NAME sets it).
        (tmp / "etc" / "machine-id").write_text("")
        (tmp / "etc" / "hostname").unlink(missing_ok=True)
        for sub in ("var/lib/apt/lists", "var/cache/apt"):
            for p in (tmp / sub).glob("*"):
                if (p.is_symlink() or p.is_file()) and p.name != "lock":
                    p.unlink()
                elif p.is_dir() and p.name not in ("partial", "archives"):
                    shutil.rmtree(p)
        for p in (tmp / "var/cache/apt/archives").glob("*.deb"):
            p.unlink()
        (tmp / ".lab-recipe.json").write_text(json.dumps(image_recipe(), indent=1, sort_keys=True))
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_image() -> Path:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    dest = image_dir()
    if dest.is_dir():
        with timed("image (cached)"):
            say(f"image: {dest} (cached)")
    else:
        with timed("image (cold build)"):
            build_image(dest)
            say(f"image: {dest} (built)")
    in_use = {container_image(name) for name in running_containers()}
    for old in CACHE_DIR.glob("image-*"):
        if old != dest and str(old) not in in_use:
            say(f"removing an image of an older recipe: {old}")
            shutil.rmtree(old, ignore_errors=True)
    return dest
