#!py
"""
Seed step "Install Haproxy" / "Setting Haproxy": the package, the cluster CA
for verifying the apiservers, and haproxy.cfg (checked by `haproxy -c` before
it replaces the live file). haproxy reloads when its configuration changes.
"""


def run():
    root = sls.split(".")[0]
    validated = f"{root}.cluster.validate"
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": [validated]}
    cfg = __salt__["k8s_cluster.config"]()
    h = cfg["loadbalancer"]["haproxy"]
    sid = f"{root}-loadbalancer-haproxy"
    controllers = [{"id": c["id"], "address": c["address"]} for c in cfg["controllers"]]
    return {
        "include": [validated, f"{root}.loadbalancer.sysctl"],
        f"{sid}-pkg-installed": {
            "pkg.installed": [{"name": h["pkg"]}, {"require": [{"sls": validated}]}]
        },
        f"{sid}-file-managed-ca": {
            "file.managed": [
                {"name": h["ca_file"]},
                {"contents_pillar": "k8s_control_plane:secrets:ca.pem"},
                {"user": "root"},
                {"group": "root"},
                {"mode": "0644"},
                {"makedirs": True},
                {"require": [{"pkg": f"{sid}-pkg-installed"}]},
            ]
        },
        f"{sid}-file-managed": {
            "file.managed": [
                {"name": h["config"]},
                {"source": __salt__["k8s_cluster.sources"]("loadbalancer", "haproxy.cfg.jinja")},
                {"template": "jinja"},
                {
                    "context": {
                        "h": h,
                        "vip": cfg["vip"]["address"],
                        "controllers": controllers,
                        "apiserver_port": cfg["controlplane"]["apiserver_port"],
                    }
                },
                {"user": "root"},
                {"group": "root"},
                {"mode": "0644"},
                {"check_cmd": "haproxy -c -q -f"},
                {"require": [{"file": f"{sid}-file-managed-ca"}]},
            ]
        },
        **{
            f"{sid}-pkg-installed-{pkg}": {
                "pkg.installed": [
                    {"name": pkg},
                    {"require": [{"sls": validated}]},
                    {
                        "require_in": [
                            {"selinux": f"{sid}-selinux-boolean-{b}"} for b in h["selinux_booleans"]
                        ]
                    },
                ]
            }
            for pkg in h["selinux_pkgs"]
        },
        **{
            f"{sid}-selinux-boolean-{boolean}": {
                "selinux.boolean": [
                    {"name": boolean},
                    {"value": True},
                    {"persist": True},
                    {"require_in": [{"service": f"{sid}-service-running"}]},
                ]
            }
            for boolean in h["selinux_booleans"]
        },
        f"{sid}-service-running": {
            "service.running": [
                {"name": h["service"]},
                {"enable": True},
                {"reload": True},
                {"require": [{"sls": f"{root}.loadbalancer.sysctl"}]},
                {"watch": [{"file": f"{sid}-file-managed"}, {"file": f"{sid}-file-managed-ca"}]},
            ]
        },
    }
