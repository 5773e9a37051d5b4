#!py
"""
The seed's previous chapter, "Bootstrapping the etcd Cluster": etcd v3 on
every controller with peer and client TLS, --initial-cluster from the
controller list, its certificates from pki.etcd. Optional: nothing happens
unless etcd:managed is true.
"""


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    root, validated, cfg = ctx["root"], ctx["validated"], ctx["cfg"]
    etcd = cfg["etcd"]
    if not etcd["managed"]:
        return {"include": [validated]}
    sid = ctx["sid"]  # the SLS path: <root>-<component>[-<sls>]
    me = __salt__["k8s_cluster.controller"]()
    base = f"{etcd['release_url'].rstrip('/')}/v{str(etcd['version']).lstrip('v')}"
    base += f"/bin/linux/{cfg['kubernetes']['arch']}"
    states = {"include": [validated, f"{root}.pki.etcd"]}
    watch = []
    # etcdutl (snapshot status and restore) ships with etcd from 3.5 (the 3.5.0 changelog:
    # etcdctl's offline commands moved to it)
    major_minor = tuple(int(p) for p in str(etcd["version"]).lstrip("v").split(".")[:2])
    tools = ("etcdutl",) if major_minor >= (3, 5) else ()
    for name in ("etcd", "etcdctl", *tools):
        binary = f"{sid}-file-managed-{name}"
        states[binary] = {
            "file.managed": [
                {"name": f"{etcd['bin_dir']}/{name}"},
                {"source": f"{base}/{name}"},
                {"source_hash": f"{base}/{name}.sha256"},
                {"mode": "0755"},
                {"makedirs": True},
                {"require": [{"sls": validated}]},
            ]
        }
        if name != "etcdutl":  # the offline tool (snapshot restore): nothing runs it
            watch.append({"file": binary})
    states[f"{sid}-file-directory"] = {
        "file.directory": [
            {"name": etcd["data_dir"]},
            {"user": "root"},
            {"mode": "0700"},
            {"makedirs": True},
            {"require": [{"sls": validated}]},
        ]
    }
    # etcd's certificates (pki.etcd): a change restarts etcd.
    watch.extend(__salt__["k8s_pki.watch"]("etcd", root))
    # The initial cluster, read by etcd on a member's first start only: written once (a
    # new cluster's, every controller), never replaced: a joining member's is written by
    # the orchestration (k8s_etcd.join) before this runs there. Not watched: a member
    # with data ignores it, so a membership change restarts no member.
    environment = __salt__["k8s_etcd.environment"]()
    states[f"{sid}-file-managed-environment"] = {
        "file.managed": [
            {"name": environment["path"]},
            {"contents": environment["text"]},
            {"replace": False},
            {"mode": "0644"},
            {"makedirs": True},
            {"require": [{"sls": validated}]},
        ]
    }
    states[f"{sid}-file-managed-unit"] = {
        "file.managed": [
            {"name": etcd["unit"]},
            {"source": __salt__["k8s_cluster.sources"]("etcd", "etcd.service.jinja")},
            {"template": "jinja"},
            {
                "context": {
                    "etcd": etcd,
                    "name": me["id"],
                    "address": me["address"],
                    "environment_file": environment["path"],
                    # its serving and peer files (pki.etcd): its own with pki:source
                    # salt, the apiserver's in the seed's pillar layout
                    "tls": dict(
                        zip(("ca", "cert", "key"), __salt__["k8s_pki.etcd_files"](), strict=True)
                    ),
                }
            },
            {"mode": "0644"},
            {"require": [{"sls": validated}]},
        ]
    }
    watch.append({"file": f"{sid}-file-managed-unit"})
    # A member still on the CA its files had (a CA change whose restart was interrupted):
    # no file changes again, so this state's change restarts it.
    states[f"{sid}-k8s_etcd-trust_current"] = {
        "k8s_etcd.trust_current": [{"name": "etcd"}, {"require": list(watch)}]
    }
    watch.append({"k8s_etcd": f"{sid}-k8s_etcd-trust_current"})
    # Before a restart (only when one is due): the other members must keep quorum
    # without this one, whoever restarts it (the orchestration's rolling step or a plain
    # state.apply on every controller at once); bounded, with the unhealthy ones named.
    # One member restarting at a time: the cluster's turn (an etcd lock) first.
    states[f"{sid}-k8s_etcd-turn_taken"] = {
        "k8s_etcd.turn_taken": [{"name": "etcd"}, {"onchanges": list(watch)}]
    }
    states[f"{sid}-k8s_etcd-restart_safe"] = {
        "k8s_etcd.restart_safe": [
            {"name": "etcd"},
            {"onchanges": list(watch)},
            {"require": [{"k8s_etcd": f"{sid}-k8s_etcd-turn_taken"}]},
        ]
    }
    states[f"{sid}-service-running"] = {
        "service.running": [
            {"name": "etcd"},
            {"enable": True},
            {
                "require": [
                    {"file": f"{sid}-file-managed-environment"},
                    {"k8s_etcd": f"{sid}-k8s_etcd-restart_safe"},
                ]
            },
            {"watch": watch},
        ]
    }
    states[f"{sid}-k8s_etcd-turn_given"] = {
        "k8s_etcd.turn_given": [
            {"name": "etcd"},
            {"onchanges": list(watch)},
            {"require": [{"service": f"{sid}-service-running"}]},
        ]
    }
    return states
