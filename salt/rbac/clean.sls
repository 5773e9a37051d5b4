#!py
"""Undo rbac: delete the binding, then the role (from the same controller)."""


def run():
    cfg = __salt__["k8s_cluster.config"]()
    rbac = cfg["rbac"]
    apply_from = rbac.get("apply_from") or cfg["controllers"][0]["id"]
    if __grains__["id"] != apply_from:
        return {}
    states = {}
    for manifest in reversed(__salt__["k8s_rbac.manifests"]()):
        states[f"rbac-clean-k8s_object-absent-{manifest['kind']}"] = {
            "k8s_object.absent": [
                {"name": manifest["metadata"]["name"]},
                {"manifest": manifest},
                {"kubeconfig": rbac["kubeconfig"]},
                {"order": 1 if manifest["kind"] == "ClusterRoleBinding" else 2},
            ]
        }
    return states
