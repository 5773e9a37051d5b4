"""The orchestration file's compile step: which cluster, which minions, which steps."""

import itertools

import pytest
from salt.exceptions import SaltRenderError

from tests.support.orchestration import compile_steps, fields, identity, load, requires, step_ids

IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]


def test_one_cluster_needs_no_argument():
    module = load({m: identity("hardway", IDS) for m in IDS})
    steps = module.run()
    # Pillar refreshed on this cluster's candidates and modules synced before anything is asked.
    assert module.calls[:3] == [
        ("*", "saltutil.refresh_pillar"),
        "saltutil.sync_all",
        ("I@k8s_control_plane:cluster:*", "saltutil.sync_all"),
    ]
    assert ("I@k8s_control_plane:cluster:*", "k8s_cluster.identity") in module.calls
    controlplane = fields(steps["orch-controlplane"])
    assert controlplane["batch"] == "1"
    assert controlplane["tgt"] == "I@k8s_control_plane:cluster:hardway"
    assert fields(steps["orch-rbac"])["tgt"] == "k8s-controller-1"


def test_the_steps_form_one_chain_in_the_designed_order():
    """The design (README, "The orchestration"): each step requires the one before."""
    steps = compile_steps()
    order = step_ids(steps)
    for before, after in itertools.pairwise(order):
        assert requires(steps[after]) == [before], after
    position = {step: order.index(step) for step in order}
    # Validation first; the load balancer and one VIP holder before the control
    # plane; every apiserver ready before the RBAC; the verification last.
    assert order[0] == "orch-validate"
    assert position["orch-loadbalancer"] < position["orch-vip-single-holder"]
    assert position["orch-vip-single-holder"] < position["orch-controlplane"]
    assert position["orch-etcd"] < position["orch-controlplane"] < position["orch-wait-ready"]
    assert position["orch-wait-ready"] < position["orch-rbac"]
    assert order[-1] == "orch-verify"


def test_states_come_from_the_formula_root():
    sls = {s: fields(d).get("sls") for s, d in compile_steps().items() if "salt.state" in d}
    assert sls["orch-validate"] == ["k8s_control_plane.cluster.validate"]
    assert sls["orch-controlplane"] == ["k8s_control_plane.controlplane"]
    moved = compile_steps(options={"k8s_control_plane_root": "formulas_k8s"})
    assert fields(moved["orch-rbac"])["sls"] == ["formulas_k8s.rbac"]


def test_rbac_controller_comes_from_apply_from():
    module = load({m: identity("hardway", IDS, "k8s-controller-3") for m in IDS})
    assert fields(module.run()["orch-rbac"])["tgt"] == "k8s-controller-3"


def test_two_clusters_without_an_argument_say_how_to_pick():
    answers = {m: identity("hardway", IDS) for m in IDS}
    answers |= {f"prod-{i}": identity("prod", ["prod-1", "prod-2"]) for i in (1, 2)}
    with pytest.raises(SaltRenderError) as err:
        load(answers).run()
    assert "2 clusters on this master (hardway, prod)" in str(err.value)
    assert 'pillar=\'{"cluster": "hardway"}\'' in str(err.value)
    steps = load(answers, wanted="prod").run()
    assert fields(steps["orch-validate"])["tgt"] == "I@k8s_control_plane:cluster:prod"


def test_an_unknown_cluster_lists_the_known_ones():
    with pytest.raises(
        SaltRenderError, match="no minion answers for cluster 'nope'; valid: hardway"
    ):
        load({m: identity("hardway", IDS) for m in IDS}, wanted="nope").run()


def test_no_minion_at_all():
    with pytest.raises(SaltRenderError, match="no minion has pillar k8s_control_plane:cluster"):
        load({}).run()


def test_a_listed_controller_that_does_not_answer_is_named():
    answers = {m: identity("hardway", IDS) for m in IDS[:2]}
    with pytest.raises(
        SaltRenderError, match="lists k8s-controller-3 in k8s_control_plane:controllers"
    ):
        load(answers).run()
