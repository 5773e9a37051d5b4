"""The lab's shared ground: its paths and addresses, the cluster it follows, and small helpers.

Paths and addresses of the lab (nothing of it inside the repository), `run`/`poll`/`say`,
`LabError`, the one-lab-per-machine lock, and the seed's cluster read from pillar/hardway.sls.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import ipaddress
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

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

CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HEALTHZ_HOST = "kubernetes.default.svc.cluster.local"

TIMINGS: dict[str, float] = {}


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
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what} (last: {value!r})")
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


SEED_CONTROLLERS = 3  # the seed's three; `make lab CONTROLLERS=N` sets another count
MAX_CONTROLLERS = 9
COUNT_FILE = STATE_DIR / "controllers"  # the running lab's count (removed by `down`)


def controller_count() -> int:
    """The lab's controller count: the one `up` recorded, else the seed's three."""
    try:
        return int(COUNT_FILE.read_text())
    except (OSError, ValueError):
        return SEED_CONTROLLERS


def check_count(count) -> int:
    """A controller count as an int, or LabError naming the valid values."""
    try:
        value = int(count)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_CONTROLLERS:
        raise LabError(f"CONTROLLERS={count!r}: the lab takes 1 to {MAX_CONTROLLERS} controllers")
    return value


def set_controller_count(count: int) -> None:
    write_file(COUNT_FILE, f"{check_count(count)}\n")


# The Kubernetes release the lab runs: the newest one built from upstream's Go modules
# (tools/upstream_build.py). `make lab VERSION=X` sets another (recorded like the count, removed
# by `down`); a minor without a real build runs on the test doubles, and `up` says so.
DEFAULT_VERSION = "1.37.2"
VERSION_FILE = STATE_DIR / "version"


def set_lab_version(version: str) -> None:
    version = str(version).strip().lstrip("v")
    if not re.fullmatch(r"1\.\d+\.\d+", version):
        raise LabError(f"invalid VERSION {version!r}: expected 1.<minor>.<patch>, e.g. 1.37.2")
    write_file(VERSION_FILE, version + "\n")


def cluster() -> dict:
    """The lab's cluster: the seed's (pillar/hardway.sls) with the lab's controller count."""
    return _cluster(controller_count())


@functools.cache
def _cluster(count: int) -> dict:
    """
    pillar/hardway.sls read as data, its controllers (and the etcd servers on
    them) extended or cut to `count` in the seed's pattern: k8s-controller-<n>
    at the first controller's address + n - 1 (10.240.0.11, .12, ...).
    """
    data = yaml.safe_load((REPO / "pillar" / "hardway.sls").read_text())["k8s_control_plane"]
    seed = data["controllers"]
    if count != len(seed):
        first = ipaddress.ip_address(seed[0]["address"])
        stem = seed[0]["id"].rsplit("-", 1)[0]
        data["controllers"] = [
            {"id": f"{stem}-{n + 1}", "address": str(first + n)} for n in range(count)
        ]
        port = urllib.parse.urlsplit(data["etcd"]["servers"][0]).port
        data["etcd"]["servers"] = [f"https://{c['address']}:{port}" for c in data["controllers"]]
    for addr in [data["vip"]["address"], *(c["address"] for c in data["controllers"])]:
        if ipaddress.ip_address(addr) not in LAB_NET or addr == MASTER_IP:
            raise LabError(f"{addr} is outside the lab network {LAB_NET}: the lab refuses it")
    return data


def controllers() -> dict[str, str]:
    return {c["id"]: c["address"] for c in cluster()["controllers"]}


# The VIP an override sets (pillar.set_overrides), else the cluster file's.
VIP_OVERRIDE: list[str] = []


def vip() -> str:
    return VIP_OVERRIDE[0] if VIP_OVERRIDE else cluster()["vip"]["address"]


def kube_version() -> str:
    """The lab's Kubernetes version: the one `up` recorded, else DEFAULT_VERSION (the seed's
    cluster file pins 1.18.6; the lab's pillar overrides it, as it does the mirror)."""
    try:
        return VERSION_FILE.read_text().strip() or DEFAULT_VERSION
    except OSError:
        return DEFAULT_VERSION


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


def apt_env() -> dict:
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
