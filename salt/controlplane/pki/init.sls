#!py
"""
Seed step "Configure the Kubernetes API Server" (the `mv` of certificates,
keys, kubeconfigs and the encryption config to /var/lib/kubernetes): each
file from this cluster's pillar, root-only, keys and credentials 0600. The
contents never enter the state data (contents_pillar, template lookups) and
no diff is printed.
"""

PUBLIC = ("ca.pem", "kubernetes.pem", "service-account.pem")


def run():
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": ["cluster.validate"]}
    cfg = __salt__["k8s_cluster.config"]()
    pki_dir = cfg["controlplane"]["pki_dir"]
    states = {
        "include": ["cluster.validate"],
        "controlplane-pki-file-directory": {
            "file.directory": [
                {"name": pki_dir},
                {"user": "root"},
                {"group": "root"},
                {"mode": "0700"},
                {"makedirs": True},
                {"require": [{"sls": "cluster.validate"}]},
            ]
        },
    }
    directory = [{"file": "controlplane-pki-file-directory"}]
    for name in __salt__["k8s_cluster.secret_files"]():
        states[f"controlplane-pki-file-managed-{name}"] = {
            "file.managed": [
                {"name": f"{pki_dir}/{name}"},
                {"contents_pillar": f"k8s_control_plane:secrets:{name}"},
                {"user": "root"},
                {"group": "root"},
                {"mode": "0644" if name in PUBLIC else "0600"},
                {"show_changes": False},
                {"require": directory},
            ]
        }
    states["controlplane-pki-file-managed-encryption-config.yaml"] = {
        "file.managed": [
            {"name": f"{pki_dir}/encryption-config.yaml"},
            {"source": "salt://controlplane/files/encryption-config.yaml.jinja"},
            {"template": "jinja"},
            {"user": "root"},
            {"group": "root"},
            {"mode": "0600"},
            {"show_changes": False},
            {"require": directory},
        ]
    }
    return states
