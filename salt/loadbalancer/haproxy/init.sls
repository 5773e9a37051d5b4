#!py
"""
Seed step "Install Haproxy" / "Setting Haproxy": the package, the cluster CA
for verifying the apiservers, and haproxy.cfg (checked by `haproxy -c` before
it replaces the live file). haproxy reloads when its configuration changes.
"""


def run():
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": ["cluster.validate"]}
    cfg = __salt__["k8s_cluster.config"]()
    h = cfg["loadbalancer"]["haproxy"]
    controllers = [{"id": c["id"], "address": c["address"]} for c in cfg["controllers"]]
    return {
        "include": ["cluster.validate", "loadbalancer.sysctl"],
        "loadbalancer-haproxy-pkg-installed": {
            "pkg.installed": [{"name": h["pkg"]}, {"require": [{"sls": "cluster.validate"}]}]
        },
        "loadbalancer-haproxy-file-managed-ca": {
            "file.managed": [
                {"name": h["ca_file"]},
                {"contents_pillar": "k8s_control_plane:secrets:ca.pem"},
                {"user": "root"},
                {"group": "root"},
                {"mode": "0644"},
                {"makedirs": True},
                {"require": [{"pkg": "loadbalancer-haproxy-pkg-installed"}]},
            ]
        },
        "loadbalancer-haproxy-file-managed": {
            "file.managed": [
                {"name": h["config"]},
                {"source": "salt://loadbalancer/files/haproxy.cfg.jinja"},
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
                {"require": [{"file": "loadbalancer-haproxy-file-managed-ca"}]},
            ]
        },
        **{
            f"loadbalancer-haproxy-pkg-installed-{pkg}": {
                "pkg.installed": [
                    {"name": pkg},
                    {"require": [{"sls": "cluster.validate"}]},
                    {
                        "require_in": [
                            {"selinux": f"loadbalancer-haproxy-selinux-boolean-{b}"}
                            for b in h["selinux_booleans"]
                        ]
                    },
                ]
            }
            for pkg in h["selinux_pkgs"]
        },
        **{
            f"loadbalancer-haproxy-selinux-boolean-{boolean}": {
                "selinux.boolean": [
                    {"name": boolean},
                    {"value": True},
                    {"persist": True},
                    {"require_in": [{"service": "loadbalancer-haproxy-service-running"}]},
                ]
            }
            for boolean in h["selinux_booleans"]
        },
        "loadbalancer-haproxy-service-running": {
            "service.running": [
                {"name": h["service"]},
                {"enable": True},
                {"reload": True},
                {"require": [{"sls": "loadbalancer.sysctl"}]},
                {
                    "watch": [
                        {"file": "loadbalancer-haproxy-file-managed"},
                        {"file": "loadbalancer-haproxy-file-managed-ca"},
                    ]
                },
            ]
        },
    }
