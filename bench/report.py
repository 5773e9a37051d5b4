"""
The failover benchmark's report, from its results file alone (no lab): the
statistics per profile, the Markdown table, the CI gate and the plot of the
VIP holders over time. bench/failover.py writes the results; a unit test runs
this module on a recorded run (bench/samples/).

Results format (JSON):

    {"date": "2026-12-03", "machine": "...", "command": "...",
     "profiles": {"seed": {"vip": [trial, ...], "apiserver": [trial, ...]},
                  "tuned": {...}}}

A vip trial: {"vip_moved": s, "vip_back": s, "two_holders": bool,
"timeline": [[t, [holders]], ...]}
(the holders each time they changed, t in seconds from haproxy's stop). An
apiserver trial: {"failed_requests": n, "failing_seconds": s, "sent": n}.
"""

from __future__ import annotations

import json
import pathlib
import statistics

PROFILES = ("seed", "tuned")
# (kind of trial, key, label, unit)
METRICS = (
    ("vip", "vip_moved", "haproxy stopped on the VIP holder: VIP on the next controller", "s"),
    ("vip", "vip_back", "haproxy started again: VIP back on the first controller", "s"),
    (
        "apiserver",
        "failed_requests",
        "one apiserver down for 10 s, 20 req/s through the VIP: failed requests",
        "",
    ),
    ("apiserver", "failing_seconds", "same: first to last failed request", "s"),
)
# The CI gate: in the same run, the tuned profile moves the VIP at least this
# many times faster than the seed profile, and loses no request to a dead apiserver.
MIN_SPEEDUP = 2.0


def load(path) -> dict:
    results = json.loads(pathlib.Path(path).read_text())
    missing = [p for p in PROFILES if p not in results.get("profiles", {})]
    if missing:
        raise ValueError(f"{path}: no results for profile(s) {', '.join(missing)}")
    return results


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


def summarize(results) -> dict:
    """{profile: {metric: {median, min, max, n}}}."""
    return {
        profile: {
            key: stats(trial.get(key) for trial in results["profiles"][profile].get(kind, []))
            for kind, key, _, _ in METRICS
        }
        for profile in PROFILES
    }


def _cell(entry, unit) -> str:
    if entry is None:
        return "-"
    suffix = f" {unit}" if unit else ""
    fmt = "{:g}" if not unit else "{:.2f}"
    median, low, high = (fmt.format(entry[k]) for k in ("median", "min", "max"))
    return f"{median}{suffix} ({low}-{high})"


def ratio(seed, tuned) -> str:
    if seed is None or tuned is None:
        return "-"
    if not seed["median"]:
        return "-" if tuned["median"] else "1"
    return f"{tuned['median'] / seed['median']:.2f}"


def markdown(results) -> str:
    summary = summarize(results)
    trials = {
        kind: len(results["profiles"]["tuned"].get(kind, [])) for kind in ("vip", "apiserver")
    }
    lines = [
        "| metric (median, min-max) | seed | tuned | tuned/seed |",
        "|---|---|---|---|",
    ]
    for kind, key, label, unit in METRICS:
        seed, tuned = summary["seed"][key], summary["tuned"][key]
        lines.append(
            f"| {label} ({trials[kind]} trials) | {_cell(seed, unit)} | {_cell(tuned, unit)} "
            f"| {ratio(seed, tuned)} |"
        )
    seen = {
        profile: sum(bool(t.get("two_holders")) for t in results["profiles"][profile]["vip"])
        for profile in PROFILES
    }
    lines.append("")
    lines.append(
        "VIP trials in which a poll (every 50 ms) saw two holders at once: "
        + ", ".join(f"{p} {seen[p]} of {len(results['profiles'][p]['vip'])}" for p in PROFILES)
        + "."
    )
    when, where = results.get("date", "?"), results.get("machine", "?")
    lines.append(f"{when}, {where}: `{results.get('command', '?')}`")
    return "\n".join(lines) + "\n"


def gate(results) -> list[str]:
    """Why the tuned profile fails the CI gate in this run; empty when it passes."""
    summary = summarize(results)
    errors = []
    seed, tuned = summary["seed"]["vip_moved"], summary["tuned"]["vip_moved"]
    if seed is None or tuned is None:
        errors.append("no VIP trials for both profiles")
    elif tuned["median"] * MIN_SPEEDUP > seed["median"]:
        errors.append(
            f"VIP move: tuned {tuned['median']} s is not {MIN_SPEEDUP:g}x faster than "
            f"seed {seed['median']} s"
        )
    failed = summary["tuned"]["failed_requests"]
    if failed is None:
        errors.append("no apiserver trials for the tuned profile")
    elif failed["max"] > 0:
        errors.append(f"tuned lost {failed['max']:g} request(s) to a dead apiserver")
    return errors


def plot(results, path) -> pathlib.Path:
    """The VIP holder over time in every VIP trial, one panel per profile (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(
        {
            holder
            for profile in PROFILES
            for trial in results["profiles"][profile].get("vip", [])
            for _, holders in trial.get("timeline", [])
            for holder in holders
        }
    )
    rows = {name: i + 1 for i, name in enumerate(names)}
    fig, axes = plt.subplots(1, len(PROFILES), figsize=(11, 3.6), sharey=True)
    for ax, profile in zip(axes, PROFILES, strict=True):
        for number, trial in enumerate(results["profiles"][profile].get("vip", []), 1):
            points = trial.get("timeline", [])
            if not points:
                continue
            times = [t for t, _ in points]
            # one holder: its row; none: 0; two or more: the rows' mean, marked
            ys = [
                sum(rows[h] for h in holders) / len(holders) if holders else 0
                for _, holders in points
            ]
            ax.step(times, ys, where="post", alpha=0.7, label=f"trial {number}")
        ax.axvline(0, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"profile {profile}")
        ax.set_xlabel("seconds after haproxy stopped on the holder")
    axes[0].set_yticks([0, *rows.values()], ["none", *rows])
    axes[0].set_ylabel("VIP holder")
    axes[-1].legend(loc="upper right", fontsize="small")
    fig.suptitle(f"VIP holder during failover and preemption ({results.get('date', '')})")
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
