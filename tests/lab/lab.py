"""The lab: three seed-like controllers as systemd-nspawn containers, with one command.

What `up` builds (every step idempotent; on a running lab it reuses what runs and converges):

* a Debian bookworm image (debootstrap minbase + systemd, keepalived, haproxy, salt in
  /opt/salt), cached outside the repository in /var/cache/k8s-salt-lab/image-<recipe hash>,
  rebuilt only when the recipe changes (built in a temporary directory, renamed into place);
* a network namespace `k8slab` holding the bridge `k8sbr0` (10.240.0.1/24). The lab's
  salt-master and binary mirror listen there; the root namespace never gets an address or
  route in the lab subnet, and nothing in the namespace has a way out of it;
* three containers k8s-controller-1..3 (systemd as PID 1) sharing the read-only image through
  a per-host overlay, each in its own cgroup, each with `enp0s8` carrying the seed's address;
* a salt-master (from the venv of the Python running this file) with the repository's state
  tree and pillar, plus the lab's own pillar root (lab settings and generated secrets);
* a binary mirror laid out like the official release location (v<version>/bin/linux/amd64/<name>
  with <name>.sha256 beside it): real etcd/etcdctl from Debian's etcd-server/etcd-client, real
  kubectl from Debian's kubernetes-client (kubectl 1.20.2, served under the pillar's Kubernetes
  version path, v1.18.6 for the seed), and the test doubles (tests/doubles/kube_double.py,
  stamped with the pillar's version) as kube-apiserver, kube-controller-manager, kube-scheduler;
* the PKI the seed's files need (tests/support/pki.py), fed through pillar as an operator would.

Then it runs `salt-run state.orchestrate orch.control_plane` and prints the seed's checks.

Host layout (nothing of it inside the repository):

    /var/cache/k8s-salt-lab/     image-<hash>, salt wheels, Debian packages (kept by `down`)
    /var/lib/k8s-salt-lab/pki    the lab's CA, certificates, kubeconfigs (kept by `down`)
    /var/lib/k8s-salt-lab/log    master, mirror, container, orchestration logs (kept by `down`)
    /var/lib/k8s-salt-lab/...    master, pillar, mirror, hosts, run: removed by `down`

The facts this follows were measured on this machine kind (design/facts.md): nspawn needs
`--register=no --keep-unit` (PID 1 of the host is not systemd), one cgroup per container, an
empty /etc/machine-id and no /etc/hostname in the image; commands run inside through nsenter.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # labctl.py runs this file outside pytest
    sys.path.insert(0, str(REPO))
from tests.support import pki as support_pki  # noqa: E402 - the project's secrets-file writer

LAB = "k8s-salt-lab"
CACHE_DIR = Path("/var/cache") / LAB
STATE_DIR = Path("/var/lib") / LAB
PKI_DIR = STATE_DIR / "pki"
LOG_DIR = STATE_DIR / "log"
MASTER_DIR = STATE_DIR / "master"  # the master's config dir and root_dir (short: socket paths)
PILLAR_DIR = STATE_DIR / "pillar"
MIRROR_DIR = STATE_DIR / "mirror"
HOSTS_DIR = STATE_DIR / "hosts"
RUN_DIR = STATE_DIR / "run"
KEEP_ON_DOWN = ("pki", "log")

NETNS = "k8slab"
NETNS_PATH = Path("/run/netns") / NETNS
BRIDGE = "k8sbr0"
LAB_NET = ipaddress.ip_network("10.240.0.0/24")
MASTER_IP = "10.240.0.1"
MIRROR_PORT = 8080
MIRROR_URL = f"http://{MASTER_IP}:{MIRROR_PORT}"
IFACE = "enp0s8"
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))

SUITE = "bookworm"
IMAGE_PYTHON = (3, 11)  # bookworm's python3: the salt wheels are built for it
SALT_VERSION = "3008.4"
RECIPE_VERSION = 1  # bump to force a rebuild for a change the recipe data below does not show
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "netbase",
    "python3",
    "python3-venv",
    "python3-yaml",
    "keepalived",
    "haproxy",
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
HOST_PACKAGES = ("systemd-container", "debootstrap", "iproute2", "openssl", "util-linux")
MIRROR_DEBS = ("etcd-server", "etcd-client", "kubernetes-client")
DOUBLES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HEALTHZ_HOST = "kubernetes.default.svc.cluster.local"

TIMINGS: dict[str, float] = {}
_CHILDREN: list[subprocess.Popen] = []  # kept so that processes we start can be reaped


class LabError(RuntimeError):
    """A lab step failed; the message says which and why."""


# ---------------------------------------------------------------------------------------------
# small helpers


def say(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


@contextlib.contextmanager
def timed(phase: str):
    """Record how long a phase took in TIMINGS (printed at the end of `up`)."""
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS[phase] = time.monotonic() - start


def run(
    argv, *, check=True, capture=True, timeout=None, env=None, input=None, cwd=None
) -> subprocess.CompletedProcess:
    """Run a command; on failure raise LabError with the command and the tail of its output."""
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            argv,
            check=False,
            text=True,
            capture_output=capture,
            timeout=timeout,
            env=env,
            input=input,
            cwd=cwd,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {shlex.join(argv)}") from exc
    if check and proc.returncode != 0:
        out = ((proc.stdout or "") + (proc.stderr or "")).strip()[-3000:]
        raise LabError(f"exit {proc.returncode}: {shlex.join(argv)}\n{out}")
    return proc


def poll(what: str, func, timeout: float, interval: float = 0.2):
    """Call func until it returns something truthy; bounded, no fixed sleeps beyond the interval."""
    deadline = time.monotonic() + timeout
    while True:
        value = func()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def write_file(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write text atomically when it differs; return True when the file changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        os.chmod(path, mode)
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def salt_bin(name: str) -> Path:
    """A salt command from the venv of the Python running the lab (not resolved: venvs symlink)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise LabError(f"{path} not found: run the lab with the venv's python (make lab)")
    return path


class _Lock:
    """One lab per machine: `up`, `down` and the test session take this lock (re-entrant)."""

    depth = 0
    fd: int | None = None

    @classmethod
    @contextlib.contextmanager
    def held(cls, timeout: float = 3600):
        if cls.depth == 0:
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            fd = os.open(CACHE_DIR / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            deadline, told = time.monotonic() + timeout, False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(fd)
                        msg = f"another lab run held {CACHE_DIR}/.lock for {timeout}s"
                        raise LabError(msg) from None
                    if not told:
                        say(f"waiting for another lab run to finish ({CACHE_DIR}/.lock)")
                        told = True
                    time.sleep(1)
            cls.fd = fd
        cls.depth += 1
        try:
            yield
        finally:
            cls.depth -= 1
            if cls.depth == 0:
                os.close(cls.fd)  # releases the lock
                cls.fd = None


exclusive = _Lock.held


# ---------------------------------------------------------------------------------------------
# the cluster as the repository's pillar describes it


@functools.cache
def cluster() -> dict:
    """The seed's cluster file (pillar/hardway.sls), read once as data: the lab follows it."""
    data = yaml.safe_load((REPO / "pillar" / "hardway.sls").read_text())["k8s_control_plane"]
    for addr in [data["vip"]["address"], *(c["address"] for c in data["controllers"])]:
        if ipaddress.ip_address(addr) not in LAB_NET:
            raise LabError(f"{addr} is outside the lab network {LAB_NET}: the lab refuses it")
    return data


def controllers() -> dict[str, str]:
    return {c["id"]: c["address"] for c in cluster()["controllers"]}


def vip() -> str:
    return cluster()["vip"]["address"]


def kube_version() -> str:
    return str(cluster()["kubernetes"]["version"]).lstrip("v")


def hosts_file() -> str:
    c = cluster()
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
        "",
        "# the seed's controllers and their VIP",
        f"{c['vip']['address']}\t{c['vip'].get('hostname', 'k8s-controller')}",
    ]
    lines += [f"{ctl['address']}\t{ctl['id']}" for ctl in c["controllers"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# host packages and package sources


def dpkg_installed(pkg: str) -> bool:
    proc = run(["dpkg-query", "-W", "-f=${Status}", pkg], check=False)
    return proc.returncode == 0 and proc.stdout.startswith("install ok installed")


def apt_env() -> dict:
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


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
        # Containers have no way out: apt must find nothing to fetch (pkg states find the
        # packages already installed, and a refresh finds no source to fail on).
        "etc/apt/sources.list": "# lab image: no package sources (the lab has no way out)\n",
    }


def image_recipe() -> dict:
    return {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "packages": IMAGE_PACKAGES,
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
        # facts.md: an empty machine-id (systemd then takes the one nspawn passes), no hostname
        # (then -M NAME sets it).
        (tmp / "etc" / "machine-id").write_text("")
        (tmp / "etc" / "hostname").unlink(missing_ok=True)
        for sub in ("var/lib/apt/lists", "var/cache/apt"):
            for p in (tmp / sub).glob("*"):
                if p.is_file() and p.name != "lock":
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


# ---------------------------------------------------------------------------------------------
# PKI: tests/support/pki.py, created once per lab and reused


def ensure_pki() -> dict:
    """
    The lab's secrets (CA, certificates, keys, kubeconfigs, encryption key) for
    the seed's cluster, kept in /var/lib/k8s-salt-lab/pki (0700) and made anew
    only when the cluster file changes (addresses, VIP, service CIDR).
    """
    cluster_file = REPO / "pillar" / "hardway.sls"
    generator = Path(support_pki.__file__)
    digest = hashlib.sha256(cluster_file.read_bytes() + generator.read_bytes()).hexdigest()
    cached = PKI_DIR / "secrets.yaml"
    stamp = PKI_DIR / ".cluster-sha256"
    if cached.exists() and stamp.exists() and stamp.read_text() == digest:
        say(f"pki: {PKI_DIR} (reused)")
        return yaml.safe_load(cached.read_text())
    say(f"pki: creating a CA and certificates in {PKI_DIR}")
    PKI_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(PKI_DIR, 0o700)
    secrets_ = support_pki.secrets_for_cluster_file(cluster_file)
    write_file(cached, yaml.safe_dump(secrets_), 0o600)
    stamp.write_text(digest)
    return secrets_


# ---------------------------------------------------------------------------------------------
# pillar


@functools.cache
def etcd_version() -> str:
    """The version of Debian's etcd the mirror serves (Debian revision stripped)."""
    deb = _download_debs()["etcd-server"]
    ver = run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip()
    return re.sub(r"^\d+:", "", ver).split("-")[0].split("+")[0]


def lab_pillar() -> dict:
    return {
        "k8s_control_plane": {
            "kubernetes": {"release_url": MIRROR_URL},
            "etcd": {"managed": True, "version": etcd_version(), "release_url": MIRROR_URL},
        }
    }


def ensure_pillar(secrets_: dict) -> None:
    """The lab's pillar root: its own top, the lab settings and the generated secrets."""
    PILLAR_DIR.mkdir(parents=True, exist_ok=True)
    top = {"base": {"k8s-controller-*": ["hardway", "hardway-secrets", "lab", "overrides"]}}
    write_file(
        PILLAR_DIR / "top.sls",
        "# The lab's pillar top (pillar_roots: this dir first, then the repository's pillar/).\n"
        + yaml.safe_dump(top, sort_keys=False),
    )
    write_file(
        PILLAR_DIR / "lab.sls",
        "# Lab settings: the local binary mirror and a managed etcd on the controllers.\n"
        + yaml.safe_dump(lab_pillar(), sort_keys=False),
    )
    support_pki.write_secrets_sls(PILLAR_DIR / "hardway-secrets.sls", secrets_)  # 0600
    set_overrides(None)


def set_overrides(data: dict | None) -> None:
    """
    Pillar merged over everything else (bench/ switches profiles with it); `up`
    resets it, so the lab runs the seed's pillar unchanged. Refresh the
    minions' pillar after a change.
    """
    write_file(
        PILLAR_DIR / "overrides.sls",
        "# Temporary overrides (bench/); emptied by every `up`.\n"
        + yaml.safe_dump({"k8s_control_plane": data or {}}, sort_keys=False),
    )


# ---------------------------------------------------------------------------------------------
# the binary mirror


def _download_debs() -> dict[str, Path]:
    """Debian's etcd and kubectl packages, fetched with apt-get download into the cache."""
    dest = CACHE_DIR / "debs"
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for pkg in MIRROR_DEBS:
        debs = sorted(dest.glob(f"{pkg}_*.deb"))
        if debs:
            found[pkg] = debs[-1]
    missing = [p for p in MIRROR_DEBS if p not in found]
    if missing:
        say(f"apt-get download {' '.join(missing)}")
        argv = ["apt-get", "download", *missing]
        if run(argv, check=False, env=apt_env(), cwd=dest).returncode != 0:
            run(["apt-get", "update", "-q"], env=apt_env())
            run(argv, env=apt_env(), cwd=dest)
        return _download_debs()
    return found


def _extracted(pkg: str) -> Path:
    deb = _download_debs()[pkg]
    root = CACHE_DIR / "debs" / deb.stem
    if not root.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=".x-", dir=root.parent))
        run(["dpkg-deb", "-x", deb, tmp])
        os.rename(tmp, root)
    return root


def _publish(src_bytes: bytes, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(src_bytes).hexdigest()
    sha = dest.with_name(dest.name + ".sha256")
    if dest.exists() and sha.exists() and sha.read_text().strip() == digest:
        return
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(src_bytes)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    write_file(sha, digest + "\n")


def stamp_double(text: str, version: str) -> str:
    """The double's source with its version set (the double's own stamp() when it has one)."""
    double = REPO / "tests" / "doubles" / "kube_double.py"
    stamp = None
    with contextlib.suppress(Exception):  # an unloadable double falls back to the regex below
        import importlib.util

        spec = importlib.util.spec_from_file_location("_kube_double_for_lab", double)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        stamp = module.stamp
    if stamp is not None:
        return stamp(text, version)
    new, n = re.subn(
        r'^DOUBLE_VERSION = "[^"]*"', f'DOUBLE_VERSION = "{version}"', text, flags=re.MULTILINE
    )
    if n != 1:
        raise LabError(f"{double}: no DOUBLE_VERSION line to stamp")
    return new


def ensure_mirror_files() -> None:
    """Lay the mirror out like the official release location, with .sha256 beside each file."""
    version = kube_version()
    kdir = MIRROR_DIR / f"v{version}" / "bin" / "linux" / "amd64"
    # kubectl: Debian's kubernetes-client (1.20.2), served under the pillar's version path.
    _publish((_extracted("kubernetes-client") / "usr/bin/kubectl").read_bytes(), kdir / "kubectl")
    double = REPO / "tests" / "doubles" / "kube_double.py"
    if double.exists():
        text = stamp_double(double.read_text(), version).encode()
        for name in DOUBLES:
            _publish(text, kdir / name)
    else:
        say(f"WARNING: {double} does not exist yet: the mirror serves no control-plane doubles")
    edir = MIRROR_DIR / f"v{etcd_version()}" / "bin" / "linux" / "amd64"
    _publish((_extracted("etcd-server") / "usr/bin/etcd").read_bytes(), edir / "etcd")
    _publish((_extracted("etcd-client") / "usr/bin/etcdctl").read_bytes(), edir / "etcdctl")


# ---------------------------------------------------------------------------------------------
# processes the lab starts (pid files in RUN_DIR; verified against /proc before any signal)


def _proc_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our own exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pid_of(role: str) -> int | None:
    """The pid recorded for a role, when that process still runs the recorded command."""
    path = RUN_DIR / f"{role}.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = rec["pid"]
    if _proc_alive(pid) and rec["marker"] in _cmdline(pid):
        return pid
    return None


def _spawn(role: str, argv: list, marker: str, cgroup: str | None = None) -> int:
    """Start a long-running process detached from us, logging to LOG_DIR/<role>.log."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if cgroup:  # join the cgroups first, then exec: nothing runs outside them
        procs = " ".join(f"{root / cgroup / 'cgroup.procs'}" for root in CGROUP_ROOTS)
        join = f'for f in {procs}; do echo $$ > "$f"; done; exec "$@"'
        argv = ["/bin/sh", "-ec", join, "sh", *argv]
    out = open(LOG_DIR / f"{role}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [str(a) for a in argv],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    _CHILDREN.append(proc)
    write_file(RUN_DIR / f"{role}.json", json.dumps({"pid": proc.pid, "marker": marker}))
    return proc.pid


def _stop(role: str, timeout: float = 20, group: bool = False) -> None:
    """SIGTERM the recorded process (or its process group), SIGKILL after a bounded wait."""
    pid = _pid_of(role)
    if pid is not None:
        kill = (lambda s: os.killpg(pid, s)) if group else (lambda s: os.kill(pid, s))
        with contextlib.suppress(ProcessLookupError):
            kill(signal.SIGTERM)
        try:
            poll(f"{role} to exit", lambda: not _proc_alive(pid), timeout, 0.1)
        except LabError:
            say(f"{role} (pid {pid}) ignored SIGTERM for {timeout}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                kill(signal.SIGKILL)
            poll(f"{role} to die", lambda: not _proc_alive(pid), 10, 0.1)
        if group:
            poll(f"{role}'s process group to exit", lambda: not _group_members(pid), 10, 0.1)
    (RUN_DIR / f"{role}.json").unlink(missing_ok=True)


def _group_members(pgid: int) -> list[int]:
    members = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    members.append(int(d.name))
    return members


def in_netns(argv: list) -> list:
    """argv run in the lab's network namespace only (no other namespace changes)."""
    return ["nsenter", f"--net={NETNS_PATH}", "--", *argv]


# ---------------------------------------------------------------------------------------------
# network namespace and bridge


def netns_exists() -> bool:
    return NETNS_PATH.exists() and NETNS in run(["ip", "netns", "list"]).stdout.split()


def ensure_netns() -> None:
    if not netns_exists():
        run(["ip", "netns", "add", NETNS])
    ns = ["ip", "-n", NETNS]
    run([*ns, "link", "set", "lo", "up"])
    if run([*ns, "link", "show", BRIDGE], check=False).returncode != 0:
        run([*ns, "link", "add", BRIDGE, "type", "bridge"])
    addrs = run([*ns, "-4", "-o", "addr", "show", "dev", BRIDGE]).stdout
    if f"{MASTER_IP}/{LAB_NET.prefixlen}" not in addrs:
        run([*ns, "addr", "add", f"{MASTER_IP}/{LAB_NET.prefixlen}", "dev", BRIDGE])
    run([*ns, "link", "set", BRIDGE, "up"])
    check_root_namespace()


def root_namespace_leaks() -> list[str]:
    """Lines of the root namespace's addresses and routes that touch the lab subnet."""
    leaks = []
    for argv in (["ip", "-4", "-o", "addr"], ["ip", "-4", "route", "show", "table", "all"]):
        for line in run(argv).stdout.splitlines():
            for word in re.findall(r"\d+\.\d+\.\d+\.\d+(?:/\d+)?", line):
                net = ipaddress.ip_network(word, strict=False)
                if net.overlaps(LAB_NET) and net.prefixlen > 0:
                    leaks.append(line.strip())
    return leaks


def check_root_namespace() -> None:
    leaks = root_namespace_leaks()
    if leaks:
        raise LabError("the root namespace has lab addresses/routes: " + "; ".join(leaks))


# ---------------------------------------------------------------------------------------------
# salt-master and the mirror server


def master_config() -> str:
    conf = {
        "id": "lab-master",
        "interface": MASTER_IP,
        # salt prepends root_dir to every path not under it: root_dir is the lab's state dir
        "root_dir": str(STATE_DIR),
        "pki_dir": str(MASTER_DIR / "pki"),
        "cachedir": str(MASTER_DIR / "cache"),
        "sock_dir": str(MASTER_DIR / "sock"),
        "pidfile": str(MASTER_DIR / "salt-master.pid"),
        "sqlite_queue_dir": str(MASTER_DIR / "cache" / "queues"),
        "user": "root",
        "log_file": str(LOG_DIR / "master.log"),
        "key_logfile": str(LOG_DIR / "master-key.log"),
        "log_level_logfile": "info",
        "auto_accept": False,
        "timeout": 10,
        # salt/ only: _modules and _states are reached through its symlinks.
        "file_roots": {"base": [str(REPO / "salt")]},
        "pillar_roots": {"base": [str(PILLAR_DIR), str(REPO / "pillar")]},
    }
    return "# The lab's salt-master (tests/lab/lab.py).\n" + yaml.safe_dump(conf, sort_keys=False)


def _tcp_open_in_netns(port: int) -> bool:
    code = f"import socket; socket.create_connection(('{MASTER_IP}', {port}), 1).close()"
    return run(in_netns([sys.executable, "-c", code]), check=False).returncode == 0


def ensure_master() -> None:
    changed = write_file(MASTER_DIR / "master", master_config())
    pid = _pid_of("salt-master")
    if pid and changed:
        say("salt-master config changed: restarting it")
        _stop("salt-master", group=True)
        pid = None
    if pid is None:
        argv = [salt_bin("salt-master"), "-c", MASTER_DIR, "-l", "warning"]
        _spawn("salt-master", in_netns(argv), marker=f"salt-master -c {MASTER_DIR}")
    poll("the salt-master to listen on 4506", lambda: _tcp_open_in_netns(4506), 60, 0.2)
    wait_master_workers_loaded()
    say(f"salt-master on {MASTER_IP} (config {MASTER_DIR}/master, log {LOG_DIR}/master.log)")


BROKEN_WORKER = "failed to load modules, worker will be non-functional"


def _worker_cpu(pgid: int) -> tuple[int, int]:
    """(number of MWorker processes, their summed CPU ticks) in the master's process group."""
    count = ticks = 0
    for pid in _group_members(pgid):
        if "MWorker-" in _cmdline(pid):
            with contextlib.suppress(OSError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                count, ticks = count + 1, ticks + int(fields[11]) + int(fields[12])
    return count, ticks


def wait_master_workers_loaded(timeout: float = 90) -> None:
    """Wait until the master's workers finished loading their modules (they go quiet).

    salt 3008.4 loads each MWorker's modules in a background thread while the worker already
    answers minion authentication; an authentication during that load can race it
    (importlib.invalidate_caches -> KeyError) and leave the worker broken for good ("worker
    will be non-functional", its requests then get no answer). So the lab lets the workers
    finish loading before any minion starts, and checks the log afterwards (master_healthy).
    """
    pgid = _pid_of("salt-master")
    samples: list[tuple[int, int]] = []

    def quiet():
        samples.append(_worker_cpu(pgid))
        last = samples[-4:]
        return len(last) == 4 and last[0][0] > 0 and len(set(last)) == 1

    poll("the salt-master's workers to load their modules", quiet, timeout, 0.25)


def master_healthy() -> bool:
    log = LOG_DIR / "master.log"
    return not (log.exists() and BROKEN_WORKER in log.read_text(errors="replace"))


def ensure_mirror_server() -> None:
    if _pid_of("mirror") is None:
        argv = [
            sys.executable, "-m", "http.server", MIRROR_PORT, "--bind", MASTER_IP,
            "--directory", MIRROR_DIR,
        ]  # fmt: skip
        _spawn("mirror", in_netns(argv), marker=f"--directory {MIRROR_DIR}")
    poll("the mirror to listen", lambda: _tcp_open_in_netns(MIRROR_PORT), 30, 0.1)
    say(f"binary mirror on {MIRROR_URL} serving {MIRROR_DIR}")


def salt_cmd(argv: list, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    """Run salt / salt-run / salt-key / salt-call against the lab master (in the lab netns)."""
    prog, *rest = [str(a) for a in argv]
    return run(in_netns([salt_bin(prog), "-c", MASTER_DIR, *rest]), timeout=timeout, check=check)


def salt_json(argv: list, timeout: float = 600):
    """A salt command with --out=json parsed; returns (data or None, CompletedProcess)."""
    proc = salt_cmd([*argv, "--out=json"], timeout=timeout)
    return parse_json(proc.stdout), proc


def parse_json(text: str):
    """The JSON document in salt's output (salt may print a notice line before it), or None."""
    for match in re.finditer(r"^[{\[]", text, re.MULTILINE):
        with contextlib.suppress(ValueError):
            return json.JSONDecoder().raw_decode(text[match.start() :])[0]
    return None


# ---------------------------------------------------------------------------------------------
# containers


def _cgroup(name: str) -> str:
    return f"{LAB}/{name}"


def _make_cgroups(name: str) -> None:
    for root in CGROUP_ROOTS:
        (root / _cgroup(name)).mkdir(parents=True, exist_ok=True)


def _remove_cgroup_tree(path: Path) -> None:
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def _cgroup_pids(path: Path) -> list[int]:
    pids = []
    if path.is_dir():
        for procs in path.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids += [int(p) for p in procs.read_text().split()]
    return pids


def host_layer(name: str, address: str) -> dict[str, str]:
    """Per-host files, an overlay layer between the shared image and the host's upper dir."""
    return {
        f"etc/systemd/network/10-lab-{IFACE}.network": f"""\
[Match]
Name={IFACE}

[Network]
Address={address}/{LAB_NET.prefixlen}
LinkLocalAddressing=no
IPv6AcceptRA=no
""",
        "etc/salt/minion_id": name + "\n",
        "etc/hosts": hosts_file(),  # as the seed expects (the controllers and the VIP)
    }


def container_pid(name: str) -> int | None:
    return _pid_of(name)


def container_init(name: str) -> int | None:
    """PID (host view) of the container's PID 1: the descendant of nspawn that is PID 1 inside."""
    nspawn = container_pid(name)
    if nspawn is None:
        return None
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d.name))
    todo = list(children.get(nspawn, []))
    while todo:
        pid = todo.pop(0)
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            nspid = re.search(r"^NSpid:\s+(.*)$", status, re.MULTILINE).group(1).split()
            if len(nspid) > 1 and nspid[-1] == "1":
                return pid
        todo += children.get(pid, [])
    return None


def running_containers() -> list[str]:
    with contextlib.suppress(LabError, OSError, KeyError):
        return [n for n in controllers() if container_pid(n)]
    return []


def start_container(name: str, address: str, image: Path) -> bool:
    """Boot one controller unless it runs; return True when it was started fresh."""
    if container_pid(name):
        return False
    hdir = HOSTS_DIR / name
    shutil.rmtree(hdir, ignore_errors=True)  # fresh: no upper dir from an earlier life
    layer, upper = hdir / "layer", hdir / "upper"
    for rel, text in host_layer(name, address).items():
        write_file(layer / rel, text)
    upper.mkdir(parents=True)
    _make_cgroups(name)
    argv = [
        "systemd-nspawn", "--quiet", "--boot", f"--directory={image}",
        f"--overlay={image}:{layer}:{upper}:/", f"--machine={name}",
        "--register=no", "--keep-unit", f"--network-bridge={BRIDGE}",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
    ]  # fmt: skip
    _spawn(name, in_netns(argv), marker=f"--machine={name}", cgroup=_cgroup(name))
    return True


def container_image(name: str) -> str | None:
    """The image a running container was started from (its --directory)."""
    pid = container_pid(name)
    match = re.search(r"--directory=(\S+)", _cmdline(pid)) if pid else None
    return match.group(1) if match else None


def in_container(name: str, cmd: str) -> list[str]:
    pid1 = container_init(name)
    if pid1 is None:
        raise LabError(f"{name} is not running (make lab)")
    env = [f"PATH={CONTAINER_PATH}", "HOME=/root", "LANG=C.UTF-8"]
    env.append(f"TERM={os.environ.get('TERM', 'dumb')}")
    return [
        "nsenter", "-t", str(pid1), "-m", "-p", "-u", "-i", "-n", "--",
        "/usr/bin/env", "-i", *env, "/bin/sh", "-c", cmd,
    ]  # fmt: skip


def cexec(name: str, cmd: str, timeout: float = 120, check: bool = False, input=None):
    """Run a shell command inside a controller; returns the CompletedProcess (text)."""
    return run(in_container(name, cmd), timeout=timeout, check=check, input=input)


def wait_booted(name: str, timeout: float = 180) -> str:
    poll(f"{name}'s PID 1", lambda: container_init(name), 60, 0.1)

    def booted():
        # --wait blocks until boot finishes; before systemd's bus is up it prints nothing: retry
        out = cexec(name, "systemctl is-system-running --wait", timeout=timeout).stdout.strip()
        if out in ("maintenance", "stopping"):
            raise LabError(f"{name} did not boot: {out}")
        return out if out in ("running", "degraded") else None

    state = poll(f"{name} to boot", booted, timeout, 0.2)
    if state == "degraded":
        failed = cexec(name, "systemctl --failed --no-legend --plain").stdout.strip()
        say(f"WARNING: {name} booted degraded: {failed}")
    return state


def vip_holders() -> list[str]:
    addr = vip()
    holders = []
    for name in controllers():
        out = cexec(name, f"ip -4 -o addr show dev {IFACE}").stdout
        if re.search(rf"inet {re.escape(addr)}/", out):
            holders.append(name)
    return holders


def wait_for_holders(expected: list[str], timeout: float) -> tuple[float, int]:
    """
    Poll (about every 50 ms, bounded) until exactly `expected` hold the VIP.
    Returns (seconds it took, the most holders seen at once).
    """
    start, most = time.monotonic(), 0
    while True:
        holders = vip_holders()
        most = max(most, len(holders))
        if holders == expected:
            return time.monotonic() - start, most
        if time.monotonic() - start > timeout:
            raise LabError(f"VIP holders {holders} after {timeout}s, expected {expected}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# keys


def accept_keys(names: list[str], timeout: float = 90) -> None:
    def pending():
        data, _ = salt_json(["salt-key", "-L"], timeout=30)
        if not data:
            return False
        accepted, waiting = set(data.get("minions", [])), set(data.get("minions_pre", []))
        if accepted >= set(names):
            return True
        if (accepted | waiting) >= set(names):  # accept them together, in one call
            if waiting <= set(names):
                salt_cmd(["salt-key", "-y", "-A"], check=True)
            else:  # not ours (the lab's master serves only the lab): leave them pending
                for name in waiting & set(names):
                    salt_cmd(["salt-key", "-y", "-a", name], check=True)
        return False

    poll("the controllers' keys", pending, timeout, 0.3)

    def answering():
        # manage.up with short timeouts: a minion that authenticates after a publish must not
        # cost a full gather_job_timeout round (10 s), as a plain `salt '*' test.ping` would
        argv = ["salt-run", "manage.up", "timeout=2", "gather_job_timeout=2"]
        data, _ = salt_json(argv, timeout=60)
        return isinstance(data, list) and set(names) <= set(data)

    def pinged():
        data, _ = salt_json(["salt", "--static", "-t", "5", "*", "test.ping"], timeout=60)
        return data and all(data.get(n) is True for n in names)

    poll("every controller to answer", answering, timeout, 0.3)
    poll("test.ping from every controller", pinged, timeout, 0.5)


# ---------------------------------------------------------------------------------------------
# orchestration results


def _state_results(obj):
    """Yield (key, result) for every state result in a (nested) salt return."""
    if isinstance(obj, dict):
        for key, val in obj.items():
            if "_|-" in str(key) and isinstance(val, dict) and "result" in val:
                yield key, val
            else:
                yield from _state_results(val)


def orchestration_report(data) -> dict:
    """Summarise `salt-run state.orchestrate --out=json`: steps, failures, changes.

    Changes are counted per state on the minions (nested under each salt.state step);
    salt.function and salt.runner steps always return their output as "changes", so they
    are listed apart (function_steps), not counted.
    """
    report = {"ok": False, "steps": [], "errors": [], "state_changes": [], "function_steps": []}
    if not isinstance(data, dict):
        report["errors"].append(f"no JSON result: {data!r}"[:2000])
        return report
    body = data.get("data", data)
    results = {}
    for master_id, steps in body.items() if isinstance(body, dict) else []:
        if isinstance(steps, list):
            report["errors"] += [f"{master_id}: {e}" for e in steps]
        elif isinstance(steps, dict):
            results.update(steps)
    for key, step in sorted(results.items(), key=lambda kv: kv[1].get("__run_num__", 0)):
        if not isinstance(step, dict):
            report["errors"].append(f"{key}: {step}")
            continue
        fun = key.split("_|-")[-1] if "_|-" in key else "?"
        entry = {
            "id": step.get("__id__", key),
            "fun": fun,
            "result": step.get("result"),
            "comment": str(step.get("comment", "")),
            "duration_ms": step.get("duration"),
        }
        report["steps"].append(entry)
        changes = step.get("changes") or {}
        if step.get("result") is not True:
            detail = f"\n  changes: {json.dumps(changes)[:2000]}" if changes else ""
            report["errors"].append(f"{entry['id']}: {entry['comment']}"[:3000] + detail)
        if fun in ("function", "runner"):
            if changes:
                report["function_steps"].append(entry["id"])
            continue
        nested = list(_state_results(changes.get("ret", {}))) if isinstance(changes, dict) else []
        if nested:
            report["state_changes"] += [
                f"{entry['id']}: {k}" for k, v in nested if v.get("changes")
            ]
        elif changes:
            report["state_changes"].append(f"{entry['id']}: {json.dumps(changes)[:300]}")
    report["ok"] = bool(report["steps"]) and not report["errors"] and data.get("retcode", 0) == 0
    return report


def orchestrate(timeout: float = 1800) -> tuple[dict, subprocess.CompletedProcess]:
    data, proc = salt_json(["salt-run", "state.orchestrate", "orch.control_plane"], timeout)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / "orchestrate.json").write_text(proc.stdout + proc.stderr)
    report = orchestration_report(data)
    if proc.returncode != 0 and report["ok"]:
        report["ok"] = False
        report["errors"].append(f"salt-run exited {proc.returncode}")
    if data is None:
        report["errors"].append((proc.stdout + proc.stderr).strip()[-3000:])
    return report, proc


def print_report(report: dict) -> None:
    for step in report["steps"]:
        mark = {True: "ok  ", False: "FAIL", None: "None"}.get(step["result"], "?")
        dur = step["duration_ms"]
        dur = f"{dur / 1000:6.1f}s" if isinstance(dur, (int, float)) else "      "
        first = step["comment"].strip().splitlines()[0:1]
        say(f"  {mark} {dur} {step['id']} ({step['fun']}) {first[0][:100] if first else ''}")
    for err in report["errors"]:
        say("  error: " + err.replace("\n", "\n         "))
    n = len(report["state_changes"])
    say(f"  {len(report['steps'])} steps, {n} state changes on the controllers")


# ---------------------------------------------------------------------------------------------
# up / down / status


def leftovers() -> list[str]:
    """What of the lab still exists on the host (empty after `down`); the image cache excepted."""
    found = []
    if NETNS in run(["ip", "netns", "list"]).stdout.split() or NETNS_PATH.exists():
        found.append(f"network namespace {NETNS}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if LAB in line or f"/run/netns/{NETNS}" in line:
            found.append(f"mount: {line}")
    for root in CGROUP_ROOTS:
        if (root / LAB).exists():
            found.append(f"cgroup {root / LAB}")
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            cmd = _cmdline(int(d.name))
            if str(STATE_DIR) in cmd or "--machine=k8s-" in cmd:
                found.append(f"process {d.name}: {cmd[:150]}")
    if BRIDGE in run(["ip", "-o", "link"]).stdout:
        found.append(f"root namespace link {BRIDGE}")
    found += [f"root namespace: {line}" for line in root_namespace_leaks()]
    for sub in ("master", "pillar", "mirror", "hosts", "run"):
        if (STATE_DIR / sub).exists():
            found.append(f"directory {STATE_DIR / sub}")
    return found


def down() -> list[str]:
    """Remove every container, process, cgroup, mount and the netns; keep image, pki and logs."""
    with exclusive(), timed("down"):
        names = {p.stem for p in RUN_DIR.glob("*.json")} - {"salt-master", "mirror"}
        with contextlib.suppress(Exception):  # a broken pillar file must not keep the lab up
            names |= set(controllers())
        names = sorted(names)
        pids = {n: container_pid(n) for n in names}
        for pid in filter(None, pids.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with concurrent.futures.ThreadPoolExecutor(max(1, len(names))) as pool:
            list(pool.map(lambda n: _stop(n, timeout=30), names))
        for root in CGROUP_ROOTS:
            path = root / LAB
            for pid in _cgroup_pids(path):  # anything a container left in the lab's cgroups
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            poll(f"{path} to empty", lambda p=path: not _cgroup_pids(p), 10, 0.1)
            _remove_cgroup_tree(path)
        _stop("salt-master", group=True)
        _stop("mirror")
        if netns_exists() or NETNS_PATH.exists():
            run(["ip", "netns", "delete", NETNS], check=False)
        if STATE_DIR.exists():
            for sub in STATE_DIR.iterdir():
                if sub.name not in KEEP_ON_DOWN:
                    shutil.rmtree(sub) if sub.is_dir() else sub.unlink()
    left = leftovers()
    say(f"down in {TIMINGS['down']:.1f}s; " + ("nothing left" if not left else f"LEFT: {left}"))
    return left


def unavailable() -> str | None:
    """Why this machine cannot run the lab (None when it can)."""
    if os.environ.get("K8S_LAB_SKIP"):
        return "K8S_LAB_SKIP is set"
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the lab needs root on Linux (network namespaces, systemd-nspawn, cgroups)"
    if not shutil.which("systemd-nspawn"):
        return "systemd-nspawn is missing (apt-get install systemd-container; make deps)"
    if not Path("/sys/fs/cgroup/systemd").is_dir():
        return "no /sys/fs/cgroup/systemd hierarchy (the lab is made for hybrid cgroups)"
    return None


def bring_up(orchestration: bool = True) -> int:
    """`up`: set everything up (or reuse it), run the orchestration, print the seed's checks."""
    with exclusive():
        return _bring_up(orchestration)


def _bring_up(orchestration: bool) -> int:
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, nspawn, cgroups)")
    with timed("host packages"):
        ensure_host_packages()
    if not (LOG_DIR.exists() and running_containers()):
        shutil.rmtree(LOG_DIR, ignore_errors=True)  # a new lab starts with fresh logs
    image = ensure_image()
    with timed("pki + pillar + mirror"):
        pki = ensure_pki()
        ensure_pillar(pki)
        ensure_mirror_files()
    with timed("network + master + mirror server"):
        ensure_netns()
        ensure_mirror_server()
        ensure_master()
    ctl = controllers()
    with timed("boot"):
        fresh = [n for n in ctl if not container_pid(n)]
        for name in fresh:  # a fresh container makes a new key: forget an old one of its id
            salt_cmd(["salt-key", "-y", "-d", name])
        for name in fresh:
            start_container(name, ctl[name], image)
        if fresh:
            say(f"booting {', '.join(fresh)}")
        for name in ctl:
            if name not in fresh and container_image(name) != str(image):
                say(f"NOTE: {name} runs an older image; make lab-down && make lab to renew it")
        with concurrent.futures.ThreadPoolExecutor(len(ctl)) as pool:
            states = dict(zip(ctl, pool.map(wait_booted, ctl), strict=True))
        say("booted: " + ", ".join(f"{n} {s}" for n, s in states.items()))
    with timed("keys accepted"):
        accept_keys(list(ctl))
        if not master_healthy():  # see wait_master_workers_loaded: restart it once, cleanly
            say("salt-master has a broken worker (salt 3008.4 start-up race): restarting it")
            _stop("salt-master", group=True)
            (LOG_DIR / "master.log").rename(LOG_DIR / f"master.log.broken-{int(time.time())}")
            ensure_master()
            accept_keys(list(ctl))
            if not master_healthy():
                raise LabError(f"salt-master workers broken again: {LOG_DIR}/master.log")
        # a running lab may have older pillar cached on the master (targeting reads that cache)
        salt_cmd(["salt", "*", "saltutil.refresh_pillar", "wait=True"], timeout=120)
        say(f"keys accepted, test.ping true on {len(ctl)} controllers")
    check_root_namespace()
    rc = 0
    if orchestration:
        say("salt-run state.orchestrate orch.control_plane")
        with timed("orchestration"):
            report, _ = orchestrate()
        print_report(report)
        if not report["ok"]:
            say(f"ORCHESTRATION FAILED (full output: {LOG_DIR}/orchestrate.json)")
            rc = 1
        verify()
    TIMINGS["up total"] = time.monotonic() - t0
    say("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))
    print_usage()
    return rc


def verify() -> None:
    """The seed's checks: the VIP holder, haproxy's /healthz on every controller, health summary."""
    say("verification (the seed's checks):")
    holders = vip_holders()
    say(f"  VIP {vip()} is on: {', '.join(holders) if holders else 'no controller'}")
    for name in controllers():
        out = cexec(
            name, f"curl -s -m 5 -H 'Host: {HEALTHZ_HOST}' -i http://127.0.0.1/healthz"
        ).stdout
        status = out.splitlines()[0].strip() if out else "no answer"
        say(f"  {name}: curl -i http://127.0.0.1/healthz -> {status}")
    proc = salt_cmd(["salt", "--static", "--out=json", "*", "k8s_health.summary"], timeout=120)
    data = parse_json(proc.stdout)
    full = LOG_DIR / "health-summary.json"
    write_file(full, proc.stdout)
    say(f"  salt '*' k8s_health.summary (full: {full}):")
    if not isinstance(data, dict):
        say(f"    no summary: {(proc.stdout or proc.stderr).strip()[-500:]}")
        return
    for name in sorted(data):
        summary = data[name]
        if not isinstance(summary, dict):
            say(f"    {name}: {summary}")
            continue
        checks = {
            "haproxy 127.0.0.1/healthz": summary["haproxy_local_healthz"]["ok"],
            "apiserver healthz/livez/readyz": summary["apiserver"]["ok"],
            "VIP http+tls": summary["vip"]["ok"],
            "haproxy backends UP": summary["haproxy_backends"]["ok"],
            **{f"{c} healthz": v["ok"] for c, v in summary["components"].items()},
        }
        failed = [k for k, ok in checks.items() if not ok]
        status = "ok" if summary.get("ok") else "FAILED: " + ", ".join(failed)
        vip_note = ", holds the VIP" if summary.get("holds_vip") else ""
        say(f"    {name}: {status} ({len(checks)} checks{vip_note})")


def print_usage() -> None:
    print(
        f"""
How to use the lab:
  make lab-exec HOST=k8s-controller-1 CMD='ip -4 -o addr show dev {IFACE}'
  make lab-salt CMD="salt '*' test.ping"
  make lab-salt CMD="salt-run state.orchestrate orch.control_plane"
  make lab          converge again (reuses the running lab)
  make lab-down     remove the lab (the image cache in {CACHE_DIR} stays)
Logs: {LOG_DIR}  Master config: {MASTER_DIR}/master  Lab pillar: {PILLAR_DIR}
""",
        flush=True,
    )


def status() -> int:
    ns = netns_exists()
    say(f"network namespace {NETNS}: {'present' if ns else 'absent'}")
    say(f"salt-master: {_pid_of('salt-master') or 'not running'}")
    say(f"mirror: {_pid_of('mirror') or 'not running'}")
    running = 0
    for name, addr in controllers().items():
        pid = container_pid(name)
        if pid:
            running += 1
            state = cexec(name, "systemctl is-system-running").stdout.strip()
            say(f"{name} ({addr}): nspawn pid {pid}, {state}")
        else:
            say(f"{name} ({addr}): not running")
    if running:
        say(f"VIP {vip()} on: {', '.join(vip_holders()) or 'no controller'}")
    images = sorted(p.name for p in CACHE_DIR.glob("image-*"))
    say(f"image cache: {images} (current recipe: {image_dir().name})")
    return 0 if running == len(controllers()) else 3
