"""bench/report.py on a recorded run of bench/failover.py (bench/samples/): statistics, the
Markdown table, the CI gate and the plot."""

import copy
import json
import pathlib
import struct

import pytest

from bench import report

SAMPLE = pathlib.Path(__file__).resolve().parents[2] / "bench" / "samples" / "failover.json"


@pytest.fixture
def results():
    return report.load(SAMPLE)


def test_sample_is_a_real_run_of_both_profiles(results):
    for profile in report.PROFILES:
        trials = results["profiles"][profile]
        assert len(trials["vip"]) >= 5 and len(trials["apiserver"]) >= 3
        for trial in trials["vip"]:
            # the timeline starts with the first controller holding the VIP and ends with it back
            assert trial["timeline"][0][1] == ["k8s-controller-1"], trial["timeline"]
            assert trial["timeline"][-1][1] == ["k8s-controller-1"], trial["timeline"]


def test_statistics_are_medians_min_max_over_the_trials(results):
    moved = [t["vip_moved"] for t in results["profiles"]["seed"]["vip"]]
    stats = report.summarize(results)["seed"]["vip_moved"]
    assert stats["n"] == len(moved)
    assert stats["min"] == round(min(moved), 2) and stats["max"] == round(max(moved), 2)
    assert stats["min"] <= stats["median"] <= stats["max"]
    assert report.stats([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert report.stats([None]) is None


def test_markdown_table_has_a_row_per_metric_and_the_ratio(results):
    table = report.markdown(results)
    lines = table.splitlines()
    assert lines[0] == "| metric (median, min-max) | seed | tuned | tuned/seed |"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == len(report.METRICS)
    summary = report.summarize(results)
    seed, tuned = summary["seed"]["vip_moved"]["median"], summary["tuned"]["vip_moved"]["median"]
    assert rows[0].endswith(f"| {tuned / seed:.2f} |"), rows[0]
    assert f"{seed:.2f} s (" in rows[0]
    assert results["date"] in lines[-1] and results["command"] in lines[-1]
    seen = sum(bool(t["two_holders"]) for t in results["profiles"]["seed"]["vip"])
    assert f"saw two holders at once: seed {seen} of " in table


def test_gate_passes_on_the_sample_and_fails_on_a_slow_or_lossy_tuned_profile(results):
    assert report.gate(results) == []
    slow = copy.deepcopy(results)
    seed = report.summarize(results)["seed"]["vip_moved"]["median"]
    for trial in slow["profiles"]["tuned"]["vip"]:
        trial["vip_moved"] = seed * 0.6
    assert report.gate(slow)[0].startswith("VIP move: tuned ")
    lossy = copy.deepcopy(results)
    lossy["profiles"]["tuned"]["apiserver"][0]["failed_requests"] = 2
    assert report.gate(lossy) == ["tuned lost 2 request(s) to a dead apiserver"]


def test_missing_profile_is_refused(tmp_path, results):
    del results["profiles"]["seed"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results))
    with pytest.raises(ValueError, match="no results for profile"):
        report.load(path)


def test_plot_is_a_png_of_the_timelines(results, tmp_path):
    path = report.plot(results, tmp_path / "failover.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1210, 396)  # figsize 11 x 3.6 at 110 dpi
