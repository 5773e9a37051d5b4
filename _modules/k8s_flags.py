"""
Flags and API versions of the control plane components, per Kubernetes
version, from the table in
``salt://<root>/controlplane/parameters/versions.yaml`` (the rules:
``_utils/k8s_control_plane/``, ``build_flags`` and ``api_versions``).
"""

import logging
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_flags"


def __virtual__():
    # Shells out to nothing: a function of the configuration and the version table.
    return __virtualname__


def flags(component: str, address: str | None = None) -> list[str]:
    """
    Return the flags this minion runs ``component`` with, for the pillar's
    Kubernetes version, in unit-file order.

    component
        kube-apiserver, kube-controller-manager or kube-scheduler

    address
        The advertise address; default: this controller's address.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_flags.flags kube-apiserver
    """
    cfg = __salt__["k8s_cluster.config"]()
    address = address or __salt__["k8s_cluster.controller"]()["address"]
    extra = (cfg["controlplane"].get("extra_args") or {}).get(component)
    version = cfg["kubernetes"]["version"]
    result = __utils__["k8s_control_plane.build_flags"](
        __salt__["k8s_cluster.versions"](),
        component,
        version,
        __utils__["k8s_control_plane.flag_context"](cfg, address),
        extra,
    )
    log.debug(
        "k8s_flags: %s at %s: %d flags (%d from extra_args)",
        component,
        version,
        len(result),
        len(extra or {}),
    )
    return result


def apis() -> dict[str, Any]:
    """
    Return the API versions the pillar's Kubernetes version takes for the
    scheduler configuration and the RBAC objects, the apiVersion and kind of
    the encryption configuration (``encryption_config``,
    ``encryption_config_kind``), and the kubelet API subresources the
    apiserver's kubelet client must be granted (``kubelet_api_resources``).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_flags.apis
    """
    cfg = __salt__["k8s_cluster.config"]()
    version = cfg["kubernetes"]["version"]
    table = __salt__["k8s_cluster.versions"]()
    result = __utils__["k8s_control_plane.api_versions"](table, version)
    minor = __utils__["k8s_control_plane.parse_minor"](version)
    row = __utils__["k8s_control_plane.row_at"](table.get("encryption_config_api"), minor)
    if row is None:
        raise CommandExecutionError(f"no encryption config API for Kubernetes {version}")
    result.update(encryption_config=row["api"], encryption_config_kind=row["kind"])
    row = __utils__["k8s_control_plane.row_at"](table.get("kubelet_api_resources"), minor)
    result["kubelet_api_resources"] = list((row or {}).get("resources") or [])
    log.debug("k8s_flags: API versions at %s: %s", version, result)
    return result
