#!py
"""
etcd's certificates in etcd:config_dir (only when etcd:managed): with
pki:source salt its own key and a certificate for its address (serving and
peer, signed through the cluster's etcd signing policy, from etcd's own copy
of the CA: this runs on every controller at once and never touches
controlplane:pki_dir, whose files the control plane's rolling step watches);
with pillar the apiserver's certificate, as the seed's chapter 07 does.
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
    states = build(ctx["cfg"], __grains__["id"], "etcd", ctx["validated"])
    return {"include": [ctx["validated"]], **states}
