#!/usr/bin/env python3
"""
Failover benchmark on the lab: the seed-faithful profile against the tuned
default, in the same run, on the same controllers.

For each profile it applies the load balancer states with that profile, then
measures over repeated trials (medians, min-max; bench/report.py):

- every fault of tools/lab/faults.py on the VIP holder (haproxy stopped,
  haproxy SIGKILLed, keepalived stopped, keepalived's VRRP process SIGKILLed,
  the holder's container killed): seconds until the next controller alone
  holds the VIP, then seconds until the first holds it again (preemption)
  from the recovery (or from the fault when the system heals by itself), the
  holder changes after that (flaps), and the time with two or no holders;
- an apiserver SIGKILLed under 20 requests/s through the VIP (open loop,
  from another controller): failed requests while it is down, seconds until
  the VIP holder's haproxy takes it out of rotation; started again: seconds
  until haproxy has it back, failed requests after the start;
- a load run (`--load-seconds`, 60 by default): every controller's CPUs
  saturated and UDP floods between them plus 100 requests/s through the VIP;
  VIP moves counted (there must be none);

then the orchestration (`--orch-trials`): on fresh controllers and a no-op
re-run, with 3 controllers in both profiles and with 5 in the tuned one.

Usage (root, like the lab):  make bench  [TRIALS=10]
Results: the table printed, and build/bench/failover.{json,md,png} (the raw
trials with the VIP holders over time, the Markdown table, the plot; see
bench/report.py). With --gate it exits 1 when, in this run, the tuned profile
is not at least twice as fast as the seed profile on VIP moves or loses a
request to a dead apiserver (the CI's short bench: `--quick --gate`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import report
from tools.lab import lab
from tools.lab.faults import FAULTS

# An open-loop client inside a controller: one GET /healthz through the VIP
# every 1/rate s (each in its own thread, 3 s timeout) until /tmp/bench-stop
# exists or `seconds` passed; prints the monotonic send time of every failed
# request (the containers share the host's monotonic clock), then "sent N".
LOAD = r"""
import os, sys, threading, time, urllib.request
seconds, url, rate = float(sys.argv[1]), sys.argv[2], float(sys.argv[3])
host = {"Host": "kubernetes.default.svc.cluster.local"}
failed, lock, threads = [], threading.Lock(), []
def one(at):
    try:
        req = urllib.request.Request(url, headers=host)
        ok = urllib.request.urlopen(req, timeout=3).status == 200
    except Exception:
        ok = False
    if not ok:
        with lock:
            failed.append(at)
start = time.monotonic()
i = 0
while time.monotonic() - start < seconds and not os.path.exists("/tmp/bench-stop"):
    time.sleep(max(0.0, start + i / rate - time.monotonic()))
    t = threading.Thread(target=one, args=(round(time.monotonic(), 3),))
    t.start(); threads.append(t)
    i += 1
for t in threads:
    t.join()
for at in sorted(failed):
    print(at)
print("sent", len(threads))
"""

# The status of one server in the haproxy of the controller it runs on, read
# from the stats socket every 20 ms until /tmp/bench-stop exists; prints
# "<monotonic time> <status>" at every change (UP, DOWN, "DOWN 1/2", ...).
WATCH = r"""
import os, socket, sys, time
sock_path, backend, server = sys.argv[1:4]
last = None
while not os.path.exists("/tmp/bench-stop"):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sock_path); s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    except OSError:
        data = b""
    finally:
        s.close()
    status = "?"
    for row in data.decode().splitlines():
        cols = row.split(",")
        if len(cols) > 17 and cols[0] == backend and cols[1] == server:
            status = cols[17]
    if status != last:
        print(round(time.monotonic(), 3), status, flush=True)
        last = status
    time.sleep(0.02)
"""
# The load run on one controller: a busy loop per CPU and a UDP flood to a peer,
# each in its own process, all ended when /tmp/bench-stop exists (or after the
# bound given, whatever happens to the bench).
BURN = r"""
import os, signal, socket, sys, time
peer, bound = sys.argv[1], float(sys.argv[2])
def burn():
    while True:
        pass
def flood():
    s, data = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), bytes(1400)
    while True:
        s.sendto(data, (peer, 9))
children = []
for work in [burn] * os.cpu_count() + [flood]:
    pid = os.fork()
    if pid == 0:
        work()
    children.append(pid)
start = time.monotonic()
while not os.path.exists("/tmp/bench-stop") and time.monotonic() - start < bound:
    time.sleep(0.2)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
"""
HAPROXY_SOCKET = "/run/haproxy.sock"  # loadbalancer:haproxy:stats_socket's default
HTTP_BACKEND = "k8s-controller"  # the seed's plain-HTTP frontend's backend


def salt(*argv, timeout=600):
    data, proc = lab.salt_json(["salt", "--static", *argv], timeout)
    if not isinstance(data, dict):
        raise lab.LabError(f"bench: salt {' '.join(argv)} failed:\n{proc.stdout[-2000:]}")
    return data


def use_profile(profile):
    lab.set_overrides({"profile": profile})
    salt("k8s-controller-*", "saltutil.refresh_pillar", "wait=True")
    data = salt("k8s-controller-*", "state.apply", "k8s_control_plane.loadbalancer")
    for minion, states in data.items():
        bad = [k for k, v in states.items() if v.get("result") is not True]
        if bad:
            raise lab.LabError(f"bench: k8s_control_plane.loadbalancer on {minion} failed: {bad}")
    settle()


def settle():
    """Every controller up, all backends UP everywhere and the VIP on the first controller."""
    salt("k8s-controller-*", "k8s_health.wait_ready", "timeout=120", timeout=180)
    lab.wait_for_holders([next(iter(lab.controllers()))], 60)


def _first_at(points, holders, after=0.0):
    return next((t for t, seen in points if t >= after and seen == holders), None)


def vip_trial(fault, tail=3.0, move_timeout=20):
    """
    One fault on the VIP holder (the first controller): when the second alone
    holds the VIP, when the first has it back, and what happened in between.
    """
    first, second = list(lab.controllers())[:2]
    with lab.HolderTimeline() as timeline:
        time.sleep(0.3)
        timeline.zero = time.monotonic()
        fault.inflict(first)
        # a fault that heals at once may never move the VIP (seed: haproxy-kill)
        with contextlib.suppress(lab.LabError):
            lab.wait_for_holders([second], move_timeout)
        recovered = time.monotonic() - timeline.zero
        if fault.recover:
            fault.recover(first)
        else:
            recovered = 0.0  # it heals by itself: "back" counts from the fault
        lab.wait_for_holders([first], 180)
        time.sleep(tail)  # a flap shows up here
    points = timeline.relative()
    moved = _first_at(points, [second])  # None: the next controller never held it alone
    left = next((t for t, holders in points if t >= 0 and holders != [first]), None)
    back = _first_at(points, [first], after=left) if left is not None else None
    after_back = [holders for t, holders in points if back is not None and t > back]
    return {
        "moved": moved,
        "left": left,  # when the first controller stopped being the only holder (None: never)
        "back": round(back - recovered, 3) if back is not None else None,
        "flaps": len(after_back),
        "two_holders_s": timeline.seconds(lambda h: len(h) > 1),
        "no_holder_s": timeline.seconds(lambda h: not h),
        "timeline": points,
    }


def _stop_helpers(*names):
    for name in names:
        lab.cexec(name, "touch /tmp/bench-stop")


def apiserver_trial(rate=20.0):
    """
    SIGKILL one apiserver under `rate` requests/s through the VIP; keep it down
    until the holder's haproxy has taken it out of rotation (or 60 s), plus 2 s;
    start it and wait until haproxy has it back (or 120 s), plus 3 s.
    """
    names = list(lab.controllers())
    holder, victim, client = names[0], names[1], names[2 % len(names)]
    for name in {holder, client}:
        lab.cexec(name, "rm -f /tmp/bench-stop")
    watch = _Watch(holder, victim)
    url = f"http://{lab.vip()}/healthz"
    load = subprocess.Popen(
        lab.in_container(client, f"python3 -c '{LOAD}' 400 {url} {rate}"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lab.poll("the haproxy watcher", lambda: watch.status() == "UP", 30, 0.05)
        time.sleep(2)
        killed = time.monotonic()
        lab.cexec(victim, "systemctl kill -s KILL kube-apiserver; systemctl stop kube-apiserver")
        lab.poll("haproxy to mark it down", lambda: watch.status() == "DOWN", 60, 0.05)
        time.sleep(2)
        started = time.monotonic()
        lab.cexec(victim, "systemctl start kube-apiserver", check=True)
        lab.poll("haproxy to have it back", lambda: watch.status() == "UP", 120, 0.05)
        time.sleep(3)
    finally:
        _stop_helpers(holder, client)
    changes = watch.changes()
    out, _ = load.communicate(timeout=60)
    failed = [float(line) for line in out.splitlines() if not line.startswith("sent")]
    down_at = next(t for t, status in changes if t > killed and status == "DOWN")
    up_at = next(t for t, status in changes if t > started and status == "UP")
    return {
        "failed_down": sum(killed <= t < started for t in failed),
        "out_of_rotation": round(down_at - killed, 3),
        "readmitted": round(up_at - started, 3),
        "failed_back": sum(t >= started for t in failed),
        "sent": int(out.strip().splitlines()[-1].split()[1]),
        "haproxy": [[round(t - killed, 3), status] for t, status in changes],
    }


class _Watch:
    """WATCH running in `holder` for `server`; its lines read by a thread as they come."""

    def __init__(self, holder, server):
        argv = f"python3 -c '{WATCH}' {HAPROXY_SOCKET} {HTTP_BACKEND} {server}"
        self._proc = subprocess.Popen(
            lab.in_container(holder, argv), stdout=subprocess.PIPE, text=True
        )
        self._lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self._proc.stdout:
            at, status = line.split(None, 1)
            self._lines.append((float(at), status.strip()))

    def status(self):
        return self._lines[-1][1] if self._lines else None

    def changes(self):
        self._proc.wait(timeout=30)
        self._thread.join(10)
        return list(self._lines)


def load_run(seconds):
    """
    `seconds` of load on every controller: as many busy loops as it has CPUs,
    a UDP flood to the next controller, and 100 requests/s through the VIP from
    the last one; returns the VIP holder changes seen (there must be none).
    """
    names = list(lab.controllers())
    addresses = lab.controllers()
    peers = dict(zip(names, [*names[1:], names[0]], strict=True))
    procs = []
    for name in names:
        lab.cexec(name, "rm -f /tmp/bench-stop")
        argv = f"python3 -c '{BURN}' {addresses[peers[name]]} {seconds + 30}"
        procs.append(subprocess.Popen(lab.in_container(name, argv)))
    url = f"http://{lab.vip()}/healthz"
    client = subprocess.Popen(
        lab.in_container(names[-1], f"python3 -c '{LOAD}' {seconds} {url} 100"),
        stdout=subprocess.PIPE,
        text=True,
    )
    with lab.HolderTimeline() as timeline:
        out, _ = client.communicate(timeout=seconds + 60)
    _stop_helpers(*names)
    for proc in procs:
        proc.wait(timeout=60)
    failed = [line for line in out.splitlines() if not line.startswith("sent")]
    return {
        "seconds": seconds,
        "vip_changes": len(timeline.points) - 1,
        "holders_seen": timeline.seen,
        "failed_requests": len(failed),
        "sent": int(out.strip().splitlines()[-1].split()[1]),
    }


def orchestration_trials(profile, count, trials):
    """
    The orchestration on fresh controllers (with its floor: report.floor_of), then a no-op
    re-run, `trials` times.
    """
    runs = {"fresh": [], "noop": [], "floor": []}
    for _ in range(trials):
        lab.retire([n for n in lab.controllers() if lab.container_pid(n)])
        lab.bring_up(orchestration=False, count=count)
        lab.set_overrides({"profile": profile})
        for kind in ("fresh", "noop"):
            start = time.monotonic()
            result, proc = lab.orchestrate()
            if not result["ok"]:
                raise lab.LabError(f"bench: the {kind} orchestration failed: {result['errors']}")
            runs[kind].append(round(time.monotonic() - start, 2))
            if kind == "fresh":
                runs["floor"].append(report.floor_of(lab.parse_json(proc.stdout)))
        print(f"  orchestration {profile} x{count}: {runs}", flush=True)
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description="failover benchmark on the lab")
    parser.add_argument("--trials", type=int, default=10, help="trials of each VIP fault")
    parser.add_argument("--kill-trials", type=int, default=10, help="apiserver trials")
    parser.add_argument("--orch-trials", type=int, default=10, help="orchestration trials")
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI: 3 trials of haproxy-stop and keepalived-stop, 2 apiserver trials, no load "
        "run, no orchestration trials",
    )
    parser.add_argument(
        "--orch-only",
        action="store_true",
        help="only the orchestration trials (fresh, its floor, no-op; 3 and 5 controllers)",
    )
    parser.add_argument("--out", default="build/bench", help="directory of the results")
    parser.add_argument("--gate", action="store_true", help="exit 1 when the CI gate fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.kill_trials, args.orch_trials, args.load_seconds = 3, 2, 0, 0
        args.faults = "haproxy-stop,keepalived-stop"
    faults = [FAULTS[name] for name in args.faults.split(",") if name]
    if lab.bring_up(orchestration=True, count=3) != 0:
        return 1
    results = {
        "format": 2,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} cores",
        "command": "bench/failover.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "faults": {fault.name: fault.what for fault in faults},
        "profiles": {},
        "orchestration": {},
    }
    try:
        for profile in report.PROFILES if not args.orch_only else ():
            print(f"bench: profile {profile}", flush=True)
            use_profile(profile)
            data = results["profiles"][profile] = {"faults": {}, "apiserver": [], "load": None}
            for fault in faults:
                trials = data["faults"][fault.name] = []
                for number in range(args.trials):
                    trials.append(vip_trial(fault))
                    shown = {k: v for k, v in trials[-1].items() if k != "timeline"}
                    print(f"  {fault.name} {number + 1}: {shown}", flush=True)
                    settle()
            for number in range(args.kill_trials):
                data["apiserver"].append(apiserver_trial())
                print(f"  apiserver {number + 1}: {data['apiserver'][-1]}", flush=True)
                settle()
            if args.load_seconds:
                data["load"] = load_run(args.load_seconds)
                print(f"  load: {data['load']}", flush=True)
                settle()
    finally:
        lab.set_overrides(None)
        salt("k8s-controller-*", "saltutil.refresh_pillar", "wait=True")
        salt("k8s-controller-*", "state.apply", "k8s_control_plane.loadbalancer")
    if args.orch_trials:
        try:
            for profile, count in (("seed", 3), ("tuned", 3), ("tuned", 5)):
                runs = orchestration_trials(profile, count, args.orch_trials)
                results["orchestration"][f"{profile}-{count}"] = runs
        except lab.LabError as exc:  # the failover results above are still written
            results["orchestration_error"] = str(exc)
            print(f"bench: orchestration trials stopped: {exc}", flush=True)
        lab.retire([n for n in lab.controllers() if lab.container_pid(n)])
        lab.bring_up(orchestration=True, count=3)  # the lab as `make lab` leaves it
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "failover.json").write_text(json.dumps(results, indent=1))
    if args.orch_only:
        table = "\n".join(report.orchestration_lines(results)) + "\n"
        (out / "orchestration.md").write_text(table)
        print("\n" + table + f"written to {out}/failover.json, orchestration.md")
        return 0
    table = report.markdown(results)
    (out / "failover.md").write_text(table)
    report.plot(results, out / "failover.png")
    print("\n" + table)
    print(f"written to {out}/failover.json, failover.md, failover.png")
    errors = report.gate(results)
    for error in errors:
        print(f"bench gate: {error}")
    if not errors:
        print(f"bench gate: passed (tuned at least {report.MIN_SPEEDUP:g}x faster, 0 lost)")
    return 1 if errors and args.gate else 0


if __name__ == "__main__":
    sys.exit(main())
