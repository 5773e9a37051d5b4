"""
path_of, diff and rbac_manifests (_utils/k8s_control_plane/objects.py) against the seed's objects,
and k8s_rbac.manifests.
"""

import copy
import pathlib
import re

import pytest
import yaml

from tests.support.cluster import cluster_config, rules, versions_table

SEED = (
    pathlib.Path(__file__).parents[1]
    / "fixtures"
    / "seed-08-bootstrapping-kubernetes-controllers.md"
)
RBAC_V1 = "rbac.authorization.k8s.io/v1"
ROLE = {
    "apiVersion": RBAC_V1,
    "kind": "ClusterRole",
    "metadata": {
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "name": "system:kube-apiserver-to-kubelet",
    },
    "rules": [
        {
            "apiGroups": [""],
            "resources": ["nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"],
            "verbs": ["*"],
        }
    ],
}
BINDING = {
    "apiVersion": RBAC_V1,
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "system:kube-apiserver"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:kube-apiserver-to-kubelet",
    },
    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubernetes"}],
}


def served(manifest, **metadata):
    """The object as the API server returns it: server-set metadata added."""
    live = copy.deepcopy(manifest)
    live["metadata"].update(
        {
            "uid": "5c3f7a52-8d3e-4c1b-9d0e-3b8a8c1e2f10",
            "resourceVersion": "4711",
            "creationTimestamp": "2021-02-19T15:21:21Z",
            "managedFields": [{"manager": "salt", "operation": "Update"}],
        }
    )
    live["metadata"].update(metadata)
    return live


def seed_manifests():
    """The seed's two `kubectl apply` documents."""
    text = SEED.read_text(encoding="utf-8")
    blocks = re.findall(
        r"kubectl apply --kubeconfig admin\.kubeconfig -f -\n(.*?)\nEOF", text, re.S
    )
    return [yaml.safe_load(block) for block in blocks]


# --------------------------------------------------------------------------
# path_of
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "path"),
    [
        (ROLE, "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet"),
        (BINDING, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:kube-apiserver"),
        (
            {**ROLE, "apiVersion": "rbac.authorization.k8s.io/v1beta1"},
            "/apis/rbac.authorization.k8s.io/v1beta1/clusterroles/system:kube-apiserver-to-kubelet",
        ),
        (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
            "/api/v1/namespaces/kube-system",
        ),
    ],
    ids=["ClusterRole", "ClusterRoleBinding", "v1beta1", "core-group"],
)
def test_path_of(objects, manifest, path):
    assert objects.object_path(manifest) == path


# --------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------


@pytest.mark.parametrize("manifest", [ROLE, BINDING], ids=["ClusterRole", "ClusterRoleBinding"])
def test_diff_absent(objects, manifest):
    assert objects.object_diff(manifest, None) == {
        "object": {"old": None, "new": manifest["metadata"]["name"]}
    }


@pytest.mark.parametrize("manifest", [ROLE, BINDING], ids=["ClusterRole", "ClusterRoleBinding"])
def test_diff_identical(objects, manifest):
    assert objects.object_diff(manifest, served(manifest)) == {}
    assert objects.object_diff(manifest, copy.deepcopy(manifest)) == {}


def test_diff_changed_rules(objects):
    live = served(ROLE)
    live["rules"][0]["verbs"] = ["get", "list"]
    assert objects.object_diff(ROLE, live) == {
        "rules": {"old": live["rules"], "new": ROLE["rules"]}
    }


def test_diff_rules_missing_on_the_server(objects):
    live = served(ROLE)
    del live["rules"]
    assert objects.object_diff(ROLE, live) == {"rules": {"old": None, "new": ROLE["rules"]}}


def test_diff_changed_binding(objects):
    live = served(BINDING)
    live["subjects"][0]["name"] = "admin"
    live["roleRef"]["name"] = "cluster-admin"
    changes = objects.object_diff(BINDING, live)
    assert sorted(changes) == ["roleRef", "subjects"]
    assert changes["subjects"] == {"old": live["subjects"], "new": BINDING["subjects"]}


def test_diff_ignores_fields_it_does_not_own(objects):
    live = served(ROLE)
    live["status"] = {"anything": True}
    live["apiVersion"] = "rbac.authorization.k8s.io/v1beta1"
    assert objects.object_diff(ROLE, live) == {}


@pytest.mark.parametrize("meta", ["labels", "annotations"])
def test_diff_extra_server_metadata_is_not_a_change(objects, meta):
    live = served(ROLE)
    live["metadata"][meta] = {**ROLE["metadata"][meta], "added.by/server": "yes"}
    assert objects.object_diff(ROLE, live) == {}


@pytest.mark.parametrize("meta", ["labels", "annotations"])
def test_diff_missing_metadata_entry(objects, meta):
    live = served(ROLE)
    live["metadata"][meta] = {"added.by/server": "yes"}
    assert objects.object_diff(ROLE, live) == {
        f"metadata.{meta}": {
            "old": {"added.by/server": "yes"},
            "new": {"added.by/server": "yes", **ROLE["metadata"][meta]},
        }
    }


@pytest.mark.parametrize("meta", ["labels", "annotations"])
def test_diff_metadata_absent_on_the_server(objects, meta):
    live = served(ROLE)
    del live["metadata"][meta]
    assert objects.object_diff(ROLE, live) == {
        f"metadata.{meta}": {"old": {}, "new": ROLE["metadata"][meta]}
    }


def test_diff_changed_label_value(objects):
    live = served(ROLE)
    live["metadata"]["labels"] = {"kubernetes.io/bootstrapping": "other", "keep": "me"}
    assert objects.object_diff(ROLE, live) == {
        "metadata.labels": {
            "old": {"kubernetes.io/bootstrapping": "other", "keep": "me"},
            "new": {"kubernetes.io/bootstrapping": "rbac-defaults", "keep": "me"},
        }
    }


def test_diff_without_desired_metadata_maps(objects):
    """A binding with no labels/annotations never asks the server to drop its own."""
    live = served(BINDING, labels={"a": "b"}, annotations={"c": "d"})
    assert objects.object_diff(BINDING, live) == {}


# --------------------------------------------------------------------------
# rbac_manifests
# --------------------------------------------------------------------------


def test_seed_manifests_are_parsed():
    seed = seed_manifests()
    assert [m["kind"] for m in seed] == ["ClusterRole", "ClusterRoleBinding"]
    assert {m["apiVersion"] for m in seed} == {"rbac.authorization.k8s.io/v1beta1"}


@pytest.mark.parametrize("cluster", ["hardway", "example"])
def test_rbac_manifests_equal_the_seeds_but_v1(objects, cluster):
    cfg = cluster_config(cluster)
    api = rules().api_versions(versions_table(), cfg["kubernetes"]["version"])["rbac"]
    built = objects.rbac_manifests(cfg["rbac"], api)
    expected = seed_manifests()
    for manifest in expected:
        manifest["apiVersion"] = RBAC_V1
        # The seed's `namespace: ""` on a cluster-scoped object means "none".
        if manifest["metadata"].get("namespace") == "":
            del manifest["metadata"]["namespace"]
    assert built == expected
    assert built == [ROLE, BINDING]


def test_built_manifests_diff_clean_against_themselves(objects):
    built = objects.rbac_manifests(cluster_config("hardway")["rbac"], RBAC_V1)
    for manifest in built:
        assert objects.object_diff(manifest, served(manifest)) == {}
        assert objects.object_path(manifest).startswith("/apis/rbac.authorization.k8s.io/v1/")


def test_rbac_manifests_do_not_share_rbac_settings(objects):
    """The built labels/annotations are copies: editing them leaves the settings alone."""
    rbac = cluster_config("hardway")["rbac"]
    before = copy.deepcopy(rbac)
    role, _ = objects.rbac_manifests(rbac, RBAC_V1)
    role["metadata"]["labels"]["x"] = "y"
    role["metadata"]["annotations"]["x"] = "y"
    assert rbac == before


def test_manifests_uses_the_config_and_the_api_version(modules):
    cfg = cluster_config("example")
    mod = modules(
        "k8s_rbac",
        __salt__={
            "k8s_cluster.config": lambda: cfg,
            "k8s_flags.apis": lambda: {"rbac": RBAC_V1},
        },
    )
    assert mod.manifests() == [ROLE, BINDING]
