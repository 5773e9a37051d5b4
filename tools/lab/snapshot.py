"""What a refused run must leave alone: every managed file and every service, on all controllers.

managed() takes, on every controller, the sha256 (with mode, owner and link target) of every file
under the directories the formula manages, and each service's state as systemd shows it
(ActiveState, SubState, MainPID, ExecMainStartTimestampMonotonic, NRestarts) plus the processes
its main process started (haproxy's workers, keepalived's VRRP child), so that a restart or a
reload shows;
and which controllers hold the VIP. compare() lists what differs, one readable line each.
"""

from __future__ import annotations

import concurrent.futures
import json

from .checks import vip_holders
from .common import LabError, controllers
from .containers import cexec

MANAGED_DIRS = (
    "/etc/haproxy",
    "/etc/keepalived",
    "/var/lib/kubernetes",
    "/etc/kubernetes",
    "/etc/etcd",
    "/etc/systemd/system",
    "/usr/local/bin",
    "/etc/sysctl.d",
)
SERVICES = (
    "haproxy",
    "keepalived",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
)
PROPERTIES = "ActiveState,SubState,MainPID,ExecMainStartTimestampMonotonic,NRestarts"

_SCRIPT = r"""
import hashlib, json, os, subprocess, sys
roots, services, props = json.loads(sys.argv[1])
def describe(path):
    st = os.lstat(path)
    kind = {0o040000: "dir", 0o120000: "link", 0o100000: "file"}.get(st.st_mode & 0o170000, "other")
    text = f"{kind} {st.st_mode & 0o7777:04o} {st.st_uid}:{st.st_gid}"
    if kind == "link":
        text += " -> " + os.readlink(path)
    elif kind == "file":
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        text += " sha256:" + h.hexdigest()
    return text
files = {}
for root in roots:
    if not os.path.lexists(root):
        files[root] = "absent"
        continue
    files[root] = describe(root)
    for top, dirs, names in os.walk(root):
        for name in sorted(dirs + names):
            files[os.path.join(top, name)] = describe(os.path.join(top, name))
units = {}
for unit in services:
    out = subprocess.run(["systemctl", "show", "-p", props, unit + ".service"],
                         capture_output=True, text=True).stdout
    state = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    main = state.get("MainPID", "0")
    children = []
    if main != "0":
        pgrep = subprocess.run(["pgrep", "-P", main], capture_output=True, text=True).stdout
        for pid in pgrep.split():
            try:
                comm = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                continue
            if comm in ("haproxy", "keepalived"):  # not the check scripts keepalived forks
                children.append(f"{pid} {comm}")
    state["children"] = sorted(children)
    units[unit] = state
print(json.dumps({"files": files, "services": units}))
"""


def controller(name: str) -> dict:
    """{files: {path: description}, services: {unit: state}} of one controller."""
    arg = json.dumps([MANAGED_DIRS, SERVICES, PROPERTIES])
    proc = cexec(name, f"python3 - '{arg}'", input=_SCRIPT, timeout=120)
    if proc.returncode != 0:
        raise LabError(f"snapshot of {name} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def managed() -> dict:
    """Every controller's managed files and services, and the VIP holders."""
    names = list(controllers())
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        snaps = dict(zip(names, pool.map(controller, names), strict=True))
    return {"controllers": snaps, "vip holders": vip_holders()}


def compare(before: dict, after: dict) -> list[str]:
    """What differs between two snapshots, one line each (empty when nothing changed)."""
    lines = []
    if before["vip holders"] != after["vip holders"]:
        lines.append(f"VIP holders: before {before['vip holders']}, after {after['vip holders']}")
    for name, old in before["controllers"].items():
        new = after["controllers"][name]
        for kind in ("files", "services"):
            for item in sorted(set(old[kind]) | set(new[kind])):
                if old[kind].get(item) != new[kind].get(item):
                    lines.append(
                        f"{name}: {kind} {item}: before {old[kind].get(item)!r}, "
                        f"after {new[kind].get(item)!r}"
                    )
    return lines


def summary(snap: dict) -> str:
    """One line: how many files and running services the snapshot covers."""
    files = sum(len(c["files"]) for c in snap["controllers"].values())
    running = sum(
        s.get("SubState") == "running"
        for c in snap["controllers"].values()
        for s in c["services"].values()
    )
    return (
        f"{files} files, {running} running services on {len(snap['controllers'])} controllers, "
        f"VIP on {snap['vip holders']}"
    )
