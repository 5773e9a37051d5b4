"""bench/report.py on a recorded run of bench/failover.py (bench/samples/): statistics, the
Markdown tables, the CI gate and the plot."""

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
    faults = report.fault_names(results)
    assert "haproxy-stop" in faults and len(faults) >= 2
    for profile in report.PROFILES:
        data = results["profiles"][profile]
        assert data["apiserver"], profile
        for fault in faults:
            assert len(data["faults"][fault]) >= 2, (profile, fault)
            for trial in data["faults"][fault]:
                # every timeline starts with the first controller holding the VIP, ends with it
                assert trial["timeline"][0][1] == ["k8s-controller-1"], trial["timeline"]
                assert trial["timeline"][-1][1] == ["k8s-controller-1"], trial["timeline"]
                assert trial["timeline"][0][0] < 0  # polled before the fault
                if trial["moved"] is None and trial["left"] is None:  # the VIP never left
                    assert len(trial["timeline"]) == 1, trial["timeline"]
                else:
                    assert 0 <= trial["timeline"][1][0] <= trial["left"] + 0.001, trial


def test_statistics_are_medians_min_max_over_the_trials(results):
    moved = [t["moved"] for t in results["profiles"]["seed"]["faults"]["haproxy-stop"]]
    stats = report.summarize(results)["seed"]["faults"]["haproxy-stop"]["moved"]
    assert stats["n"] == len(moved)
    assert stats["min"] == round(min(moved), 2) and stats["max"] == round(max(moved), 2)
    assert stats["min"] <= stats["median"] <= stats["max"]
    assert report.stats([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert report.stats([None]) is None
    assert report.stats([None, 1.0])["n"] == 1  # a VIP that never moved is left out, counted


def test_markdown_has_a_row_per_fault_metric_and_apiserver_metric(results):
    table = report.markdown(results)
    lines = table.splitlines()
    assert lines[0].startswith("| fault on the VIP holder (trials) |")
    faults = report.fault_names(results)
    rows = [line for line in lines[2:] if line.startswith("| ") and "---" not in line]
    fault_rows = [r for r in rows if "apiserver SIGKILLed" not in r and "load:" not in r]
    expected = len(faults) * len(report.VIP_METRICS)
    assert len(fault_rows[:expected]) == expected
    summary = report.summarize(results)
    first = summary["seed"]["faults"][faults[0]]["moved"], summary["tuned"]["faults"][faults[0]]
    seed, tuned = first[0]["median"], first[1]["moved"]["median"]
    assert rows[0].endswith(f"| {tuned / seed:.2f} |"), rows[0]
    assert f"{seed:.2f} s (" in rows[0]
    assert sum("apiserver SIGKILLed" in r for r in rows) == len(report.APISERVER_METRICS)
    assert results["date"] in lines[-1] and results["command"] in lines[-1]
    assert "VIP holder census (polled every 10 ms): seed: two holders in " in table


def test_a_vip_that_never_moved_says_so(results):
    never = copy.deepcopy(results)
    for trial in never["profiles"]["seed"]["faults"]["haproxy-stop"]:
        trial["moved"] = None
    row = next(r for r in report.markdown(never).splitlines() if "VIP on the next" in r)
    assert "| never |" in row and row.endswith("| - |"), row


def test_gate_passes_on_the_sample_and_fails_on_a_slow_or_lossy_tuned_profile(results):
    assert report.gate(results) == []
    slow = copy.deepcopy(results)
    seed = report.summarize(results)["seed"]["faults"]["haproxy-stop"]["moved"]["median"]
    for trial in slow["profiles"]["tuned"]["faults"]["haproxy-stop"]:
        trial["moved"] = seed * 0.6
    assert report.gate(slow)[0].startswith("haproxy-stop: tuned moved the VIP in ")
    lossy = copy.deepcopy(results)
    lossy["profiles"]["tuned"]["apiserver"][0]["failed_back"] = 2
    assert report.gate(lossy) == ["tuned lost 2 request(s) to a dead or returning apiserver"]
    missing = copy.deepcopy(results)
    del missing["profiles"]["seed"]["faults"]["haproxy-stop"]
    assert report.gate(missing) == ["haproxy-stop: no VIP move measured for both profiles"]


def test_orchestration_table_and_the_5_to_3_ratio():
    results = {
        "format": 2,
        "faults": {},
        "profiles": {p: {"faults": {}, "apiserver": [], "load": None} for p in report.PROFILES},
        "orchestration": {
            "tuned-3": {
                "fresh": [50.0, 52.0, 60.0],
                "noop": [10.0, 11.0, 12.0],
                "floor": [40.0, 40.0, 41.0],
            },
            "tuned-5": {"fresh": [65.0, 70.0, 80.0], "noop": [13.0, 14.0, 15.0]},
        },
    }
    table = report.markdown(results)
    assert (
        "| tuned, 3 controllers (3) | 52.00 s (50.00-60.00) | 40.00 s (40.00-41.00) | 1.30 "
        "| 11.00 s (10.00-12.00) |" in table
    )
    assert "| tuned, 5 controllers (3) | 70.00 s (65.00-80.00) | never | - |" in table
    assert "| 5 controllers / 3 (tuned, medians) | fresh 1.35 | noop 1.27 | | |" in table


def test_old_or_partial_results_are_refused(tmp_path, results):
    path = tmp_path / "r.json"
    old = dict(results, format=1)
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError, match="not a format 2 results file"):
        report.load(path)
    del results["profiles"]["seed"]
    path.write_text(json.dumps(results))
    with pytest.raises(ValueError, match="no results for profile"):
        report.load(path)


def test_plot_is_a_png_with_a_row_per_fault(results, tmp_path):
    path = report.plot(results, tmp_path / "failover.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    rows = len(report.fault_names(results))
    assert (width, height) == (1100, round((2.4 * rows + 0.8) * 100))  # figsize at 100 dpi


def _orch_result(states_by_step):
    """An orchestration's JSON result: {step: {minion: {state id: duration ms}}}."""
    steps = {}
    for step, minions in states_by_step.items():
        ret = {
            m: {f"x_|-{sid}_|-n_|-f": {"__id__": sid, "duration": ms} for sid, ms in s.items()}
            for m, s in minions.items()
        }
        steps[f"salt_|-{step}_|-{step}_|-state"] = {"changes": {"ret": ret}}
    return {"data": {"lab-master": steps}}


def test_the_floor_is_etcd_on_its_slowest_member_plus_each_apiserver_in_turn():
    api = "k8s_control_plane-controlplane-services-service-running-kube-apiserver"
    ready = "k8s_control_plane-controlplane-services-k8s_health-ready"
    etcd = "k8s_control_plane-etcd-service-running"
    data = _orch_result(
        {
            "orch-etcd": {"c1": {etcd: 2500, "other": 9000}, "c2": {etcd: 3000}},
            "orch-controlplane": {
                "c1": {api: 500, ready: 6000, "download": 20000},
                "c2": {api: 400, ready: 7100},
            },
        }
    )
    assert report.floor_of(data) == 3.0 + 6.5 + 7.5
    assert report.floor_of(_orch_result({"orch-etcd": {"c1": {etcd: 1}}})) is None
    assert report.floor_of(None) is None
