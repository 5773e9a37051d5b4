#!py
"""
Seed steps "Configure the Kubernetes API Server / Controller Manager /
Scheduler" and "Start the Controller Services": one systemd unit each with
the flags of the pillar's version (k8s_flags.flags), the scheduler's
configuration, all enabled and running, restarted when a unit, a binary or
a file they read changes.
"""

DESCRIPTIONS = {
    "kube-apiserver": "Kubernetes API Server",
    "kube-controller-manager": "Kubernetes Controller Manager",
    "kube-scheduler": "Kubernetes Scheduler",
}


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    root, validated, cfg = ctx["root"], ctx["validated"], ctx["cfg"]
    cp = cfg["controlplane"]
    sid = ctx["sid"]  # the SLS path: <root>-<component>[-<sls>]
    states = {
        "include": [validated, f"{root}.controlplane.binaries", f"{root}.pki"],
        f"{sid}-file-managed-kube-scheduler.yaml": {
            "file.managed": [
                {"name": f"{cp['config_dir']}/kube-scheduler.yaml"},
                {
                    "source": __salt__["k8s_cluster.sources"](
                        "controlplane", "kube-scheduler.yaml.jinja"
                    )
                },
                {"template": "jinja"},
                {
                    "context": {
                        "api_version": __salt__["k8s_flags.apis"]()["scheduler_config"],
                        "pki_dir": cp["pki_dir"],
                    }
                },
                {"user": "root"},
                {"group": "root"},
                {"mode": "0644"},
                {"makedirs": True},
                {"require": [{"sls": validated}]},
            ]
        },
    }
    for component, description in DESCRIPTIONS.items():
        unit = f"{sid}-file-managed-{component}"
        states[unit] = {
            "file.managed": [
                {"name": f"{cp['unit_dir']}/{component}.service"},
                {"source": __salt__["k8s_cluster.sources"]("controlplane", "unit.service.jinja")},
                {"template": "jinja"},
                {
                    "context": {
                        "component": component,
                        "description": description,
                        "bin_dir": cp["bin_dir"],
                        "flags": __salt__["k8s_flags.flags"](component),
                    }
                },
                {"user": "root"},
                {"group": "root"},
                {"mode": "0644"},
                {"require": [{"sls": validated}]},
            ]
        }
        watch = [
            {"file": unit},
            {"file": f"{root}-controlplane-binaries-file-managed-{component}"},
            # the PKI files it reads (k8s_pki.watch: _utils/k8s_control_plane/pki.py READERS)
            *__salt__["k8s_pki.watch"](component, root),
        ]
        if component == "kube-scheduler":
            watch.append({"file": f"{sid}-file-managed-kube-scheduler.yaml"})
        running = [{"name": component}, {"enable": True}, {"watch": watch}]
        if component == "kube-apiserver":
            # One apiserver restarting at a time across the cluster, however the runs
            # were started (a plain state.apply on every controller too): the cluster's
            # turn, an etcd lock, taken before the restart and given back once ready.
            turn = {"name": component}
            states[f"{sid}-k8s_etcd-turn_taken"] = {
                "k8s_etcd.turn_taken": [turn, {"onchanges": list(watch)}]
            }
            running.append({"require": [{"k8s_etcd": f"{sid}-k8s_etcd-turn_taken"}]})
            states[f"{sid}-k8s_etcd-turn_given"] = {
                "k8s_etcd.turn_given": [
                    turn,
                    {"onchanges": list(watch)},
                    {"require": [{"k8s_health": f"{sid}-k8s_health-ready"}]},
                ]
            }
        else:
            # Kubernetes' skew policy: a controller-manager or scheduler never
            # runs newer than its apiserver, so on an upgrade they restart
            # only once the new apiserver (127.0.0.1 in their kubeconfigs) is ready.
            running.append({"require": [{"k8s_health": f"{sid}-k8s_health-ready"}]})
        states[f"{sid}-service-running-{component}"] = {"service.running": running}
    # A restarted apiserver is ready before this controller is done, so that
    # the orchestration's one-at-a-time rollout keeps the others serving.
    states[f"{sid}-k8s_health-ready"] = {
        "k8s_health.ready": [
            {"name": "kube-apiserver"},
            {"timeout": cp["ready_timeout"]},
            {"scope": "local"},
            {"require": [{"service": f"{sid}-service-running-kube-apiserver"}]},
        ]
    }
    return states
