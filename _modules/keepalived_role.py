"""
keepalived roles, computed from the ordered controller list.

The seed wrote these by hand with shell conditionals on the hostname
(``state SLAVE``, priorities 101/100/99, peers grepped from /etc/hosts).
Here they are one pure function of the cluster configuration and the
minion's grains, callable from the CLI and unit-tested.
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "keepalived_role"


def __virtual__():
    return __virtualname__


def _interface_for(address, ip4_interfaces):
    for name, addresses in sorted((ip4_interfaces or {}).items()):
        if address in (addresses or []):
            return name
    return None


def compute(cfg, minion_id, ip4_interfaces=None):
    """
    Pure function: the keepalived role of ``minion_id`` in cluster ``cfg``
    (a merged, validated configuration).

    Returns a dict with state (MASTER for the highest priority, BACKUP for
    the rest), priority, unicast_src_ip, unicast_peers, vip, interface,
    virtual_router_id.
    """
    base = int(cfg["loadbalancer"]["keepalived"]["priority_base"])
    controllers = cfg.get("controllers") or []
    prios = [
        int(c["priority"]) if c.get("priority") is not None else base - index
        for index, c in enumerate(controllers)
    ]
    ids = [c["id"] for c in controllers]
    if minion_id not in ids:
        raise CommandExecutionError(
            f"{minion_id} is not in k8s_control_plane:controllers; valid: {', '.join(ids)}"
        )
    index = ids.index(minion_id)
    me = controllers[index]
    vip = cfg["vip"]
    interface = vip.get("interface") or _interface_for(me["address"], ip4_interfaces)
    if not interface:
        raise CommandExecutionError(
            f"no interface carries {me['address']} on {minion_id} and "
            "k8s_control_plane:vip:interface is not set; valid: set vip:interface, "
            "or configure the controller's address first"
        )
    return {
        "id": minion_id,
        "state": "MASTER" if prios[index] == max(prios) else "BACKUP",
        "priority": prios[index],
        "unicast_src_ip": me["address"],
        "unicast_peers": [c["address"] for c in controllers if c["id"] != minion_id],
        "vip": vip["address"],
        "interface": interface,
        "virtual_router_id": vip["virtual_router_id"],
    }


def role(minion_id=None):
    """
    Return this minion's keepalived role: state, priority, unicast source and
    peers, the VIP and the interface.

    minion_id
        Compute the role of another controller (the interface then comes from
        pillar only).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-2 keepalived_role.role
    """
    cfg = __salt__["k8s_cluster.config"]()
    own = minion_id in (None, __grains__["id"])
    return compute(
        cfg,
        __grains__["id"] if own else minion_id,
        __grains__.get("ip4_interfaces") if own else {},
    )


def roles():
    """
    Return the roles of every controller of this minion's cluster, keyed by id.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 keepalived_role.roles
    """
    cfg = __salt__["k8s_cluster.config"]()
    grains_if = __grains__.get("ip4_interfaces")
    result = {}
    for entry in cfg.get("controllers") or []:
        own = entry["id"] == __grains__["id"]
        try:
            result[entry["id"]] = compute(cfg, entry["id"], grains_if if own else {})
        except CommandExecutionError as exc:
            result[entry["id"]] = {"error": str(exc)}
    return result
