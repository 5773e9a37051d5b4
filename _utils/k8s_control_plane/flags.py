"""The components' flags and API versions, from the version table."""

from typing import Any

from salt.exceptions import CommandExecutionError

from .facts import etcd_servers, minor_of, pki_source, row_at
from .names import COMPONENT_BINARIES


def _applies(entry, minor):
    since, until = entry.get("since"), entry.get("until")
    return (since is None or minor_of(since, "since") <= minor) and (
        until is None or minor < minor_of(until, "until")
    )


def _pick(rows, minor, what):
    """The ``api`` of row_at(rows, minor); an error naming ``what`` when no row applies."""
    chosen = row_at(rows, minor)
    if chosen is None:
        raise CommandExecutionError(f"no {what} for Kubernetes {minor[0]}.{minor[1]}")
    return chosen["api"]


def _kubelet_client(cfg):
    return "kubernetes" if pki_source(cfg) == "pillar" else "apiserver-kubelet-client"


def flag_context(cfg: dict[str, Any], address: str) -> dict[str, Any]:
    """The values the flag table's format strings can use, for a controller at ``address``."""
    cp = cfg["controlplane"]
    k8s = cfg["kubernetes"]
    servers = etcd_servers(cfg)
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
        # the apiserver's client certificate to the kubelets: its own with pki:source
        # salt (user kubernetes), the serving one in the seed's pillar layout
        "kubelet_client": f"{cp['pki_dir']}/{_kubelet_client(cfg)}",
        "service_account_issuer": cp["service_account_issuer"],
        "service_cidr": k8s["service_cidr"],
        "verbosity": cp["verbosity"],
        "vip": cfg["vip"]["address"],
    }


def build_flags(
    table: dict[str, Any],
    component: str,
    version: str,
    ctx: dict[str, Any],
    extra_args: dict[str, Any] | None = None,
) -> list[str]:
    """
    The ordered ``--flag=value`` list of ``component`` at ``version``.
    ``extra_args`` ({flag: value}) replaces a flag's value in place, appends
    new flags, and removes a flag whose value is None.
    """
    if component not in table["flags"]:
        raise CommandExecutionError(
            f"unknown component {component!r}; valid: {', '.join(COMPONENT_BINARIES)}"
        )
    minor = minor_of(version, "Kubernetes version")
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


def api_versions(table: dict[str, Any], version: str) -> dict[str, Any]:
    """{'scheduler_config': ..., 'rbac': ...}: the API versions ``version`` serves."""
    minor = minor_of(version, "Kubernetes version")
    return {
        "scheduler_config": _pick(table["scheduler_config_api"], minor, "scheduler config API"),
        "rbac": _pick(table["rbac_api"], minor, "RBAC API"),
    }
