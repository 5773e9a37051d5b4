#!py
"""
Seed step "Configure the Kubernetes API Server" (the certificates, keys,
kubeconfigs and encryption config in /var/lib/kubernetes), made by Salt
(docs/pki.md): with pki:source salt each key is made on this controller and
each certificate signed here through the cluster's signing policies, re-issued
when its SANs differ from the pillar's or it is within pki:renew_before_days
of expiry; the kubeconfigs are built from them (k8s_pki.kubeconfig_managed).
With pki:source pillar every file comes from k8s_control_plane:secrets. No
content enters the state data and no diff is printed.
"""


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    root, validated = ctx["root"], ctx["validated"]
    states = __salt__["k8s_pki.sls_states"]("init", validated)
    return {"include": [validated, f"{root}.pki.ca"], **states}
