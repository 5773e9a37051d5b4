#!/usr/bin/env python3
"""
Failover benchmark on the lab: the seed-faithful profile against the tuned
default, in the same run, on the same three controllers.

For each profile it applies the load balancer states with that profile and
then measures, over repeated trials (medians, min-max):

- vip_moved: haproxy stopped on the VIP holder -> the VIP on the next controller
- vip_back: haproxy started again -> the VIP back on the first (preemption)
- failed_requests: one apiserver killed and kept down for 10 s while a client
  sends 20 requests/s (open loop) through the VIP, the seed's HTTP frontend
- failing_seconds: from the first to the last failed request of that window

Usage (root, like the lab):  make bench  [TRIALS=5]
Results: the table printed, and build/bench/failover.{json,md,png} (the raw
trials with the VIP holders over time, the Markdown table, the plot; see
bench/report.py). With --gate it exits 1 when, in this run, the tuned profile
is not at least twice as fast as the seed profile on VIP moves or loses a
request to a dead apiserver.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import report
from tests.lab import lab

# An open-loop client inside controller-3: one GET /healthz through the VIP
# every 50 ms (20/s, each in its own thread, 3 s timeout) for `seconds`,
# whatever the answers take; prints the send time of every failed request.
LOAD = r"""
import sys, threading, time, urllib.request
seconds, url = float(sys.argv[1]), sys.argv[2]
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
for i in range(int(seconds * 20)):
    time.sleep(max(0.0, start + i * 0.05 - time.monotonic()))
    t = threading.Thread(target=one, args=(round(time.monotonic() - start, 3),))
    t.start(); threads.append(t)
for t in threads:
    t.join()
for at in sorted(failed):
    print(at)
print("sent", len(threads))
"""


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
    """All backends UP everywhere and the VIP on the first controller."""
    salt("k8s-controller-*", "k8s_health.wait_ready", "timeout=120", timeout=180)
    lab.wait_for_holders([next(iter(lab.controllers()))], 60)


def vip_trial():
    first, second = list(lab.controllers())[:2]
    with lab.HolderTimeline() as timeline:
        time.sleep(0.3)
        timeline.zero = time.monotonic()
        lab.cexec(first, "systemctl stop haproxy", check=True)
        try:
            moved, most = lab.wait_for_holders([second], 60)
        finally:
            lab.cexec(first, "systemctl start haproxy", check=True)
        back, most_back = lab.wait_for_holders([first], 60)
        time.sleep(0.5)
    points = timeline.relative()
    # A preemption can overlap for a moment (the new holder adds the VIP before the old
    # one hears of it): counted and reported, not a failure of the benchmark.
    two = max(most, most_back) > 1 or any(len(holders) > 1 for _, holders in points)
    return {"vip_moved": moved, "vip_back": back, "two_holders": two, "timeline": points}


def apiserver_outage(window=30.0, outage=10.0):
    """
    Stop one apiserver 2 s into a `window`-second load and start it again
    `outage` seconds later; count the failed requests.
    """
    names = list(lab.controllers())
    victim, client = names[1], names[2]
    url = f"http://{lab.vip()}/healthz"
    proc = subprocess.Popen(
        lab.in_container(client, f"python3 -c '{LOAD}' {window} {url}"),
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    lab.cexec(victim, "systemctl kill -s KILL kube-apiserver; systemctl stop kube-apiserver")
    time.sleep(outage)
    lab.cexec(victim, "systemctl start kube-apiserver", check=True)
    out, _ = proc.communicate(timeout=window + 30)
    failed = [float(line) for line in out.splitlines() if not line.startswith("sent")]
    sent = int(out.strip().splitlines()[-1].split()[1])
    return {
        "failed_requests": len(failed),
        "failing_seconds": round(failed[-1] - failed[0], 2) if failed else 0.0,
        "sent": sent,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="failover benchmark on the lab")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--kill-trials", type=int, default=3)
    parser.add_argument("--out", default="build/bench", help="directory of the results")
    parser.add_argument("--gate", action="store_true", help="exit 1 when the CI gate fails")
    args = parser.parse_args(argv)
    if lab.bring_up(orchestration=True) != 0:
        return 1
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} cores",
        "command": f"bench/failover.py --trials {args.trials} --kill-trials {args.kill_trials}",
        "profiles": {},
    }
    try:
        for profile in report.PROFILES:
            print(f"bench: profile {profile}", flush=True)
            use_profile(profile)
            trials = results["profiles"][profile] = {"vip": [], "apiserver": []}
            for number in range(args.trials):
                trials["vip"].append(vip_trial())
                shown = {k: v for k, v in trials["vip"][-1].items() if k != "timeline"}
                print(f"  vip trial {number + 1}: {shown}", flush=True)
                settle()
            for number in range(args.kill_trials):
                trials["apiserver"].append(apiserver_outage())
                print(f"  apiserver trial {number + 1}: {trials['apiserver'][-1]}", flush=True)
                settle()
    finally:
        lab.set_overrides(None)
        salt("k8s-controller-*", "saltutil.refresh_pillar", "wait=True")
        salt("k8s-controller-*", "state.apply", "k8s_control_plane.loadbalancer")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "failover.json").write_text(json.dumps(results, indent=1))
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
