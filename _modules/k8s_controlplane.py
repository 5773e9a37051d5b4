"""
Flags and API versions of the control plane components, per Kubernetes
version, from the table in ``salt://controlplane/parameters/versions.yaml``.
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "k8s_controlplane"

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def __virtual__():
    return __virtualname__


def _minor(text):
    major, minor = str(text).lstrip("v").split(".")[:2]
    return int(major), int(minor)


def _applies(entry, minor):
    since = entry.get("since")
    until = entry.get("until")
    return (since is None or _minor(since) <= minor) and (until is None or minor < _minor(until))


def _pick(rows, minor, what):
    chosen = None
    for row in rows:
        if _minor(row["since"]) <= minor:
            chosen = row["api"]
    if chosen is None:
        raise CommandExecutionError(f"no {what} for Kubernetes {minor[0]}.{minor[1]}")
    return chosen


def context(cfg, address):
    """Values the flag table's format strings can use (pure function)."""
    cp = cfg["controlplane"]
    k8s = cfg["kubernetes"]
    etcd = cfg.get("etcd") or {}
    servers = etcd.get("servers") or [
        f"https://{c['address']}:{etcd.get('client_port', 2379)}" for c in cfg["controllers"]
    ]
    return {
        "address": address,
        "apiserver_port": cp["apiserver_port"],
        "apiserver_count": len(cfg["controllers"]),
        "audit_log_path": cp["audit_log_path"],
        "cluster_cidr": k8s["cluster_cidr"],
        "cluster_name": cfg["cluster_name"],
        "config_dir": cp["config_dir"],
        "etcd_servers": ",".join(servers),
        "node_port_range": k8s["node_port_range"],
        "pki_dir": cp["pki_dir"],
        "service_account_issuer": cp["service_account_issuer"],
        "service_cidr": k8s["service_cidr"],
        "verbosity": cp["verbosity"],
        "vip": cfg["vip"]["address"],
    }


def build_flags(table, component, version, ctx, extra_args=None):
    """
    Pure function: the ordered ``--flag=value`` list of ``component`` at
    ``version``. ``extra_args`` ({flag: value}) replaces a flag's value in
    place, appends new flags, and removes a flag whose value is None.
    """
    if component not in table["flags"]:
        raise CommandExecutionError(f"unknown component {component!r}; valid: {COMPONENTS}")
    minor = _minor(version)
    flags = {}
    for entry in table["flags"][component]:
        if _applies(entry, minor):
            value = str(entry["value"]).format(**ctx)
            if value != str(entry.get("omit_if")):
                flags[entry["flag"]] = value
    for flag, value in (extra_args or {}).items():
        flag = flag.lstrip("-")
        if value is None:
            flags.pop(flag, None)
        else:
            flags[flag] = str(value).lower() if isinstance(value, bool) else str(value)
    return [f"--{flag}={value}" for flag, value in flags.items()]


def api_versions(table, version):
    """Pure function: {'scheduler_config': ..., 'rbac': ...} for ``version``."""
    minor = _minor(version)
    return {
        "scheduler_config": _pick(table["scheduler_config_api"], minor, "scheduler config API"),
        "rbac": _pick(table["rbac_api"], minor, "RBAC API"),
    }


def flags(component, address=None):
    """
    Return the flags this minion runs ``component`` with, for the pillar's
    Kubernetes version, in unit-file order.

    component
        kube-apiserver, kube-controller-manager or kube-scheduler

    address
        The advertise address; default: this controller's address.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_controlplane.flags kube-apiserver
    """
    cfg = __salt__["k8s_cluster.config"]()
    address = address or __salt__["k8s_cluster.controller"]()["address"]
    extra = (cfg["controlplane"].get("extra_args") or {}).get(component)
    return build_flags(
        __salt__["k8s_cluster.versions"](),
        component,
        cfg["kubernetes"]["version"],
        context(cfg, address),
        extra,
    )


def apis():
    """
    Return the API versions the pillar's Kubernetes version takes for the
    scheduler configuration and the RBAC objects.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_controlplane.apis
    """
    cfg = __salt__["k8s_cluster.config"]()
    return api_versions(__salt__["k8s_cluster.versions"](), cfg["kubernetes"]["version"])
