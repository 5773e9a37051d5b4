"""orch.rotate_encryption_key (issue 21): the cluster found on the master (the option given as
Salt gives it, a mapping that is no dict), then the rotation's four steps in order, each one
runner call that stops the run when it fails."""

import types

from tests.support.orchestration import REPO, cluster_pillar, fields, load, step_ids

ORCH = REPO / "salt" / "orch" / "rotate_encryption_key.sls"
IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]


def test_the_four_steps_in_order_for_the_cluster_asked():
    module = load({m: cluster_pillar("hardway", IDS) for m in IDS}, orch=ORCH)
    module.__salt__["saltutil.runner"] = lambda fun, **_kw: None
    module.__pillar__ = types.MappingProxyType({"cluster": "hardway"})
    steps = module.run()
    assert step_ids(steps) == [
        "rotate-encryption-add",
        "rotate-encryption-promote",
        "rotate-encryption-rewrite",
        "rotate-encryption-retire",
    ]
    previous = None
    for step in ("add", "promote", "rewrite", "retire"):
        got = fields(steps[f"rotate-encryption-{step}"])
        assert (got["name"], got["step"], got["cluster"]) == (
            "k8s_encryption.rotate",
            step,
            "hardway",
        )
        assert got["failhard"] is True
        assert got.get("require") == ([{"salt": previous}] if previous else None)
        previous = f"rotate-encryption-{step}"
