#!py
"""
Seed step "RBAC for Kubelet Authorization": the ClusterRole
system:kube-apiserver-to-kubelet bound to the user `kubernetes` (the
apiserver's kubelet client certificate). Cluster-wide objects: applied from
one controller only (rbac:apply_from, default the first), after its
apiserver is ready; on the others this SLS has nothing to do.
"""


def run():
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": ["cluster.validate"]}
    cfg = __salt__["k8s_cluster.config"]()
    rbac = cfg["rbac"]
    apply_from = rbac.get("apply_from") or cfg["controllers"][0]["id"]
    if __grains__["id"] != apply_from:
        return {"include": ["cluster.validate"]}
    manifests = __salt__["k8s_rbac.manifests"]()
    states = {
        "include": ["cluster.validate"],
        "rbac-init-k8s_health-ready": {
            "k8s_health.ready": [
                {"name": "apiserver"},
                {"timeout": rbac["ready_timeout"]},
                {"scope": "local"},
                {"require": [{"sls": "cluster.validate"}]},
            ]
        },
    }
    for manifest in manifests:
        states[f"rbac-init-k8s_object-present-{manifest['kind']}"] = {
            "k8s_object.present": [
                {"name": manifest["metadata"]["name"]},
                {"manifest": manifest},
                {"kubeconfig": rbac["kubeconfig"]},
                {"require": [{"k8s_health": "rbac-init-k8s_health-ready"}]},
            ]
        }
    return states
