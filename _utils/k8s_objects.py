"""
The pure rules about Kubernetes objects: the seed's kubelet RBAC manifests,
the API path of a cluster-scoped object, and the diff that decides whether an
object must be created or replaced.

A synced custom utils module, like k8s_control_plane.py (read its docstring
for why): k8s_rbac builds the manifests, k8s_api and the k8s_object state
share the path and the diff through ``__utils__["k8s_objects.<function>"]``,
and none of them is a CLI function.
"""

# Fields of an object that our states own; everything else (status,
# metadata the server sets) is left to the server.
OWNED_FIELDS = ("rules", "roleRef", "subjects", "aggregationRule")
PLURALS = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}


def rbac_manifests(rbac, api_version):
    """[ClusterRole, ClusterRoleBinding] from the rbac settings, at ``api_version``."""
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
        "rules": role["rules"],
    }
    cluster_role_binding = {
        "apiVersion": api_version,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": binding["name"]},
        "roleRef": {"apiGroup": group, "kind": "ClusterRole", "name": role["name"]},
        "subjects": [{"apiGroup": group, "kind": "User", "name": binding["user"]}],
    }
    return [cluster_role, cluster_role_binding]


def path_of(manifest):
    """The API path of a cluster-scoped object."""
    group_version = manifest["apiVersion"]
    prefix = "/api" if "/" not in group_version else "/apis"
    plural = PLURALS.get(manifest["kind"], manifest["kind"].lower() + "s")
    return f"{prefix}/{group_version}/{plural}/{manifest['metadata']['name']}"


def diff(desired, live):
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
