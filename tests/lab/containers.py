"""The controllers: systemd-nspawn containers with systemd as PID 1, each in its own cgroup,
sharing the read-only image through a per-host overlay; commands run inside through nsenter.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from .common import (
    BRIDGE,
    CGROUP_ROOTS,
    CONTAINER_PATH,
    HOSTS_DIR,
    IFACE,
    LAB,
    LAB_NET,
    LabError,
    controllers,
    hosts_file,
    poll,
    run,
    say,
    write_file,
)
from .network import in_netns
from .procs import cmdline, pid_of, spawn

# ---------------------------------------------------------------------------------------------
# containers


def _cgroup(name: str) -> str:
    return f"{LAB}/{name}"


def _make_cgroups(name: str) -> None:
    for root in CGROUP_ROOTS:
        (root / _cgroup(name)).mkdir(parents=True, exist_ok=True)


def remove_cgroup_tree(path: Path) -> None:
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def cgroup_pids(path: Path) -> list[int]:
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
    return pid_of(name)


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
    spawn(name, in_netns(argv), marker=f"--machine={name}", cgroup=_cgroup(name))
    return True


def container_image(name: str) -> str | None:
    """The image a running container was started from (its --directory)."""
    pid = container_pid(name)
    match = re.search(r"--directory=(\S+)", cmdline(pid)) if pid else None
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
