#!py
"""
Seed step "Install keepalived": the package, a tracking script run by an
unprivileged user under script security, and keepalived.conf from the role
that k8s_keepalived.role computes (checked by `keepalived -t` before it replaces
the live file). keepalived reloads when its configuration changes.
"""

# `keepalived -t` of keepalived 2.2.7 (Debian 12) sends itself SIGTERM while
# checking any vrrp_script and exits 143 whatever the config holds (fixed
# in 2.2.8, acassen/keepalived#2587). With SIGTERM ignored it runs to the end
# and exits 0 (clean), 5 (warnings) or 6 (errors). Salt appends the file as $0.
CHECK_CMD = 'sh -c \'trap "" TERM; exec keepalived -t -f "$0"\''


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    validated, cfg = ctx["validated"], ctx["cfg"]
    ka = cfg["loadbalancer"]["keepalived"]
    sid = ctx["sid"]  # the SLS path: <root>-<component>[-<sls>]
    return {
        "include": [validated],
        f"{sid}-pkg-installed": {
            "pkg.installed": [{"name": ka["pkg"]}, {"require": [{"sls": validated}]}]
        },
        f"{sid}-user-present": {
            "user.present": [
                {"name": ka["script_user"]},
                {"system": True},
                {"shell": "/usr/sbin/nologin"},
                {"home": "/nonexistent"},
                {"createhome": False},
                {"require": [{"sls": validated}]},
            ]
        },
        f"{sid}-file-managed": {
            "file.managed": [
                {"name": ka["config"]},
                {
                    "source": __salt__["k8s_cluster.sources"](
                        "loadbalancer", "keepalived.conf.jinja"
                    )
                },
                {"template": "jinja"},
                {"context": {"ka": ka, "role": __salt__["k8s_keepalived.role"]()}},
                {"user": "root"},
                {"group": "root"},
                {"mode": "0600"},
                {"makedirs": True},
                # The file may hold the VRRP password: never print a diff.
                {"show_changes": False},
                {"check_cmd": CHECK_CMD},
                {"require": [{"pkg": f"{sid}-pkg-installed"}, {"user": f"{sid}-user-present"}]},
            ]
        },
        f"{sid}-service-running": {
            "service.running": [
                {"name": ka["service"]},
                {"enable": True},
                {"reload": True},
                {"watch": [{"file": f"{sid}-file-managed"}]},
            ]
        },
    }
