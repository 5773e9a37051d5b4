"""
The states: k8s_object.present/absent against a mocked k8s_api (get, apply and
request mocked; the real diff and path_of from _utils), and k8s_cluster.validated over the real
validation (the salt tree read through mocked cp functions).
"""

import copy
import inspect
from unittest.mock import MagicMock

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.cluster import (
    PREFIX,
    cluster_dunders,
    cluster_pillar,
    rules,
    set_path,
)

NAME = "system:kube-apiserver-to-kubelet"
ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "name": NAME,
    },
    "rules": [
        {
            "apiGroups": [""],
            "resources": ["nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"],
            "verbs": ["*"],
        }
    ],
}
UNREACHABLE = CommandExecutionError(
    "GET https://127.0.0.1:6443/apis/rbac.authorization.k8s.io/v1/clusterroles/"
    f"{NAME}: [Errno 111] Connection refused"
)


def live_role(**changes):
    live = copy.deepcopy(ROLE)
    live["metadata"].update({"resourceVersion": "4711", "uid": "0b7e"})
    live.update(changes)
    return live


class Api:
    """A mocked k8s_api: get, apply and request are MagicMocks."""

    def __init__(self, modules, live=None, get_error=None, apply_result=None):
        self.get = MagicMock(return_value=live, side_effect=get_error)
        self.apply = MagicMock(return_value=apply_result)
        self.request = MagicMock(return_value={"status": 200, "body": {}})

    def salt(self):
        return {f"k8s_api.{name}": getattr(self, name) for name in vars(self)}


@pytest.fixture
def present(state_modules):
    def run(api, test=False, **kwargs):
        mod = state_modules("k8s_object", __salt__=api.salt(), __opts__={"test": test})
        return mod.present(NAME, copy.deepcopy(ROLE), **kwargs)

    return run


# --------------------------------------------------------------------------
# k8s_object.present
# --------------------------------------------------------------------------


def test_created(modules, present):
    changes = {"object": {"old": None, "new": NAME}}
    api = Api(modules, live=None, apply_result={"action": "created", "changes": changes})
    ret = present(api)
    assert ret == {
        "name": NAME,
        "changes": changes,
        "result": True,
        "comment": f"ClusterRole {NAME} created",
    }
    api.apply.assert_called_once_with(ROLE, server=None)


def test_replaced(modules, present):
    live = live_role(rules=[{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}])
    changes = {"rules": {"old": live["rules"], "new": ROLE["rules"]}}
    api = Api(modules, live=live, apply_result={"action": "replaced", "changes": changes})
    ret = present(api, kubeconfig="/root/admin.kubeconfig", server="https://10.240.0.10:8443")
    assert (ret["result"], ret["changes"]) == (True, changes)
    assert ret["comment"] == f"ClusterRole {NAME} replaced"
    kwargs = {"server": "https://10.240.0.10:8443", "kubeconfig": "/root/admin.kubeconfig"}
    api.get.assert_called_once_with(ROLE, **kwargs)
    api.apply.assert_called_once_with(ROLE, **kwargs)


@pytest.mark.parametrize("test", [False, True], ids=["real", "test-mode"])
def test_unchanged(modules, present, test):
    live = live_role()
    live["metadata"]["labels"]["added.by/server"] = "yes"
    api = Api(modules, live=live)
    ret = present(api, test=test)
    assert ret == {
        "name": NAME,
        "changes": {},
        "result": True,
        "comment": f"ClusterRole {NAME} is as described",
    }
    api.apply.assert_not_called()


def test_test_mode_predicts_an_update_with_a_dry_run(modules, present):
    live = live_role(rules=[])
    live["metadata"]["labels"] = {}
    api = Api(modules, live=live, apply_result={"action": "replaced", "changes": {}})
    ret = present(api, test=True)
    assert ret["result"] is None
    assert ret["changes"] == {
        "rules": {"old": [], "new": ROLE["rules"]},
        "metadata.labels": {"old": {}, "new": ROLE["metadata"]["labels"]},
    }
    assert ret["comment"] == f"ClusterRole {NAME} would be updated"
    api.apply.assert_called_once_with(ROLE, dry_run=True, server=None)


def test_test_mode_predicts_a_creation_with_a_dry_run(modules, present):
    api = Api(modules, live=None, apply_result={"action": "created", "changes": {}})
    ret = present(api, test=True)
    assert ret["result"] is None
    assert ret["changes"] == {"object": {"old": None, "new": NAME}}
    assert ret["comment"] == f"ClusterRole {NAME} would be created"
    api.apply.assert_called_once_with(ROLE, dry_run=True, server=None)


def test_test_mode_dry_run_rejected(modules, present):
    api = Api(modules, live=None)
    api.apply.side_effect = CommandExecutionError("POST ...?dryRun=All: 422 invalid")
    ret = present(api, test=True)
    assert ret["result"] is False
    assert "422 invalid" in ret["comment"]


def test_unreachable_in_test_mode_predicts(modules, present):
    api = Api(modules, get_error=UNREACHABLE)
    ret = present(api, test=True)
    assert ret == {
        "name": NAME,
        "changes": {"object": {"old": None, "new": NAME}},
        "result": None,
        "comment": f"ClusterRole {NAME} would be applied (the API server is not reachable yet)",
    }
    api.apply.assert_not_called()


def test_unreachable_in_real_mode_fails(modules, present):
    api = Api(modules, get_error=UNREACHABLE)
    ret = present(api)
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert ret["comment"] == f"ClusterRole {NAME}: {UNREACHABLE}"
    api.apply.assert_not_called()


def test_apply_error_in_real_mode_fails(modules, present):
    api = Api(modules, live=None)
    api.apply.side_effect = CommandExecutionError("POST ...: 403 forbidden")
    ret = present(api)
    assert (ret["result"], ret["changes"]) == (False, {})
    assert ret["comment"] == f"ClusterRole {NAME}: POST ...: 403 forbidden"


# --------------------------------------------------------------------------
# k8s_object.absent
# --------------------------------------------------------------------------


@pytest.fixture
def absent(state_modules):
    def run(api, test=False):
        mod = state_modules("k8s_object", __salt__=api.salt(), __opts__={"test": test})
        return mod.absent(NAME, copy.deepcopy(ROLE))

    return run


def test_absent_already(modules, absent):
    api = Api(modules, live=None)
    assert absent(api) == {
        "name": NAME,
        "changes": {},
        "result": True,
        "comment": f"ClusterRole {NAME} is absent",
    }
    api.request.assert_not_called()


def test_absent_deletes(modules, absent):
    api = Api(modules, live=live_role())
    ret = absent(api)
    assert (ret["result"], ret["changes"]) == (True, {"deleted": NAME})
    api.request.assert_called_once_with(
        "DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{NAME}", server=None
    )


def test_absent_test_mode(modules, absent):
    api = Api(modules, live=live_role())
    ret = absent(api, test=True)
    assert (ret["result"], ret["changes"]) == (None, {"deleted": NAME})
    api.request.assert_not_called()


def test_absent_delete_refused(modules, absent):
    api = Api(modules, live=live_role())
    api.request.return_value = {"status": 403, "body": "forbidden"}
    ret = absent(api)
    assert ret["result"] is False
    assert "DELETE" in ret["comment"] and "403" in ret["comment"]


# --------------------------------------------------------------------------
# k8s_cluster.validated
# --------------------------------------------------------------------------


def _validated(modules, state_modules, pillar, minion_id, test=False):
    cluster = modules("k8s_cluster", **cluster_dunders(pillar, minion_id))
    state = state_modules(
        "k8s_cluster",
        __salt__={"k8s_cluster.validate": cluster.validate},
        __opts__={"test": test},
    )
    return state.validated("k8s_control_plane")


@pytest.mark.parametrize("test", [False, True], ids=["real", "test-mode"])
@pytest.mark.parametrize(
    ("cluster", "minion_id"), [("hardway", "k8s-controller-2"), ("example", "prod-cp-3")]
)
def test_validated_valid(modules, state_modules, cluster, minion_id, test):
    ret = _validated(modules, state_modules, cluster_pillar(cluster), minion_id, test)
    assert ret == {
        "name": "k8s_control_plane",
        "changes": {},
        "result": True,
        "comment": "The cluster pillar is valid",
    }


@pytest.mark.parametrize("test", [False, True], ids=["real", "test-mode"])
def test_validated_invalid_lists_every_error(modules, state_modules, test):
    pillar = cluster_pillar("hardway")
    pillar["profile"] = "fast"
    pillar["vip"]["address"] = "10.240.0.11"
    pillar["kubernetes"]["version"] = "1.17.0"
    del pillar["secrets"]["ca.pem"]
    pillar["secrets"]["vrrp_auth_pass"] = "k8s-hardway"
    ret = _validated(modules, state_modules, pillar, "k8s-worker-1", test)
    assert ret["result"] is False
    assert ret["changes"] == {}
    header, *lines = ret["comment"].split("\n")
    errors = [line.removeprefix("- ") for line in lines]
    assert header == f"Invalid cluster pillar ({len(errors)} errors):"
    keys = [e.split(": ")[0].removeprefix(PREFIX) for e in errors]
    for key in (
        "profile",
        "controllers",
        "vip:address",
        "kubernetes:version",
        "secrets",
        "secrets:vrrp_auth_pass",
    ):
        assert key in keys, ret["comment"]
    assert all(line.startswith(f"- {PREFIX}") for line in lines)


def test_validated_matches_validate_config(modules, state_modules):
    pillar = cluster_pillar("example")
    set_path(pillar, "kubernetes:node_port_range", "1-0")
    cluster = modules("k8s_cluster", **cluster_dunders(pillar, "prod-cp-1"))
    expected = rules().validate_config(
        cluster._config(with_secrets=True), cluster.versions(), "prod-cp-1"
    )
    ret = _validated(modules, state_modules, pillar, "prod-cp-1")
    assert len(expected) == 1
    assert ret["comment"].startswith("Invalid cluster pillar (1 ")
    assert ret["comment"].endswith(":\n- " + expected[0])
    assert expected[0].startswith(f"{PREFIX}kubernetes:node_port_range: ")


def test_validated_reports_a_scalar_section(modules, state_modules):
    pillar = cluster_pillar("hardway")
    pillar["vip"] = "10.240.0.10"
    ret = _validated(modules, state_modules, pillar, "k8s-controller-1")
    assert ret["result"] is False
    assert f"- {PREFIX}vip: " in ret["comment"]


def test_config_never_returns_secret_values(modules):
    pillar = cluster_pillar("hardway")
    cluster = modules("k8s_cluster", **cluster_dunders(pillar, "k8s-controller-1"))
    public = cluster.config()
    assert set(public["secrets"]) == set(pillar["secrets"])
    assert set(public["secrets"].values()) == {"<secret>"}
    assert cluster._config(with_secrets=True)["secrets"] == pillar["secrets"]


def test_no_public_function_can_be_asked_for_secrets(modules):
    """
    Every public function is callable from the CLI (salt '*' k8s_cluster.<fun>
    ...): none takes a switch that returns the secret values. The validation
    reads them through the private _config, which the loader does not expose.
    """

    pillar = cluster_pillar("hardway")
    cluster = modules("k8s_cluster", **cluster_dunders(pillar, "k8s-controller-1"))
    public = {
        name: fun
        for name, fun in vars(cluster).items()
        if callable(fun) and not name.startswith("_") and inspect.isfunction(fun)
        if fun.__module__ == cluster.__name__
    }
    assert "config" in public and "validate" in public
    for name, fun in public.items():
        assert "with_secrets" not in inspect.signature(fun).parameters, name
    with pytest.raises(TypeError):
        cluster.config(with_secrets=True)
    assert cluster.validate()["valid"] is True


def test_identity_tells_no_secret(modules):
    pillar = cluster_pillar("hardway")
    cluster = modules("k8s_cluster", **cluster_dunders(pillar, "k8s-controller-1"))
    identity = cluster.identity()
    digests = {k: identity.pop(k) for k in ("modules_digest", "pillar_digest")}
    assert identity == {
        "cluster": "hardway",
        "controllers": ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"],
        "apply_from": "k8s-controller-1",
    }
    # the digests are one-way sha256 hex strings: no pillar value is in them
    for digest in digests.values():
        assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")


def test_plan_behind_the_master_answers_without_a_test_run(modules):
    pillar = cluster_pillar("hardway")
    dunders = cluster_dunders(pillar, "k8s-controller-1")
    runs = []
    dunders["__salt__"]["state.sls"] = lambda root, test: runs.append((root, test)) or {}
    dunders["__salt__"]["k8s_etcd.status"] = lambda: {"managed": False}
    cluster = modules("k8s_cluster", **dunders)
    current = cluster.identity()
    expected = {
        "modules_digest": current["modules_digest"],
        "pillar_digests": {"k8s-controller-1": "a pillar the master compiled since"},
    }
    plan = cluster.plan("k8s_control_plane", expected=expected)
    assert plan["behind"] == "its in-memory pillar differs from the master's compile"
    assert plan["states"] is None and plan["identity"] == current and runs == []
    # current: the test run happens (its empty result is no proof, so no checks run)
    expected["pillar_digests"]["k8s-controller-1"] = current["pillar_digest"]
    plan = cluster.plan("k8s_control_plane", expected=expected)
    assert "behind" not in plan and runs == [("k8s_control_plane", True)]
    assert plan["checks"] == {}
    # without the master's digests (a CLI call) it always runs
    assert "behind" not in cluster.plan("k8s_control_plane") and len(runs) == 2


def test_cached_config_follows_a_pillar_refresh(modules):
    pillar = cluster_pillar("hardway")
    cluster = modules("k8s_cluster", **cluster_dunders(pillar, "k8s-controller-1"))
    assert cluster.config()["vip"]["address"] == "10.240.0.10"
    assert cluster.validate()["valid"] is True
    # A long-lived loader keeps __context__ across a refresh: the cache must not.
    cluster.__pillar__ = {
        "k8s_control_plane": dict(pillar, vip=dict(pillar["vip"], address="10.9.9.9"))
    }
    assert cluster.config()["vip"]["address"] == "10.9.9.9"
    assert cluster.validate()["valid"] is False
