#!py
"""
etcd's certificates in etcd:config_dir (only when etcd:managed): with
pki:source salt its own key and a certificate for its address (serving and
peer, signed through the cluster's etcd signing policy, from etcd's own copy
of the CA: this runs on every controller at once and never touches
controlplane:pki_dir, whose files the control plane's rolling step watches);
with pillar the apiserver's certificate, as the seed's chapter 07 does.
"""


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    validated = ctx["validated"]
    states = __salt__["k8s_pki.sls_states"]("etcd", validated)
    return {"include": [validated], **states}
