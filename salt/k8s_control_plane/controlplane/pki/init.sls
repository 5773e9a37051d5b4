#!py
"""
Seed step "Configure the Kubernetes API Server" (the `mv` of certificates,
keys, kubeconfigs and the encryption config to /var/lib/kubernetes): each
file from this cluster's pillar, root-only, keys and credentials 0600. The
contents never enter the state data (contents_pillar, template lookups) and
no diff is printed. The encryption config's apiVersion and kind come from
the version table (k8s_controlplane.apis).
"""


def run():
    root = sls.split(".")[0]
    validated = f"{root}.cluster.validate"
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": [validated]}
    cfg = __salt__["k8s_cluster.config"]()
    pki_dir = cfg["controlplane"]["pki_dir"]
    apis = __salt__["k8s_controlplane.apis"]()
    sid = f"{root}-controlplane-pki"
    states = {
        "include": [validated],
        f"{sid}-file-directory": {
            "file.directory": [
                {"name": pki_dir},
                {"user": "root"},
                {"group": "root"},
                {"mode": "0700"},
                {"makedirs": True},
                {"require": [{"sls": validated}]},
            ]
        },
    }
    directory = [{"file": f"{sid}-file-directory"}]
    for entry in __salt__["k8s_cluster.pki_files"]():
        name = entry["name"]
        states[f"{sid}-file-managed-{name}"] = {
            "file.managed": [
                {"name": f"{pki_dir}/{name}"},
                {"contents_pillar": f"k8s_control_plane:secrets:{name}"},
                {"user": "root"},
                {"group": "root"},
                {"mode": entry["mode"]},
                {"show_changes": False},
                {"require": directory},
            ]
        }
    states[f"{sid}-file-managed-encryption-config.yaml"] = {
        "file.managed": [
            {"name": f"{pki_dir}/encryption-config.yaml"},
            {
                "source": __salt__["k8s_cluster.sources"](
                    "controlplane", "encryption-config.yaml.jinja"
                )
            },
            {"template": "jinja"},
            {
                "context": {
                    "api_version": apis["encryption_config"],
                    "kind": apis["encryption_config_kind"],
                }
            },
            {"user": "root"},
            {"group": "root"},
            {"mode": "0600"},
            {"show_changes": False},
            {"require": directory},
        ]
    }
    return states
