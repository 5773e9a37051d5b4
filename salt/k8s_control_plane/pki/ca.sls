#!py
"""
The PKI directory (controlplane:pki_dir, root-only) and the cluster CA in it:
ca.pem and ca-key.pem from k8s_control_plane:secrets (with pki:source salt
the master's ext_pillar k8s_pki gives them; with pillar the operator does).
The kube-controller-manager signs with ca-key.pem (the seed's layout), and
the certificates of pki and pki.etcd are signed with it here. A symlink in
the directory is refused before anything is written (k8s_pki.no_symlinks).
"""


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    validated = ctx["validated"]
    return {"include": [validated], **__salt__["k8s_pki.sls_states"]("ca", validated)}
