"""The binary mirror, laid out like the official release location (v<version>/bin/linux/amd64/
<name> with <name>.sha256 beside it), served over HTTP inside the lab's namespace.

Real etcd/etcdctl (Debian's etcd-server/etcd-client), real kubectl (Debian's kubernetes-client,
served under the pillar's Kubernetes version path) and the test doubles as kube-apiserver,
kube-controller-manager and kube-scheduler (tests/doubles/build.py: one zipapp, the same bytes
under each name).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path

from .common import (
    CACHE_DIR,
    MASTER_IP,
    MIRROR_DIR,
    MIRROR_PORT,
    MIRROR_URL,
    apt_env,
    kube_version,
    poll,
    run,
    say,
    write_file,
)
from .network import in_netns, tcp_open_in_netns
from .procs import pid_of, spawn

MIRROR_DEBS = ("etcd-server", "etcd-client", "kubernetes-client")
DOUBLES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@functools.cache
def etcd_version() -> str:
    """The version of Debian's etcd the mirror serves (Debian revision stripped)."""
    deb = _download_debs()["etcd-server"]
    ver = run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip()
    return re.sub(r"^\d+:", "", ver).split("-")[0].split("+")[0]


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


def ensure_mirror_files() -> None:
    """Lay the mirror out like the official release location, with .sha256 beside each file."""
    version = kube_version()
    kdir = MIRROR_DIR / f"v{version}" / "bin" / "linux" / "amd64"
    # kubectl: Debian's kubernetes-client (1.20.2), served under the pillar's version path.
    _publish((_extracted("kubernetes-client") / "usr/bin/kubectl").read_bytes(), kdir / "kubectl")
    # The doubles (tests/doubles/build.py): one deterministic zipapp stamped with the pillar's
    # version, published under each control-plane name; the double picks its component from
    # argv[0]. Imported here, not at the top, so that a broken double fails `up`, not the import.
    from tests.doubles.build import executable

    double = executable(version)
    for name in DOUBLES:
        _publish(double, kdir / name)
    edir = MIRROR_DIR / f"v{etcd_version()}" / "bin" / "linux" / "amd64"
    _publish((_extracted("etcd-server") / "usr/bin/etcd").read_bytes(), edir / "etcd")
    _publish((_extracted("etcd-client") / "usr/bin/etcdctl").read_bytes(), edir / "etcdctl")


def ensure_mirror_server() -> None:
    if pid_of("mirror") is None:
        argv = [
            sys.executable, "-m", "http.server", MIRROR_PORT, "--bind", MASTER_IP,
            "--directory", MIRROR_DIR,
        ]  # fmt: skip
        spawn("mirror", in_netns(argv), marker=f"--directory {MIRROR_DIR}")
    poll("the mirror to listen", lambda: tcp_open_in_netns(MIRROR_PORT), 30, 0.1)
    say(f"binary mirror on {MIRROR_URL} serving {MIRROR_DIR}")
