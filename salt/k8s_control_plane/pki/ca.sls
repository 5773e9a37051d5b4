#!py
"""
The PKI directory (controlplane:pki_dir, root-only) and the cluster CA in it:
ca.pem and ca-key.pem from k8s_control_plane:secrets (with pki:source salt
the master's ext_pillar k8s_pki gives them; with pillar the operator does).
The kube-controller-manager signs with ca-key.pem (the seed's layout), and
the certificates of pki and pki.etcd are signed with it here. A symlink in
the directory is refused before anything is written (k8s_pki.no_symlinks).
"""

# A #!py SLS gets __salt__ but no __utils__ (salt/utils/templates.py py()), and the renderer
# binds the name "salt" to __salt__: the formula's utils package, which builds the state data
# (so that it is no CLI function), is loaded here through salt.loader under another name.
import salt.loader as loader


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    build = loader.utils(__opts__)["k8s_control_plane.pki_sls_states"]
    states = build(ctx["cfg"], __grains__["id"], "ca", ctx["validated"])
    return {"include": [ctx["validated"]], **states}
