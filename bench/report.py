"""
The failover benchmark's report, from its results file alone (no lab): the
statistics per profile, the Markdown tables, the CI gate and the plot of the
VIP holders over time. bench/failover.py writes the results; a unit test runs
this module on a recorded run (bench/samples/).

Results format (JSON, "format": 2):

    {"date": "2026-12-03", "machine": "...", "command": "...",
     "faults": {fault: "what it does", ...},
     "profiles": {"seed": {"faults": {fault: [vip trial, ...]},
                           "apiserver": [apiserver trial, ...],
                           "load": load run or null},
                  "tuned": {...}},
     "orchestration": {"seed-3": {"fresh": [s, ...], "noop": [s, ...],
                                  "floor": [s, ...]},
                       "tuned-3": {...}, "tuned-5": {...}}}

The floor of a fresh run (floor_of): what the binaries themselves need, from the
same run's state durations: etcd's start to ready on its slowest member (the
members start at once; the unit is Type=notify, so systemctl returns when etcd
is ready), plus, for each controller in the rolling order, its apiserver's start
and the wait until its /readyz answers (one at a time). Downloads and keys are
Salt's work, not the floor.

A vip trial: {"moved": s or null, "left": s or null, "back": s or null,
"flaps": n, "two_holders_s": s, "no_holder_s": s, "timeline": [[t, [holders]],
...]} (t in seconds from the fault; "back" from the recovery, or from the
fault when it heals by itself). An apiserver trial: {"failed_down": n,
"out_of_rotation": s, "readmitted": s, "failed_back": n, "sent": n}. A load
run: {"seconds": s, "vip_changes": n, "failed_requests": n, "sent": n}.
"""

from __future__ import annotations

import json
import pathlib
import statistics

PROFILES = ("seed", "tuned")
# (key, label, unit) of a VIP trial
VIP_METRICS = (
    ("moved", "VIP on the next controller", "s"),
    ("back", "VIP back on the first", "s"),
)
APISERVER_METRICS = (
    ("failed_down", "failed requests while it is down", ""),
    ("out_of_rotation", "seconds until haproxy takes it out of rotation", "s"),
    ("readmitted", "started again: seconds until haproxy has it back", "s"),
    ("failed_back", "failed requests after the start", ""),
)
ORCHESTRATION = (("seed-3", "seed profile, 3"), ("tuned-3", "tuned, 3"), ("tuned-5", "tuned, 5"))
# The CI gate: in the same run, the tuned profile moves the VIP at least this
# many times faster than the seed profile after these faults (haproxy's death
# seen by an event against the seed's 5 s poll), and loses no request to a
# dead apiserver. keepalived-stop is not gated: both profiles are bounded there
# by VRRP's skew time, whose ratio is the adverts' ratio (2) and noise decides.
MIN_SPEEDUP = 2.0
GATED_FAULTS = ("haproxy-stop",)


def load(path) -> dict:
    results = json.loads(pathlib.Path(path).read_text())
    if results.get("format") != 2:
        raise ValueError(f"{path}: not a format 2 results file of bench/failover.py")
    missing = [p for p in PROFILES if p not in results.get("profiles", {})]
    if missing:
        raise ValueError(f"{path}: no results for profile(s) {', '.join(missing)}")
    return results


def floor_of(data, root: str = "k8s_control_plane") -> float | None:
    """
    The floor of a fresh orchestration, in seconds, from its result (``salt-run
    state.orchestrate --out=json``); None when etcd's start or an apiserver's is missing.
    """
    body = data.get("data", data) if isinstance(data, dict) else {}
    etcd, apiservers = [], {}
    wanted = {
        f"{root}-controlplane-services-service-running-kube-apiserver",
        f"{root}-controlplane-services-k8s_health-ready",
    }
    for steps in body.values() if isinstance(body, dict) else []:
        for step in steps.values() if isinstance(steps, dict) else []:
            ret = (step.get("changes") or {}).get("ret") if isinstance(step, dict) else None
            for minion, states in (ret or {}).items():
                for state in states.values() if isinstance(states, dict) else []:
                    sid, ms = state.get("__id__"), state.get("duration") or 0
                    if sid == f"{root}-etcd-service-running":
                        etcd.append(ms / 1000)
                    elif sid in wanted:
                        apiservers[minion] = apiservers.get(minion, 0) + ms / 1000
    if not etcd or not apiservers:
        return None
    return round(max(etcd) + sum(apiservers.values()), 2)


def stats(values) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "n": len(values),
    }


def fault_names(results) -> list[str]:
    return [
        f
        for f in results.get("faults", {})
        if all(f in results["profiles"][p]["faults"] for p in PROFILES)
    ]


def summarize(results) -> dict:
    """{profile: {"faults": {fault: {metric: stats}}, "apiserver": {metric: stats}}}."""
    out = {}
    for profile in PROFILES:
        data = results["profiles"][profile]
        out[profile] = {
            "faults": {
                fault: {key: stats(t.get(key) for t in trials) for key, _, _ in VIP_METRICS}
                for fault, trials in data["faults"].items()
            },
            "apiserver": {
                key: stats(t.get(key) for t in data["apiserver"]) for key, _, _ in APISERVER_METRICS
            },
        }
    return out


def _cell(entry, unit, n_expected=None) -> str:
    if entry is None:
        return "never"
    suffix = f" {unit}" if unit else ""
    fmt = "{:g}" if not unit else "{:.2f}"
    median, low, high = (fmt.format(entry[k]) for k in ("median", "min", "max"))
    cell = f"{median}{suffix} ({low}-{high})"
    if n_expected is not None and entry["n"] < n_expected:
        cell += f", in {entry['n']} of {n_expected}"
    return cell


def ratio(seed, tuned) -> str:
    if seed is None or tuned is None:
        return "-"
    if not seed["median"]:
        return "-" if tuned["median"] else "1"
    return f"{tuned['median'] / seed['median']:.2f}"


def markdown(results) -> str:
    summary = summarize(results)
    profiles = results["profiles"]
    lines = [
        "| fault on the VIP holder (trials) | measured (median, min-max) | seed | tuned "
        "| tuned/seed |",
        "|---|---|---|---|---|",
    ]
    for fault in fault_names(results):
        n = len(profiles["tuned"]["faults"][fault])
        what = results["faults"][fault]
        for key, label, unit in VIP_METRICS:
            seed, tuned = (summary[p]["faults"][fault][key] for p in PROFILES)
            counts = (len(profiles[p]["faults"][fault]) for p in PROFILES)
            cells = (_cell(e, unit, c) for e, c in zip((seed, tuned), counts, strict=True))
            lines.append(f"| {what} ({n}) | {label} | {' | '.join(cells)} | {ratio(seed, tuned)} |")
    n = len(profiles["tuned"]["apiserver"])
    for key, label, unit in APISERVER_METRICS:
        seed, tuned = (summary[p]["apiserver"][key] for p in PROFILES)
        lines.append(
            f"| an apiserver SIGKILLed, 20 req/s through the VIP ({n}) | {label} "
            f"| {_cell(seed, unit)} | {_cell(tuned, unit)} | {ratio(seed, tuned)} |"
        )
    loads = {p: profiles[p].get("load") for p in PROFILES}
    if all(loads.values()):
        cells = [
            f"{loads[p]['vip_changes']} VIP changes, {loads[p]['failed_requests']} of "
            f"{loads[p]['sent']} requests failed"
            for p in PROFILES
        ]
        lines.append(
            f"| load: CPUs saturated, UDP floods, 100 req/s ({loads['tuned']['seconds']:g} s) "
            f"| VIP changes, failed requests | {cells[0]} | {cells[1]} | - |"
        )
    lines += ["", _holder_counts(results)]
    lines += orchestration_lines(results)
    when, where = results.get("date", "?"), results.get("machine", "?")
    lines += ["", f"{when}, {where}: `{results.get('command', '?')}`"]
    return "\n".join(lines) + "\n"


def orchestration_lines(results) -> list[str]:
    """The orchestration table: fresh runs, their floor, the no-op, and 5 against 3."""
    orch = results.get("orchestration") or {}
    if not orch:
        return []
    lines = [
        "",
        "| orchestration (trials) | on fresh controllers | its floor | fresh / floor "
        "| no-op re-run |",
        "|---|---|---|---|---|",
    ]
    for key, label in ORCHESTRATION:
        if key in orch:
            fresh, noop = stats(orch[key]["fresh"]), stats(orch[key]["noop"])
            floor = stats(orch[key].get("floor") or [])
            share = f"{fresh['median'] / floor['median']:.2f}" if fresh and floor else "-"
            lines.append(
                f"| {label} controllers ({len(orch[key]['fresh'])}) "
                f"| {_cell(fresh, 's')} | {_cell(floor, 's')} | {share} "
                f"| {_cell(noop, 's')} |"
            )
    if "tuned-3" in orch and "tuned-5" in orch:
        parts = []
        for kind in ("fresh", "noop"):
            three, five = stats(orch["tuned-3"][kind]), stats(orch["tuned-5"][kind])
            parts.append(f"{kind} {five['median'] / three['median']:.2f}")
        lines.append(f"| 5 controllers / 3 (tuned, medians) | {' | '.join(parts)} | | |")
    return lines


def _holder_counts(results) -> str:
    """How often the VIP had two holders or none, over all the fault trials of a profile."""
    parts = []
    for profile in PROFILES:
        trials = [t for ts in results["profiles"][profile]["faults"].values() for t in ts]
        two = [t["two_holders_s"] for t in trials if t["two_holders_s"] > 0]
        flaps = sum(t["flaps"] for t in trials)
        none = stats(t["no_holder_s"] for t in trials)
        parts.append(
            f"{profile}: two holders in {len(two)} of {len(trials)} trials"
            + (f" (longest {max(two):.2f} s)" if two else "")
            + f", no holder for {none['median']:.2f} s median (max {none['max']:.2f} s),"
            f" {flaps} flaps after the VIP was back"
            if none
            else f"{profile}: no trials"
        )
    return "VIP holder census (polled every 10 ms): " + "; ".join(parts) + "."


def gate(results) -> list[str]:
    """Why the tuned profile fails the CI gate in this run; empty when it passes."""
    summary = summarize(results)
    errors = []
    for fault in GATED_FAULTS:
        moved = {p: summary[p]["faults"].get(fault, {}).get("moved") for p in PROFILES}
        seed, tuned = moved["seed"], moved["tuned"]
        if seed is None or tuned is None:
            errors.append(f"{fault}: no VIP move measured for both profiles")
        elif tuned["median"] * MIN_SPEEDUP > seed["median"]:
            errors.append(
                f"{fault}: tuned moved the VIP in {tuned['median']} s, not {MIN_SPEEDUP:g}x "
                f"faster than seed's {seed['median']} s"
            )
    trials = results["profiles"]["tuned"]["apiserver"]
    if not trials:
        errors.append("no apiserver trials for the tuned profile")
    else:
        lost = max(t["failed_down"] + t["failed_back"] for t in trials)
        if lost:
            errors.append(f"tuned lost {lost} request(s) to a dead or returning apiserver")
    return errors


def plot(results, path) -> pathlib.Path:
    """The VIP holder over time in every trial: one row per fault, one column per profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faults = fault_names(results)
    names = sorted(
        {
            holder
            for profile in PROFILES
            for trials in results["profiles"][profile]["faults"].values()
            for trial in trials
            for _, holders in trial.get("timeline", [])
            for holder in holders
        }
    )
    rows = {name: i + 1 for i, name in enumerate(names)}
    fig, axes = plt.subplots(
        len(faults), len(PROFILES), figsize=(11, 2.4 * len(faults) + 0.8), sharey=True,
        squeeze=False,
    )  # fmt: skip
    for row, fault in enumerate(faults):
        for ax, profile in zip(axes[row], PROFILES, strict=True):
            for trial in results["profiles"][profile]["faults"][fault]:
                points = trial.get("timeline", [])
                if not points:
                    continue
                times = [t for t, _ in points]
                # one holder: its row; none: 0; two or more: the rows' mean
                ys = [
                    sum(rows[h] for h in holders) / len(holders) if holders else 0
                    for _, holders in points
                ]
                ax.step(times, ys, where="post", alpha=0.6)
            ax.axvline(0, color="grey", linestyle=":", linewidth=1)
            ax.set_title(f"{fault}, profile {profile}", fontsize="medium")
        axes[row][0].set_yticks([0, *rows.values()], ["none", *rows], fontsize="small")
    for ax in axes[-1]:
        ax.set_xlabel("seconds after the fault on the holder")
    fig.suptitle(f"VIP holder through each fault and its recovery ({results.get('date', '')})")
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
