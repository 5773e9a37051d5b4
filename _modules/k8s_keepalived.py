"""
keepalived roles, computed from the ordered controller list.

The seed wrote these by hand with shell conditionals on the hostname
(``state SLAVE``, priorities 101/100/99, peers grepped from /etc/hosts).
Here they are one rule (``_utils/k8s_control_plane/``: ``priorities`` and
``keepalived_role``) of the cluster configuration and the minion's grains,
callable from the CLI.
"""

import logging
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_keepalived"


def __virtual__():
    # Shells out to nothing: a function of the configuration and the grains.
    return __virtualname__


def _compute(cfg, minion_id, ip4_interfaces):
    role = __utils__["k8s_control_plane.keepalived_role"](cfg, minion_id, ip4_interfaces)
    log.debug(
        "k8s_keepalived: %s is %s, priority %s, on %s",
        minion_id,
        role["state"],
        role["priority"],
        role["interface"],
    )
    return role


def role(minion_id: str | None = None) -> dict[str, Any]:
    """
    Return this minion's keepalived role: state, priority, unicast source and
    peers, the VIP and the interface.

    minion_id
        Compute the role of another controller (the interface then comes from
        pillar only).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-2 k8s_keepalived.role
    """
    cfg = __salt__["k8s_cluster.config"]()
    own = minion_id in (None, __grains__["id"])
    return _compute(
        cfg,
        __grains__["id"] if own else minion_id,
        __grains__.get("ip4_interfaces") if own else {},
    )


def roles() -> dict[str, dict[str, Any]]:
    """
    Return the roles of every controller of this minion's cluster, keyed by id.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_keepalived.roles
    """
    cfg = __salt__["k8s_cluster.config"]()
    grains_if = __grains__.get("ip4_interfaces")
    result = {}
    for entry in cfg.get("controllers") or []:
        own = entry["id"] == __grains__["id"]
        try:
            result[entry["id"]] = _compute(cfg, entry["id"], grains_if if own else {})
        except CommandExecutionError as exc:
            log.debug("k8s_keepalived: no role for %s: %s", entry["id"], exc)
            result[entry["id"]] = {"error": str(exc)}
    return result
