"""
A real master and three minions: the highstate and the orchestration in test
mode, the steps in order, and a bad pillar stopping the run at validation.
"""

import pytest

from tests.support.orchestration import step_ids, steps_reported_after_a_failed_validation

STEPS = step_ids()


def _ordered(results):
    return sorted(results.values(), key=lambda r: r["__run_num__"])


@pytest.fixture(scope="module")
def synced(salt_cli):
    ret = salt_cli.run("saltutil.sync_all", minion_tgt="k8s-controller-*")
    assert ret.returncode == 0, ret


def test_highstate_test_mode_on_every_controller(salt_cli, synced):
    ret = salt_cli.run("state.apply", "test=True", minion_tgt="k8s-controller-*")
    assert ret.returncode == 0, ret.stdout
    assert set(ret.data) == {"k8s-controller-1", "k8s-controller-2", "k8s-controller-3"}
    for minion, results in ret.data.items():
        assert isinstance(results, dict), f"{minion}: {results}"
        failed = {k: v["comment"] for k, v in results.items() if v["result"] is False}
        assert not failed, f"{minion}: {failed}"
        ids = {v["__id__"] for v in results.values()}
        assert "k8s_control_plane-loadbalancer-keepalived-file-managed" in ids
        assert "k8s_control_plane-controlplane-services-service-running-kube-apiserver" in ids
        rbac = {i for i in ids if i.startswith("k8s_control_plane-rbac-k8s_object")}
        assert bool(rbac) == (minion == "k8s-controller-1"), (minion, rbac)


def test_role_module_from_the_cli(salt_cli, synced):
    ret = salt_cli.run("k8s_keepalived.role", minion_tgt="k8s-controller-2")
    assert ret.data["state"] == "BACKUP"
    assert ret.data["priority"] == 100
    assert ret.data["unicast_peers"] == ["10.240.0.11", "10.240.0.13"]


def test_orchestration_test_mode_runs_the_steps_in_order(salt_run_cli):
    ret = salt_run_cli.run("state.orchestrate", "orch.control_plane", "test=True")
    assert ret.returncode == 0, ret.stdout
    results = next(iter(ret.data["data"].values()))
    ordered = [r["__id__"] for r in _ordered(results)]
    assert ordered == STEPS
    assert all(r["result"] is not False for r in results.values()), results


def test_bad_pillar_stops_the_orchestration_at_validation(salt_run_cli, pillar_override):
    pillar_override({"vip": {"address": "10.250.0.10"}, "profile": "fast"})
    ret = salt_run_cli.run("state.orchestrate", "orch.control_plane", "test=True")
    assert ret.returncode != 0
    results = {r["__id__"]: r for r in _ordered(next(iter(ret.data["data"].values())))}
    validate = results["orch-validate"]
    assert validate["result"] is False
    assert "k8s_control_plane:vip:address: 10.250.0.10 is outside" in str(validate)
    assert "k8s_control_plane:profile: 'fast' is invalid; valid: tuned, seed" in str(validate)
    reported = steps_reported_after_a_failed_validation(test=True)
    assert list(results) == reported
    for step in reported[1:]:
        assert results[step]["result"] is False, step
        assert "requisite" in results[step]["comment"].lower(), results[step]["comment"]


def test_beside_unrelated_formulas_named_etcd_and_haproxy(salt_cli, synced):
    """
    The master also serves formulas named etcd and haproxy (conftest's second
    file root): ours lives under k8s_control_plane/, so both apply together
    with no clash of SLS names or state IDs.
    """
    ret = salt_cli.run(
        "state.apply", "k8s_control_plane,etcd,haproxy", "test=True", minion_tgt="k8s-controller-2"
    )
    assert ret.returncode == 0, ret.stdout
    results = ret.data
    failed = {k: v["comment"] for k, v in results.items() if v["result"] is False}
    assert not failed, failed
    by_sls = {}
    for result in results.values():
        by_sls.setdefault(result["__sls__"], set()).add(result["__id__"])
    assert by_sls["etcd"] == {"etcd-formula-test-nop"}
    assert by_sls["haproxy"] == {"haproxy-formula-test-nop"}
    ours = {i for s, ids in by_sls.items() if s.startswith("k8s_control_plane") for i in ids}
    assert all(i.startswith("k8s_control_plane-") for i in ours), ours


def test_upgrade_test_mode_predicts_the_steps(salt_run_cli):
    """orch.upgrade on the real master: the steps its compile promises, in order, nothing failed."""
    from tests.support.orchestration import REPO, cluster_pillar, load

    ret = salt_run_cli.run("state.orchestrate", "orch.upgrade", "test=True")
    assert ret.returncode == 0, ret.stdout
    results = next(iter(ret.data["data"].values()))
    ran = [r["__id__"] for r in _ordered(results)]
    ids = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]
    compiled = load(
        {m: cluster_pillar("hardway", ids) for m in ids},
        orch=REPO / "salt" / "orch" / "upgrade.sls",
    )
    assert ran == step_ids(compiled.run())
    assert all(r["result"] is not False for r in results.values()), results
    skew = next(r for r in results.values() if r["__id__"] == "upgrade-skew")
    assert "respects the skew policy" in skew["comment"]
