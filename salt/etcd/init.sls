#!py
"""
The seed's previous chapter, "Bootstrapping the etcd Cluster": etcd v3 on
every controller with peer and client TLS, --initial-cluster from the
controller list. Optional: nothing happens unless etcd:managed is true.
"""

PUBLIC = ("ca.pem", "kubernetes.pem")


def run():
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": ["cluster.validate"]}
    cfg = __salt__["k8s_cluster.config"]()
    etcd = cfg["etcd"]
    if not etcd["managed"]:
        return {"include": ["cluster.validate"]}
    me = __salt__["k8s_cluster.controller"]()
    base = f"{etcd['release_url'].rstrip('/')}/v{str(etcd['version']).lstrip('v')}"
    base += f"/bin/linux/{cfg['kubernetes']['arch']}"
    validated = [{"sls": "cluster.validate"}]
    states = {"include": ["cluster.validate"]}
    watch = []
    for name in ("etcd", "etcdctl"):
        sid = f"etcd-init-file-managed-{name}"
        states[sid] = {
            "file.managed": [
                {"name": f"{etcd['bin_dir']}/{name}"},
                {"source": f"{base}/{name}"},
                {"source_hash": f"{base}/{name}.sha256"},
                {"mode": "0755"},
                {"makedirs": True},
                {"require": validated},
            ]
        }
        watch.append({"file": sid})
    states["etcd-init-file-directory"] = {
        "file.directory": [
            {"names": [etcd["config_dir"], etcd["data_dir"]]},
            {"user": "root"},
            {"mode": "0700"},
            {"makedirs": True},
            {"require": validated},
        ]
    }
    for name in ("ca.pem", "kubernetes.pem", "kubernetes-key.pem"):
        sid = f"etcd-init-file-managed-{name}"
        states[sid] = {
            "file.managed": [
                {"name": f"{etcd['config_dir']}/{name}"},
                {"contents_pillar": f"k8s_control_plane:secrets:{name}"},
                {"mode": "0644" if name in PUBLIC else "0600"},
                {"show_changes": False},
                {"require": [{"file": "etcd-init-file-directory"}]},
            ]
        }
        watch.append({"file": sid})
    initial = ",".join(
        f"{c['id']}=https://{c['address']}:{etcd['peer_port']}" for c in cfg["controllers"]
    )
    states["etcd-init-file-managed-unit"] = {
        "file.managed": [
            {"name": etcd["unit"]},
            {"source": "salt://etcd/files/etcd.service.jinja"},
            {"template": "jinja"},
            {
                "context": {
                    "etcd": etcd,
                    "name": me["id"],
                    "address": me["address"],
                    "initial_cluster": initial,
                }
            },
            {"mode": "0644"},
            {"require": validated},
        ]
    }
    watch.append({"file": "etcd-init-file-managed-unit"})
    states["etcd-init-service-running"] = {
        "service.running": [{"name": "etcd"}, {"enable": True}, {"watch": watch}]
    }
    return states
