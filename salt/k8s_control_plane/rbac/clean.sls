#!py
"""Undo rbac: delete the binding, then the role (from the same controller)."""


def run():
    root = sls.split(".")[0]
    if __grains__["id"] != __salt__["k8s_cluster.identity"]()["apply_from"]:
        return {}
    rbac = __salt__["k8s_cluster.config"]()["rbac"]
    states = {}
    for manifest in reversed(__salt__["k8s_rbac.manifests"]()):
        states[f"{root}-rbac-clean-k8s_object-absent-{manifest['kind']}"] = {
            "k8s_object.absent": [
                {"name": manifest["metadata"]["name"]},
                {"manifest": manifest},
                {"kubeconfig": rbac["kubeconfig"]},
                {"order": 1 if manifest["kind"] == "ClusterRoleBinding" else 2},
            ]
        }
    return states
