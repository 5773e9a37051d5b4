#!py
"""
Seed step "Install Haproxy" / "Setting Haproxy": the package, the cluster CA
for verifying the apiservers, and haproxy.cfg (checked by `haproxy -c` before
it replaces the live file). haproxy reloads when its configuration changes.

With loadbalancer:keepalived:track_file (the tuned profile), a drop-in makes
haproxy's unit write 1 to that file when haproxy stops or dies and 0 once it
has started: keepalived watches the file and sees haproxy's death at once.
"""

DROP_IN = "k8s_control_plane-track-file.conf"


def drop_in_path(cfg):
    """The drop-in of haproxy's unit that writes the track file (also used by clean)."""
    unit_dir = cfg["controlplane"]["unit_dir"]
    return f"{unit_dir}/{cfg['loadbalancer']['haproxy']['service']}.service.d/{DROP_IN}"


def _track_file_state(cfg, sid):
    track = cfg["loadbalancer"]["keepalived"].get("track_file")
    if not track:
        return {"file.absent": [{"name": drop_in_path(cfg)}]}
    contents = (
        "# Managed by Salt: keepalived's track_file (loadbalancer:keepalived:track_file).\n"
        "[Service]\n"
        f"ExecStartPost=/bin/sh -c 'echo 0 > {track}'\n"
        f"ExecStopPost=/bin/sh -c 'echo 1 > {track}'\n"
    )
    return {
        "file.managed": [
            {"name": drop_in_path(cfg)},
            {"contents": contents},
            {"user": "root"},
            {"group": "root"},
            {"mode": "0644"},
            {"makedirs": True},
            {"require": [{"pkg": f"{sid}-pkg-installed"}]},
        ]
    }


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    root, validated, cfg = ctx["root"], ctx["validated"], ctx["cfg"]
    h = cfg["loadbalancer"]["haproxy"]
    sid = ctx["sid"]  # the SLS path: <root>-<component>[-<sls>]
    controllers = [{"id": c["id"], "address": c["address"]} for c in cfg["controllers"]]
    track_state = _track_file_state(cfg, sid)
    track_id = f"{sid}-{next(iter(track_state)).replace('.', '-')}-track_file"
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
        track_id: track_state,
        # systemd does not see a new drop-in directory by itself (NeedDaemonReload
        # stays "no"), so Salt's own check before the reload would miss it.
        f"{sid}-module-run": {
            "module.run": [
                {"service.systemctl_reload": []},
                {"onchanges": [{"file": track_id}]},
                {"require_in": [{"service": f"{sid}-service-running"}]},
            ]
        },
        f"{sid}-service-running": {
            "service.running": [
                {"name": h["service"]},
                {"enable": True},
                {"reload": True},
                {"require": [{"sls": f"{root}.loadbalancer.sysctl"}]},
                {
                    "watch": [
                        {"file": f"{sid}-file-managed"},
                        {"file": f"{sid}-file-managed-ca"},
                        {"file": track_id},
                    ]
                },
            ]
        },
    }
