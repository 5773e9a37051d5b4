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
    root = sls.split(".")[0]
    validated = f"{root}.cluster.validate"
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": [validated]}
    return {"include": [validated], **__salt__["k8s_pki.sls_states"]("ca", validated)}
