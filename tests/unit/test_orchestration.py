"""The orchestration file's compile step: which cluster, which minions, which steps."""

import importlib.util
import pathlib

import pytest
from salt.exceptions import SaltRenderError

ORCH = pathlib.Path(__file__).resolve().parents[2] / "salt" / "orch" / "control_plane.sls"
IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]


def _identity(cluster, ids, apply_from=None):
    return {"cluster": cluster, "controllers": ids, "apply_from": apply_from or ids[0]}


def load(answers, wanted=None):
    """The orchestration SLS as a module; saltutil.cmd answers k8s_cluster.identity."""
    spec = importlib.util.spec_from_loader("orch_control_plane", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(ORCH.read_text(), str(ORCH), "exec"), module.__dict__)
    calls = []

    def cmd(tgt, fun, **kwargs):
        calls.append((tgt, fun))
        if fun == "k8s_cluster.identity":
            return {m: {"ret": ident, "retcode": 0} for m, ident in answers.items()}
        return {}

    module.__salt__ = {"saltutil.cmd": cmd, "saltutil.runner": lambda fun: calls.append(fun)}
    module.__pillar__ = {"cluster": wanted} if wanted else {}
    module.calls = calls
    return module


def test_one_cluster_needs_no_argument():
    module = load({m: _identity("hardway", IDS) for m in IDS})
    steps = module.run()
    assert list(steps) == [
        "orch-validate",
        "orch-loadbalancer",
        "orch-vip-single-holder",
        "orch-etcd",
        "orch-controlplane",
        "orch-wait-ready",
        "orch-rbac",
        "orch-verify",
    ]
    # Pillar refreshed everywhere and modules synced before anything is asked.
    assert module.calls[:3] == [
        ("*", "saltutil.refresh_pillar"),
        "saltutil.sync_all",
        ("I@k8s_control_plane:cluster:*", "saltutil.sync_all"),
    ]
    assert ("I@k8s_control_plane:cluster:*", "k8s_cluster.identity") in module.calls
    controlplane = dict(
        kv for item in steps["orch-controlplane"]["salt.state"] for kv in item.items()
    )
    assert controlplane["batch"] == "1"
    assert controlplane["tgt"] == "I@k8s_control_plane:cluster:hardway"
    rbac = dict(kv for item in steps["orch-rbac"]["salt.state"] for kv in item.items())
    assert rbac["tgt"] == "k8s-controller-1"


def test_rbac_controller_comes_from_apply_from():
    module = load({m: _identity("hardway", IDS, "k8s-controller-3") for m in IDS})
    rbac = dict(kv for item in module.run()["orch-rbac"]["salt.state"] for kv in item.items())
    assert rbac["tgt"] == "k8s-controller-3"


def test_two_clusters_without_an_argument_say_how_to_pick():
    answers = {m: _identity("hardway", IDS) for m in IDS}
    answers |= {f"prod-{i}": _identity("prod", ["prod-1", "prod-2"]) for i in (1, 2)}
    with pytest.raises(SaltRenderError) as err:
        load(answers).run()
    assert "2 clusters on this master (hardway, prod)" in str(err.value)
    assert 'pillar=\'{"cluster": "hardway"}\'' in str(err.value)
    steps = load(answers, wanted="prod").run()
    validate = dict(kv for item in steps["orch-validate"]["salt.state"] for kv in item.items())
    assert validate["tgt"] == "I@k8s_control_plane:cluster:prod"


def test_an_unknown_cluster_lists_the_known_ones():
    with pytest.raises(
        SaltRenderError, match="no minion answers for cluster 'nope'; valid: hardway"
    ):
        load({m: _identity("hardway", IDS) for m in IDS}, wanted="nope").run()


def test_no_minion_at_all():
    with pytest.raises(SaltRenderError, match="no minion has pillar k8s_control_plane:cluster"):
        load({}).run()


def test_a_listed_controller_that_does_not_answer_is_named():
    answers = {m: _identity("hardway", IDS) for m in IDS[:2]}
    with pytest.raises(
        SaltRenderError, match="lists k8s-controller-3 in k8s_control_plane:controllers"
    ):
        load(answers).run()
