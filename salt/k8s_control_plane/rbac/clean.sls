#!py
"""
Undo rbac: delete the binding, then the role (from the same controller).
Without the admin kubeconfig (controlplane.clean already ran) there is no
API to delete from: nothing to do, so a second clean changes nothing.
"""


def run():
    root = sls.split(".")[0]
    if __grains__["id"] != __salt__["k8s_cluster.identity"]()["apply_from"]:
        return {}
    rbac = __salt__["k8s_cluster.config"]()["rbac"]
    if not __salt__["file.file_exists"](rbac["kubeconfig"]):
        return {}
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
