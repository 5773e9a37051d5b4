#!py
"""
Seed step "RBAC for Kubelet Authorization": the ClusterRole
system:kube-apiserver-to-kubelet bound to the user `kubernetes` (the
apiserver's kubelet client certificate). Cluster-wide objects: applied from
one controller only (rbac:apply_from, default the first), after its
apiserver is ready; on the others this SLS has nothing to do.
"""


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    validated = ctx["validated"]
    if __grains__["id"] != __salt__["k8s_cluster.identity"]()["apply_from"]:
        return {"include": [validated]}
    rbac = __salt__["k8s_cluster.config"]()["rbac"]
    sid = ctx["sid"]  # the SLS path: <root>-<component>[-<sls>]
    states = {
        "include": [validated],
        f"{sid}-k8s_health-ready": {
            "k8s_health.ready": [
                {"name": "apiserver"},
                {"timeout": rbac["ready_timeout"]},
                {"scope": "local"},
                {"require": [{"sls": validated}]},
            ]
        },
    }
    for manifest in __salt__["k8s_rbac.manifests"]():
        states[f"{sid}-k8s_object-present-{manifest['kind']}"] = {
            "k8s_object.present": [
                {"name": manifest["metadata"]["name"]},
                {"manifest": manifest},
                {"kubeconfig": rbac["kubeconfig"]},
                {"require": [{"k8s_health": f"{sid}-k8s_health-ready"}]},
            ]
        }
    return states
