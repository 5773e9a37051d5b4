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
Results: printed, and written to build/bench/failover.json.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.lab import lab

PROFILES = ("seed", "tuned")
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
    lab.cexec(first, "systemctl stop haproxy", check=True)
    try:
        moved, most = lab.wait_for_holders([second], 60)
    finally:
        lab.cexec(first, "systemctl start haproxy", check=True)
    back, most_back = lab.wait_for_holders([first], 60)
    if max(most, most_back) > 1:
        raise lab.LabError("bench: two controllers held the VIP at once")
    return {"vip_moved": moved, "vip_back": back}


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


def summarize(samples):
    keys = sorted({k for s in samples for k in s if k != "sent"})
    return {
        k: {
            "median": round(statistics.median(s[k] for s in samples), 2),
            "min": round(min(s[k] for s in samples), 2),
            "max": round(max(s[k] for s in samples), 2),
            "n": len(samples),
        }
        for k in keys
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="failover benchmark on the lab")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--kill-trials", type=int, default=3)
    parser.add_argument("--out", default="build/bench/failover.json")
    args = parser.parse_args(argv)
    if lab.bring_up(orchestration=True) != 0:
        return 1
    results = {}
    try:
        for profile in PROFILES:
            print(f"bench: profile {profile}", flush=True)
            use_profile(profile)
            samples = []
            for trial in range(args.trials):
                samples.append(vip_trial())
                print(f"  vip trial {trial + 1}: {samples[-1]}", flush=True)
                settle()
            kills = []
            for trial in range(args.kill_trials):
                kills.append(apiserver_outage())
                print(f"  apiserver trial {trial + 1}: {kills[-1]}", flush=True)
                settle()
            results[profile] = summarize(samples) | summarize(kills)
    finally:
        lab.set_overrides(None)
        salt("k8s-controller-*", "saltutil.refresh_pillar", "wait=True")
        salt("k8s-controller-*", "state.apply", "k8s_control_plane.loadbalancer")
    print(f"\n{'metric':18} {'seed (median)':>14} {'tuned (median)':>15} {'tuned/seed':>11}")
    for metric in results["seed"]:
        seed, tuned = results["seed"][metric]["median"], results["tuned"][metric]["median"]
        ratio = f"{tuned / seed:.2f}" if seed else "-"
        print(f"{metric:18} {seed:14.2f} {tuned:15.2f} {ratio:>11}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
