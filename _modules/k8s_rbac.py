"""
The seed's kubelet RBAC objects as manifests, with the API version the
cluster's Kubernetes version serves.
"""

__virtualname__ = "k8s_rbac"


def __virtual__():
    return __virtualname__


def build_manifests(rbac, api_version):
    """Pure function: [ClusterRole, ClusterRoleBinding] from rbac settings."""
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


def manifests():
    """
    Return the ClusterRole and ClusterRoleBinding this cluster applies.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_rbac.manifests --out=yaml
    """
    cfg = __salt__["k8s_cluster.config"]()
    return build_manifests(cfg["rbac"], __salt__["k8s_controlplane.apis"]()["rbac"])
