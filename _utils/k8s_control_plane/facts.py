"""Facts derived from a configuration (any shape, tolerated): controller ids, the RBAC
controller, versions and per-minor rows, VRRP priorities and keepalived roles, etcd servers,
the PKI source."""

import re
from collections.abc import Sequence
from typing import Any

from salt.exceptions import CommandExecutionError

from .names import PILLAR_KEY, PKI_FILES

# X.Y.Z without leading zeros: 1.18.06 is no release path.
VERSION_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
MINOR_RE = re.compile(r"^v?(\d+)\.(\d+)(\.\d+)?$")


def lookup(cfg: Any, path: str) -> Any:
    """cfg at 'a:b:c'; None when absent or when a parent is not a mapping."""
    node = cfg
    for part in path.split(":"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def pki_files() -> list[dict[str, str]]:
    """The files placed from k8s_control_plane:secrets: [{"name", "mode"}]."""
    return [{"name": name, "mode": mode} for name, mode in PKI_FILES]


def controller_ids(cfg: Any) -> list[Any]:
    """The ids of the controller list, tolerating any shape (invalid entries skipped)."""
    controllers = cfg.get("controllers") if isinstance(cfg, dict) else None
    return [
        c.get("id")
        for c in (controllers if isinstance(controllers, list) else [])
        if isinstance(c, dict)
    ]


def apply_from(cfg: Any) -> Any:
    """
    The controller that applies the cluster-wide objects (RBAC): rbac:apply_from,
    default the first controller; None when there is none. Reads a pillar or a
    merged configuration, of any shape.
    """
    rbac = cfg.get("rbac") if isinstance(cfg, dict) else None
    chosen = rbac.get("apply_from") if isinstance(rbac, dict) else None
    ids = controller_ids(cfg)
    return chosen or (ids[0] if ids else None)


def parse_version(version: Any) -> tuple[int, ...] | None:
    """(major, minor, patch) of '1.18.6' or 'v1.18.6'; None when malformed."""
    match = VERSION_RE.match(str(version or ""))
    return tuple(int(part) for part in match.groups()) if match else None


def parse_minor(version: Any) -> tuple[int, int] | None:
    """(major, minor) of '1.19', 'v1.19' or '1.19.4'; None when malformed."""
    match = MINOR_RE.match(str(version or ""))
    return (int(match[1]), int(match[2])) if match else None


def minor_of(version: Any, what: str = "version") -> tuple[int, int]:
    minor = parse_minor(version)
    if minor is None:
        raise CommandExecutionError(f"{what} {version!r} is not X.Y or X.Y.Z")
    return minor


def row_at(rows: list[dict[str, Any]] | None, minor: Sequence[int]) -> dict[str, Any] | None:
    """
    The row of a per-minor table (rows with a ``since: "X.Y"``, any order)
    that applies at ``minor`` ((major, minor)): the one with the highest
    ``since`` not above it (the later row of two with the same ``since``);
    None when every row starts later.
    """
    chosen = None
    for row in rows or []:
        since = minor_of(row["since"], "since")
        if since <= tuple(minor) and (chosen is None or since >= minor_of(chosen["since"])):
            chosen = row
    return chosen


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def priorities(cfg: Any) -> list[int | None]:
    """
    The one VRRP priority rule: per controller, in list order, its explicit
    ``priority``, else loadbalancer:keepalived:priority_base minus its index.
    Tolerant: None for an entry whose priority cannot be known (not a mapping,
    a priority that is not an integer, or no integer base to compute from);
    the validation reports those.
    """
    controllers = cfg.get("controllers") if isinstance(cfg, dict) else None
    controllers = controllers if isinstance(controllers, list) else []
    base = lookup(cfg, "loadbalancer:keepalived:priority_base")
    result: list[int | None] = []
    for index, entry in enumerate(controllers):
        explicit = entry.get("priority") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            result.append(None)
        elif explicit is not None:
            result.append(explicit if is_whole(explicit) else None)
        else:
            result.append(base - index if is_whole(base) else None)
    return result


def _interface_for(address, ip4_interfaces):
    for name, addresses in sorted((ip4_interfaces or {}).items()):
        if address in (addresses or []):
            return name
    return None


def keepalived_role(
    cfg: dict[str, Any], minion_id: str, ip4_interfaces: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """
    The keepalived role of ``minion_id`` in a merged, validated configuration:
    state (MASTER for the highest priority, BACKUP for the rest; the seed's
    SLAVE is not a keepalived state), priority, unicast_src_ip, unicast_peers,
    vip, interface (vip:interface, else the interface carrying the address)
    and virtual_router_id.
    """
    controllers = cfg.get("controllers") or []
    ids = [c["id"] for c in controllers]
    if minion_id not in ids:
        raise CommandExecutionError(
            f"{minion_id} is not in {PILLAR_KEY}:controllers; valid: {', '.join(ids)}"
        )
    prios = priorities(cfg)
    index = ids.index(minion_id)
    if prios[index] is None:
        raise CommandExecutionError(
            f"{PILLAR_KEY}:controllers:{index}:priority: no integer priority for {minion_id}"
        )
    me = controllers[index]
    vip = cfg["vip"]
    interface = vip.get("interface") or _interface_for(me["address"], ip4_interfaces)
    if not interface:
        raise CommandExecutionError(
            f"no interface carries {me['address']} on {minion_id} and "
            f"{PILLAR_KEY}:vip:interface is not set; valid: set vip:interface, "
            "or configure the controller's address first"
        )
    return {
        "id": minion_id,
        "state": "MASTER" if prios[index] == max(p for p in prios if p is not None) else "BACKUP",
        "priority": prios[index],
        "unicast_src_ip": me["address"],
        "unicast_peers": [c["address"] for c in controllers if c["id"] != minion_id],
        "vip": vip["address"],
        "interface": interface,
        "virtual_router_id": vip["virtual_router_id"],
    }


def etcd_servers(cfg: dict[str, Any]) -> list[str]:
    """The apiservers' --etcd-servers: etcd:servers, else every controller's client URL."""
    etcd = cfg.get("etcd") or {}
    return list(etcd.get("servers") or []) or [
        f"https://{c['address']}:{etcd.get('client_port', 2379)}" for c in cfg["controllers"]
    ]


def pki_source(cfg: Any) -> str | None:
    """
    The cluster's pki:source: ``salt`` (the default), ``pillar``, or None
    for any other value (the validation reports it). The one reading of it.
    """
    pki = cfg.get("pki") if isinstance(cfg, dict) else None
    value = pki.get("source", "salt") if isinstance(pki, dict) else "salt"
    return value if value in ("salt", "pillar") else None
