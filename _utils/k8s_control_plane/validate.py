"""The validation of a merged configuration and a controller's preflight: the entry points."""

import copy
from typing import Any

from .checks import (
    check_controllers,
    check_etcd,
    check_extra_args_versions,
    check_kubernetes,
    check_ports,
    check_rbac_rules,
    check_secrets,
    check_settings,
    check_tofs,
    check_vip,
    check_vrrp,
)
from .facts import controller_ids
from .names import PROFILES
from .schema import SCHEMA, Errors, masked, plain, section, walk


def validate_config(
    cfg: Any, table: dict[str, Any] | None = None, minion_id: str | None = None
) -> list[str]:
    """
    Validate a merged configuration: every error at once, each naming the
    pillar key and what is valid; an empty list when valid. ``table`` is the
    version table (the supported range); ``minion_id``, when given, must be
    one of the controllers. An error never quotes a secret.
    """
    errors = Errors()
    if not isinstance(cfg, dict):
        errors.add("", "must be a mapping")
        return list(errors)
    cfg = plain(cfg)  # Salt's pillar holds OrderedDicts; messages show plain YAML
    walk(errors, cfg, SCHEMA, "", quiet_absent=cfg.get("profile") not in PROFILES)
    addresses = check_controllers(errors, cfg)
    ids = controller_ids(cfg)
    if minion_id is not None and addresses and minion_id not in ids:
        errors.add("controllers", f"this minion ({minion_id}) is not listed; listed: {ids}")
    vip = check_vip(errors, cfg, addresses)
    check_vrrp(errors, cfg)
    service = check_kubernetes(errors, cfg, table, addresses, vip)
    check_etcd(errors, cfg)
    check_ports(errors, cfg)
    check_settings(errors, cfg, ids)
    check_rbac_rules(errors, cfg)
    check_extra_args_versions(errors, cfg, table)
    check_tofs(errors, cfg)
    check_secrets(errors, cfg, addresses, vip, service)
    return list(errors)


def redact(cfg: Any) -> Any:
    """
    A copy of a configuration for display: every value under ``secrets``, and
    the value of every key that looks like a password anywhere else
    (``auth_pass``, ``password``, ...), replaced by ``<secret>``.
    """

    if not isinstance(cfg, dict):
        return copy.deepcopy(cfg)
    result = masked({k: v for k, v in cfg.items() if k != "secrets"})
    if "secrets" in cfg:
        secrets = cfg["secrets"]
        result["secrets"] = (
            {name: "<secret>" for name in secrets} if isinstance(secrets, dict) else "<secret>"
        )
    return result


def validate_minion(
    cfg: Any,
    table: dict[str, Any] | None,
    minion_id: str,
    ip4_interfaces: dict[str, list[str]] | None,
) -> dict[str, Any]:
    """
    The whole check of one controller, in its two stages: the configuration
    (validate_config), then, only when that found nothing, this controller's
    preflight (a malformed configuration would make the preflight report the
    same fault twice, or about values it cannot read). Returns
    ``{"stage": "pillar" | "preflight", "errors": [...]}``.
    """
    errors = validate_config(cfg, table, minion_id=minion_id)
    if errors:
        return {"stage": "pillar", "errors": errors}
    return {"stage": "preflight", "errors": preflight(cfg, minion_id, ip4_interfaces)}


def preflight(cfg: Any, minion_id: str, ip4_interfaces: dict[str, list[str]] | None) -> list[str]:
    """
    What this controller must have before anything is applied (validate_minion
    runs it only once validate_config found the configuration well-formed; on
    a malformed one it skips what it cannot read rather than fail). Returns
    errors: the controller's address must be configured on it, and
    vip:interface (when set) must exist and carry that address.
    """
    errors = Errors()
    ip4_interfaces = ip4_interfaces if isinstance(ip4_interfaces, dict) else {}
    controllers = cfg.get("controllers") if isinstance(cfg, dict) else None
    for index, entry in enumerate(controllers if isinstance(controllers, list) else []):
        if not isinstance(entry, dict) or entry.get("id") != minion_id:
            continue
        address = str(entry.get("address"))
        carriers = sorted(n for n, addrs in ip4_interfaces.items() if address in (addrs or []))
        if not carriers:
            found = sorted({a for addrs in ip4_interfaces.values() for a in addrs or []})
            errors.add(
                f"controllers:{index}:address",
                f"{address} is not configured on {minion_id}; its IPv4 addresses: "
                f"{', '.join(found) or 'none'}",
            )
        interface = section(cfg, "vip").get("interface")
        if interface and interface not in ip4_interfaces:
            errors.add(
                "vip:interface",
                f"{interface} does not exist on {minion_id}; valid: "
                f"{', '.join(sorted(n for n in ip4_interfaces if n != 'lo'))}",
            )
        elif interface and carriers and interface not in carriers:
            errors.add(
                "vip:interface",
                f"{interface} does not carry {address} on {minion_id}; "
                f"valid: {', '.join(carriers)}",
            )
    return list(errors)
