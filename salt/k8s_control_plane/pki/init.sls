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

# A #!py SLS gets __salt__ but no __utils__ (salt/utils/templates.py py()), and the renderer
# binds the name "salt" to __salt__: the formula's utils package, which builds the state data
# (so that it is no CLI function), is loaded here through salt.loader under another name.
import salt.loader as loader


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    apis = __salt__["k8s_flags.apis"]()
    encryption = {
        "source": __salt__["k8s_cluster.sources"]("pki", "encryption-config.yaml.jinja"),
        "api_version": apis["encryption_config"],
        "kind": apis["encryption_config_kind"],
    }
    build = loader.utils(__opts__)["k8s_control_plane.pki_sls_states"]
    states = build(ctx["cfg"], __grains__["id"], "init", ctx["validated"], encryption)
    return {"include": [ctx["validated"], f"{ctx['root']}.pki.ca"], **states}
