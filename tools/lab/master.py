"""The lab's salt-master: its config, start-up, keys, salt commands and orchestration reports."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from .common import (
    LOG_DIR,
    MASTER_DIR,
    MASTER_IP,
    PILLAR_DIR,
    REPO,
    STATE_DIR,
    controllers,
    poll,
    run,
    salt_bin,
    say,
    write_file,
)
from .network import in_netns, tcp_open_in_netns
from .procs import cmdline, group_members, pid_of, spawn, stop

# ---------------------------------------------------------------------------------------------
# salt-master and the mirror server


# The master's snapshots of the lab's etcd (_runners/k8s_snapshot.py), root-only.
SNAPSHOTS_DIR = MASTER_DIR / "snapshots"
# How often the master's schedule takes one (K8S_LAB_SNAPSHOT_SECONDS; the formula's
# documented default is hourly, and so is the lab's unless a test asks for shorter).
SNAPSHOT_SECONDS_ENV = "K8S_LAB_SNAPSHOT_SECONDS"
# How often the master's schedule runs the certificate renewal (K8S_LAB_RENEWAL_SECONDS;
# daily unless a test asks for shorter).
RENEWAL_SECONDS_ENV = "K8S_LAB_RENEWAL_SECONDS"


def master_config() -> str:
    every = int(os.environ.get(SNAPSHOT_SECONDS_ENV) or 3600)
    renewal = int(os.environ.get(RENEWAL_SECONDS_ENV) or 86400)
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
        # k8s-snapshots: the sealed etcd snapshots, served back to the controllers by
        # orch.restore (docs/snapshots.md)
        "file_roots": {"base": [str(REPO / "salt")], "k8s-snapshots": [str(SNAPSHOTS_DIR)]},
        "file_recv": True,  # k8s_etcd.snapshot_push's cp.push
        "k8s_snapshots_dir": str(SNAPSHOTS_DIR),
        "schedule": {
            "k8s-etcd-snapshot": {
                "function": "k8s_snapshot.take",
                "kwargs": {"reason": "scheduled"},
                "seconds": every,
                "run_on_start": False,  # Salt's default runs it at every master start
                "maxrunning": 1,
            },
            # docs/pki.md: renewal through orch.control_plane when certificates fall due
            "k8s-cert-renewal": {
                "function": "k8s_certs.renew",
                "seconds": renewal,
                "run_on_start": False,
                "maxrunning": 1,
            },
        },
        "pillar_roots": {"base": [str(PILLAR_DIR), str(REPO / "pillar")]},
        # the cluster CA's keeper (docs/pki.md): <pki_dir>/k8s_control_plane/<cluster>/
        "ext_pillar": [{"k8s_pki": {}}],
    }
    return "# The lab's salt-master (tools/lab/lab.py).\n" + yaml.safe_dump(conf, sort_keys=False)


def ensure_master() -> None:
    SNAPSHOTS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed = write_file(MASTER_DIR / "master", master_config())
    pid = pid_of("salt-master")
    if pid and changed:
        say("salt-master config changed: restarting it")
        stop("salt-master", group=True)
        pid = None
    if pid is None:
        argv = [salt_bin("salt-master"), "-c", MASTER_DIR, "-l", "warning"]
        spawn("salt-master", in_netns(argv), marker=f"salt-master -c {MASTER_DIR}")
    poll("the salt-master to listen on 4506", lambda: tcp_open_in_netns(4506), 60, 0.2)
    wait_master_workers_loaded()
    say(f"salt-master on {MASTER_IP} (config {MASTER_DIR}/master, log {LOG_DIR}/master.log)")


def reschedule(snapshot_seconds: int | None = None, renewal_seconds: int | None = None) -> None:
    """
    The master's schedules at these intervals (None: the lab's hourly snapshot, daily
    renewal): the master restarted when they change, then every controller answering it.
    """
    for env, value in (
        (SNAPSHOT_SECONDS_ENV, snapshot_seconds),
        (RENEWAL_SECONDS_ENV, renewal_seconds),
    ):
        if value is None:
            os.environ.pop(env, None)
        else:
            os.environ[env] = str(int(value))
    ensure_master()

    def all_answer():
        data, _ = salt_json(["salt", "--static", "k8s-controller-*", "test.ping"], 60)
        return isinstance(data, dict) and sorted(data) == sorted(controllers())

    poll("every controller to answer the restarted master", all_answer, 120, 1)


BROKEN_WORKER = "failed to load modules, worker will be non-functional"


def _worker_cpu(pgid: int) -> tuple[int, int]:
    """(number of MWorker processes, their summed CPU ticks) in the master's process group."""
    count = ticks = 0
    for pid in group_members(pgid):
        if "MWorker-" in cmdline(pid):
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
    pgid = pid_of("salt-master")
    samples: list[tuple[int, int]] = []

    def quiet():
        samples.append(_worker_cpu(pgid))
        last = samples[-4:]
        return len(last) == 4 and last[0][0] > 0 and len(set(last)) == 1

    poll("the salt-master's workers to load their modules", quiet, timeout, 0.25)


def master_healthy() -> bool:
    log = LOG_DIR / "master.log"
    return not (log.exists() and BROKEN_WORKER in log.read_text(errors="replace"))


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


def orchestrate(
    timeout: float = 1800, sls: str = "orch.control_plane", pillar: dict | None = None
) -> tuple[dict, subprocess.CompletedProcess]:
    argv = ["salt-run", "state.orchestrate", sls]
    if pillar is not None:
        argv.append(f"pillar={json.dumps(pillar)}")
    data, proc = salt_json(argv, timeout)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / "orchestrate.json").write_text(proc.stdout + proc.stderr)
    report = orchestration_report(data)
    if proc.returncode != 0 and report["ok"]:
        report["ok"] = False
        report["errors"].append(f"salt-run exited {proc.returncode}")
    if data is None:
        report["errors"].append((proc.stdout + proc.stderr).strip()[-3000:])
    return report, proc


def orchestration_steps(running: bool = False) -> list[str]:
    """
    The orchestration's step IDs in the order they run, compiled from orch/control_plane.sls:
    on a new cluster, or with `running` on one whose etcd runs and where only the load
    balancer would change (no control plane to roll).
    """
    from tests.support import orchestration  # the LEAD's compiler of the orchestration file

    return orchestration.step_ids(orchestration.compile_steps(running=running))


def orchestration_states() -> list[str]:
    """The SLS the orchestration's salt.state steps apply, in the order they run."""
    from tests.support import orchestration

    steps = orchestration.compile_steps()
    return [
        sls
        for step in orchestration.step_ids(steps)
        if "salt.state" in steps[step]
        for sls in orchestration.fields(steps[step])["sls"]
    ]


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
