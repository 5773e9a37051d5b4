"""The controllers: systemd-nspawn containers with systemd as PID 1, each in its own cgroup,
sharing the read-only image through a per-host overlay; commands run inside through nsenter.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
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


_INIT: dict[str, tuple[int, int]] = {}  # name -> (nspawn pid, its PID 1): found once per boot


def _is_container_init(pid: int) -> bool:
    with contextlib.suppress(OSError, AttributeError):
        status = Path(f"/proc/{pid}/status").read_text()
        nspid = re.search(r"^NSpid:\s+(.*)$", status, re.MULTILINE).group(1).split()
        return len(nspid) > 1 and nspid[-1] == "1"
    return False


def container_init(name: str) -> int | None:
    """PID (host view) of the container's PID 1: the descendant of nspawn that is PID 1 inside."""
    nspawn = container_pid(name)
    if nspawn is None:
        return None
    known = _INIT.get(name)
    if known and known[0] == nspawn and _is_container_init(known[1]):
        return known[1]
    found = _find_init(nspawn)
    if found:
        _INIT[name] = (nspawn, found)
    return found


def _find_init(nspawn: int) -> int | None:
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


def start_container(name: str, address: str, image: Path, fresh: bool = True) -> bool:
    """
    Boot one controller unless it runs; return True when it was started. `fresh` starts
    from the image alone (a new host); otherwise the host's disk (its upper dir) is kept,
    as a host that died and boots again.
    """
    if container_pid(name):
        return False
    hdir = HOSTS_DIR / name
    layer, upper = hdir / "layer", hdir / "upper"
    if fresh or not upper.is_dir():
        shutil.rmtree(hdir, ignore_errors=True)  # no upper dir from an earlier life
    for rel, text in host_layer(name, address).items():
        write_file(layer / rel, text)
    upper.mkdir(parents=True, exist_ok=True)
    _make_cgroups(name)
    _thaw(name)
    argv = [
        "systemd-nspawn", "--quiet", "--boot", f"--directory={image}",
        f"--overlay={image}:{layer}:{upper}:/", f"--machine={name}",
        "--register=no", "--keep-unit", f"--network-bridge={BRIDGE}",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
    ]  # fmt: skip
    spawn(name, in_netns(argv), marker=f"--machine={name}", cgroup=_cgroup(name))
    return True


def kill_container(name: str) -> list[int]:
    """
    Host death: SIGKILL every process of the controller (nspawn, its systemd and all under
    them) at once, through its cgroups; nothing inside gets to shut down or say goodbye.
    The host's disk (upper dir) stays for start_container(fresh=False). Returns the pids.
    """
    pid1 = container_init(name)
    peer = None  # the bridge's end of its veth, by ifindex (read without entering it)
    with contextlib.suppress(OSError, ValueError):
        peer = int(Path(f"/proc/{pid1}/root/sys/class/net/{IFACE}/iflink").read_text())
    pids = sorted({p for root in CGROUP_ROOTS for p in cgroup_pids(root / _cgroup(name))})
    # Frozen first, then killed by the kernel in one write (cgroup v2): no process gets to
    # run between the first SIGKILL and the last (a haproxy killed before keepalived would
    # have its unit write the track file and keepalived send a goodbye advert).
    unified = Path("/sys/fs/cgroup/unified") / _cgroup(name)
    for knob in ("cgroup.freeze", "cgroup.kill"):
        with contextlib.suppress(OSError):
            (unified / knob).write_text("1")
    for pid in pids:  # whatever the unified hierarchy did not hold
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    poll(f"{name}'s processes to die", lambda: container_pid(name) is None, 30, 0.05)
    _thaw(name)  # the host boots again in this cgroup: it must not be born frozen
    if peer:
        # The kernel tears the dead namespace's veth down a little later; nspawn cannot
        # boot the host again while its bridge end exists ("File exists"): wait, then
        # remove it.
        def gone():
            links = run(in_netns(["ip", "-o", "link"])).stdout.splitlines()
            return not any(line.startswith(f"{peer}: ") for line in links)

        with contextlib.suppress(LabError):
            poll(f"{name}'s veth to go", gone, 5, 0.05)
        if not gone():
            run(in_netns(["ip", "link", "del", "dev", _link_name(peer)]), check=False)
    return pids


def _thaw(name: str) -> None:
    with contextlib.suppress(OSError):
        (Path("/sys/fs/cgroup/unified") / _cgroup(name) / "cgroup.freeze").write_text("0")


def _link_name(ifindex: int) -> str:
    for line in run(in_netns(["ip", "-o", "link"])).stdout.splitlines():
        if line.startswith(f"{ifindex}: "):
            return line.split(": ")[1].split("@")[0]
    return ""


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
