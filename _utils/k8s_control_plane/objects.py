"""
The pure rules about Kubernetes objects: the seed's kubelet RBAC manifests
(with the kubelet API subresources a Kubernetes minor needs), the API path of
a cluster-scoped object, and the diff that decides whether an object must be
created or replaced. k8s_rbac builds the manifests, k8s_api and the k8s_object
state share the path and the diff (``object_path``, ``object_diff``).
"""

from collections.abc import Iterable
from typing import Any

# Fields of an object that our states own; everything else (status,
# metadata the server sets) is left to the server.
OWNED_FIELDS = ("rules", "roleRef", "subjects", "aggregationRule")
PLURALS = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}


def kubelet_rules(
    rules: list[dict[str, Any]] | None, resources: Iterable[str] | None
) -> list[dict[str, Any]]:
    """
    ``rules`` made to grant ``resources`` (kubelet API subresources of
    nodes, core group): unchanged when a core-group rule with verbs ``*``
    already names each; otherwise the missing ones are appended to the first
    such rule that holds ``nodes/proxy`` (the seed's rule), or to a new rule.
    The input is not changed.
    """
    rules = [dict(rule) for rule in rules or []]

    def full(rule):
        return "" in (rule.get("apiGroups") or []) and "*" in (rule.get("verbs") or [])

    granted = {res for rule in rules if full(rule) for res in rule.get("resources") or []}
    missing = [res for res in resources or [] if res not in granted]
    if not missing:
        return rules
    for rule in rules:
        if full(rule) and "nodes/proxy" in (rule.get("resources") or []):
            rule["resources"] = [*rule["resources"], *missing]
            return rules
    return [*rules, {"apiGroups": [""], "resources": missing, "verbs": ["*"]}]


def rbac_manifests(
    rbac: dict[str, Any], api_version: str, kubelet_resources: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """
    [ClusterRole, ClusterRoleBinding] from the rbac settings, at
    ``api_version``; the role's rules also grant ``kubelet_resources``
    (``kubelet_rules``).
    """
    role = rbac["cluster_role"]
    binding = rbac["cluster_role_binding"]
    group = api_version.split("/")[0]
    cluster_role = {
        "apiVersion": api_version,
        "kind": "ClusterRole",
        "metadata": {
            "annotations": dict(role.get("annotations") or {}),
            "labels": dict(role.get("labels") or {}),
            "name": role["name"],
        },
        "rules": kubelet_rules(role["rules"], kubelet_resources),
    }
    cluster_role_binding = {
        "apiVersion": api_version,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": binding["name"]},
        "roleRef": {"apiGroup": group, "kind": "ClusterRole", "name": role["name"]},
        "subjects": [{"apiGroup": group, "kind": "User", "name": binding["user"]}],
    }
    return [cluster_role, cluster_role_binding]


def object_path(manifest: dict[str, Any]) -> str:
    """The API path of a cluster-scoped object."""
    group_version = manifest["apiVersion"]
    prefix = "/api" if "/" not in group_version else "/apis"
    plural = PLURALS.get(manifest["kind"], manifest["kind"].lower() + "s")
    return f"{prefix}/{group_version}/{plural}/{manifest['metadata']['name']}"


def object_diff(desired: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """
    The fields of ``desired`` that ``live`` lacks or has otherwise, as
    {field: {"old": live value, "new": desired value}}; {} when nothing
    differs. Labels and annotations compare as subsets (the server may add
    more).
    """
    changes = {}
    if live is None:
        return {"object": {"old": None, "new": desired["metadata"]["name"]}}
    for field in OWNED_FIELDS:
        if field in desired and desired[field] != live.get(field):
            changes[field] = {"old": live.get(field), "new": desired[field]}
    for meta in ("labels", "annotations"):
        want = desired.get("metadata", {}).get(meta) or {}
        have = live.get("metadata", {}).get(meta) or {}
        missing = {k: v for k, v in want.items() if have.get(k) != v}
        if missing:
            changes[f"metadata.{meta}"] = {"old": have, "new": dict(have, **missing)}
    return changes
