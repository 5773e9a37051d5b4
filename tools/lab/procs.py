"""Processes the lab starts: detached, logged to LOG_DIR, recorded in RUN_DIR (pid + marker).

A recorded pid is trusted only while /proc shows it alive and running the recorded command,
so no signal ever goes to a recycled pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

from .common import CGROUP_ROOTS, LOG_DIR, RUN_DIR, LabError, poll, say, write_file

_CHILDREN: list[subprocess.Popen] = []  # kept so that processes we start can be reaped


def proc_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our own exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pid_of(role: str) -> int | None:
    """The pid recorded for a role, when that process still runs the recorded command."""
    path = RUN_DIR / f"{role}.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = rec["pid"]
    if proc_alive(pid) and rec["marker"] in cmdline(pid):
        return pid
    return None


def spawn(role: str, argv: list, marker: str, cgroup: str | None = None) -> int:
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


def stop(role: str, timeout: float = 20, group: bool = False) -> None:
    """SIGTERM the recorded process (or its process group), SIGKILL after a bounded wait."""
    pid = pid_of(role)
    if pid is not None:
        kill = (lambda s: os.killpg(pid, s)) if group else (lambda s: os.kill(pid, s))
        with contextlib.suppress(ProcessLookupError):
            kill(signal.SIGTERM)
        try:
            poll(f"{role} to exit", lambda: not proc_alive(pid), timeout, 0.1)
        except LabError:
            say(f"{role} (pid {pid}) ignored SIGTERM for {timeout}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                kill(signal.SIGKILL)
            poll(f"{role} to die", lambda: not proc_alive(pid), 10, 0.1)
        if group:
            poll(f"{role}'s process group to exit", lambda: not group_members(pid), 10, 0.1)
    (RUN_DIR / f"{role}.json").unlink(missing_ok=True)


def group_members(pgid: int) -> list[int]:
    members = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    members.append(int(d.name))
    return members
