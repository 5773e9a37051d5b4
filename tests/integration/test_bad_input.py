"""
A sample of the invalid-pillar corpus (tests/corpus/invalid.yaml) through a
real master: the orchestration, run for real, stops at its first step with
every error of the case, and a highstate fails at validation with nothing
else run. (Minions here share this machine's filesystem, so the highstate
runs in test mode; the lab runs both for real and compares every managed
file and service before and after.)
"""

import pytest

from tests import corpus
from tests.support.orchestration import steps_reported_after_a_failed_validation

SAMPLE = (
    "loadbalancer-typo",
    "seed-style-auth-pass",
    "timeout-check-in-words",
    "tls-port-etcd-client",
    "version-leading-zero",
)
CASES = {c["name"]: c for c in corpus.cases(yaml_faults=False)}
VALIDATED = "k8s_control_plane-cluster-validate-k8s_cluster-validated"


def _expected(case):
    supported = "1.18.x - 1.37.x"
    return [
        "k8s_control_plane:" + e.replace("{supported}", supported).replace("<file>", "hardway")
        for e in case["errors"]
    ]


@pytest.mark.parametrize("name", SAMPLE)
def test_invalid_pillar_is_refused_by_the_orchestration_and_the_highstate(
    name, salt_run_cli, salt_cli, pillar_override
):
    case = CASES[name]
    pillar_override(corpus.apply_changes({}, case["set"]))
    ret = salt_run_cli.run("state.orchestrate", "orch.control_plane")
    assert ret.returncode != 0
    results = {r["__id__"]: r for r in next(iter(ret.data["data"].values())).values()}
    validate = results["orch-validate"]
    assert validate["result"] is False
    for error in _expected(case):
        assert error in str(validate), error
    reported = steps_reported_after_a_failed_validation()
    assert sorted(results) == sorted(reported)
    for step in reported[1:]:
        assert results[step]["result"] is False, step
        assert "requisite" in results[step]["comment"].lower(), results[step]["comment"]
        assert results[step]["changes"] == {}, step
    if "auth_pass" in name:
        assert "k8s-pass" not in ret.stdout

    high = salt_cli.run("state.apply", "test=True", minion_tgt="k8s-controller-*")
    assert high.returncode != 0
    for minion, states in high.data.items():
        assert isinstance(states, dict), f"{minion}: {states}"
        by_id = {s["__id__"]: s for s in states.values()}
        assert by_id[VALIDATED]["result"] is False, minion
        for error in _expected(case):
            assert error in by_id[VALIDATED]["comment"], (minion, error)
        for sid, state in by_id.items():
            if sid != VALIDATED:
                assert state["result"] is False and not state["changes"], (minion, sid)
