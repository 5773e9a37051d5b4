"""The rules that span keys: controllers and addresses, the VIP, VRRP, Kubernetes' CIDRs and
version, etcd, ports, settings, RBAC rules, extra_args per version, TOFS and the secrets."""

import base64
import binascii
import ipaddress
import itertools
import re
from typing import Any

from .encryption import encryption_key_errors, encryption_keys
from .facts import (
    is_whole,
    lookup,
    minor_of,
    parse_minor,
    parse_version,
    pki_source,
    priorities,
)
from .names import COMPONENT_BINARIES, SECRET_FILES, SECRET_KEYS
from .pki_checks import check_pki
from .schema import (
    ID_RE,
    POLICY_RULE,
    Errors,
    integer,
    kind,
    name_list,
    ok,
    port_rule,
    positive,
    section,
    type_name,
    unknown_key,
    url_rule,
)


def _ipv4(errors, key, value):
    try:
        return ipaddress.IPv4Address(value if isinstance(value, str) else "")
    except ValueError:
        errors.add(key, f"{value!r} is not an IPv4 address")
        return None


def _network(errors, key, value):
    try:
        return ipaddress.IPv4Network(value if isinstance(value, str) else "", strict=True)
    except ValueError as exc:
        errors.add(key, f"{value!r} is not an IPv4 network in CIDR form ({exc})")
        return None


def check_controllers(errors: Errors, cfg: dict[str, Any]) -> list[ipaddress.IPv4Address]:
    """The controller list; returns the valid addresses."""
    controllers = cfg.get("controllers")
    if controllers is None:
        errors.add("controllers", "missing (expected a list of {id, address})")
        return []
    if not isinstance(controllers, list):
        errors.add(
            "controllers", f"expected a list of {{id, address}}, got {type_name(controllers)}"
        )
        return []
    if not controllers:
        errors.add("controllers", "empty (expected a list of {id, address}, one per controller)")
        return []
    seen_ids: dict[str, int]
    seen_addresses: dict[ipaddress.IPv4Address, int]
    seen_ids, seen_addresses, addresses = {}, {}, []
    for index, entry in enumerate(controllers):
        key = f"controllers:{index}"
        if not isinstance(entry, dict):
            errors.add(key, f"expected a mapping with id and address, got {entry!r}")
            continue
        for name in entry:
            if name not in ("id", "address", "priority"):
                unknown_key(errors, f"{key}:{name}", name, ["id", "address", "priority"])
        cid = entry.get("id")
        if cid is None or cid == "":
            errors.add(f"{key}:id", "missing (expected the controller's minion id)")
        elif not isinstance(cid, str) or not ID_RE.match(cid) or ".." in cid:
            errors.add(
                f"{key}:id",
                f"{cid!r} is not a valid minion id and haproxy server name; "
                f"valid: {ID_RE.pattern} without '..'",
            )
        elif cid in seen_ids:
            errors.add(f"{key}:id", f"duplicate id {cid!r} (also controllers:{seen_ids[cid]})")
        else:
            seen_ids[cid] = index
        address = entry.get("address")
        if address is None:
            errors.add(f"{key}:address", "missing (expected an IPv4 address)")
        else:
            ip = _ipv4(errors, f"{key}:address", address)
            if ip is not None:
                if ip in seen_addresses:
                    errors.add(
                        f"{key}:address",
                        f"duplicate address {ip} (also controllers:{seen_addresses[ip]})",
                    )
                else:
                    seen_addresses[ip] = index
                addresses.append(ip)
        priority = entry.get("priority")
        if priority is not None and not (is_whole(priority) and 1 <= priority <= 254):
            errors.add(f"{key}:priority", f"{priority!r} is invalid; valid: an integer 1-254")
    return addresses


def check_vip(
    errors: Errors, cfg: dict[str, Any], addresses: list[ipaddress.IPv4Address]
) -> ipaddress.IPv4Address | None:
    """The VIP and its segment; returns the VIP when it is an address."""
    vip = section(cfg, "vip")
    address = vip.get("address")
    ip = None
    if address is None:
        if isinstance(cfg.get("vip"), dict):
            errors.add("vip:address", "missing (expected an IPv4 address)")
    else:
        ip = _ipv4(errors, "vip:address", address)
    subnet = vip.get("subnet")
    net = _network(errors, "vip:subnet", subnet) if subnet is not None else None
    if ip is not None and ip in addresses:
        errors.add("vip:address", f"{ip} is also a controller's address; it must be unused")
    segment = net
    if net is not None:
        if ip is not None and ip not in net:
            errors.add("vip:address", f"{ip} is outside vip:subnet {net}")
        for index, addr in enumerate(addresses):
            if addr not in net:
                errors.add(f"controllers:{index}:address", f"{addr} is outside vip:subnet {net}")
    elif ip is not None and addresses and subnet is None:
        # Without an explicit subnet, the VIP must share the controllers' /24.
        nets = sorted({ipaddress.IPv4Network(f"{a}/24", strict=False) for a in addresses})
        segment = next((n for n in nets if ip in n), None)
        if segment is None:
            errors.add(
                "vip:address",
                f"{ip} is outside the controllers' subnet ({', '.join(map(str, nets))}); "
                "set vip:subnet if the segment is larger than /24",
            )
    if ip is not None and segment is not None and ip in segment and segment.prefixlen < 31:
        for kind, edge in (("network", segment.network_address), ("broadcast", segment[-1])):
            if ip == edge:
                errors.add(
                    "vip:address",
                    f"{ip} is the {kind} address of {segment}; valid: an unused address "
                    f"in {segment[1]}-{segment[-2]}",
                )
    return ip


def check_vrrp(errors: Errors, cfg: dict[str, Any]) -> None:
    ka = section(cfg, "loadbalancer:keepalived")
    version = ka.get("vrrp_version")
    advert: Any = ka.get("advert_int")
    if version == 2 and ok(positive, advert) and (advert < 1 or advert != int(advert)):
        errors.add(
            "loadbalancer:keepalived:advert_int",
            f"{advert!r} needs VRRPv3; valid with vrrp_version 2: whole seconds >= 1",
        )
    secrets: Any = cfg.get("secrets") if isinstance(cfg.get("secrets"), dict) else {}
    password = secrets.get("vrrp_auth_pass")
    if password is not None:
        if version == 3 and not isinstance(version, bool):
            errors.add(
                "secrets:vrrp_auth_pass",
                "VRRPv3 has no authentication (keepalived ignores it); "
                "valid: remove it, or set loadbalancer:keepalived:vrrp_version to 2",
            )
        if not isinstance(password, str) or not 1 <= len(password) <= 8:
            errors.add(
                "secrets:vrrp_auth_pass",
                "keepalived uses only the first 8 characters; valid: 1-8 characters",
            )
    # The rule the roles use. Explicit priorities are checked with the
    # controllers; a bad priority_base (the schema reports it) leaves the
    # explicit ones to compare.
    controllers: Any = cfg.get("controllers") if isinstance(cfg.get("controllers"), list) else []
    prios = []
    for index, prio in enumerate(priorities(cfg)):
        entry = controllers[index]
        if prio is None:
            continue
        if entry.get("priority") is None and not 1 <= prio <= 254:
            errors.add(f"controllers:{index}:priority", f"computed priority {prio}; valid: 1-254")
        elif 1 <= prio <= 254:
            prios.append((prio, entry.get("id"), index))
    seen: dict[int, Any] = {}
    for prio, cid, index in prios:
        if prio in seen:
            errors.add(
                f"controllers:{index}:priority",
                f"duplicate priority {prio} ({cid} and {seen[prio]}); each must be unique",
            )
        seen[prio] = cid
    weight = ka.get("check_weight")
    if not ok(integer(-253, 253), weight) or not weight:
        return
    ordered = sorted(prios, key=lambda p: p[0], reverse=True)
    for (high, high_id, _), (low, low_id, _) in itertools.pairwise(ordered):
        if high - low >= abs(weight):
            errors.add(
                "loadbalancer:keepalived:check_weight",
                f"weight {weight} cannot overcome the priority gap {high - low} between "
                f"{high_id} ({high}) and {low_id} ({low}); valid: |weight| > {high - low}, "
                "or weight 0 (FAULT on a failed check)",
            )


def check_kubernetes(
    errors: Errors,
    cfg: dict[str, Any],
    table: dict[str, Any] | None,
    addresses: list[ipaddress.IPv4Address],
    vip: ipaddress.IPv4Address | None,
) -> ipaddress.IPv4Network | None:
    k8s = section(cfg, "kubernetes")
    version = k8s.get("version")
    supported = (table or {}).get("supported") or {}
    low, high = supported.get("min", "?"), supported.get("max", "?")
    parsed = parse_version(version) if isinstance(version, str) else None
    if version is None:
        if isinstance(cfg.get("kubernetes"), dict):
            errors.add("kubernetes:version", f"missing; valid: {low}.x - {high}.x, e.g. 1.18.6")
    elif parsed is None:
        errors.add(
            "kubernetes:version",
            f"{version!r} is not X.Y.Z (numbers without leading zeros); valid: {low}.x - {high}.x",
        )
    elif table and not (parse_minor(low) or (0, 0)) <= parsed[:2] <= (parse_minor(high) or (0, 0)):
        errors.add("kubernetes:version", f"{version} is unsupported; valid: {low}.x - {high}.x")
    nets = {}
    for key in ("service_cidr", "cluster_cidr"):
        value = k8s.get(key)
        if value is None:
            if isinstance(cfg.get("kubernetes"), dict):
                errors.add(f"kubernetes:{key}", "missing (expected a CIDR)")
        else:
            nets[key] = _network(errors, f"kubernetes:{key}", value)
    service, pods = nets.get("service_cidr"), nets.get("cluster_cidr")
    if service and pods and service.overlaps(pods):
        errors.add("kubernetes:service_cidr", "overlaps kubernetes:cluster_cidr")
    for key, net in nets.items():
        for index, addr in enumerate(addresses):
            if net and addr in net:
                errors.add(f"kubernetes:{key}", f"{net} contains controllers:{index} ({addr})")
        if net and vip is not None and vip in net:
            errors.add(f"kubernetes:{key}", f"{net} contains vip:address ({vip})")
    if isinstance(cfg.get("kubernetes"), dict):
        ports = k8s.get("node_port_range")
        match = re.match(r"^(\d+)-(\d+)$", ports) if isinstance(ports, str) else None
        if not match or not 1 <= int(match[1]) < int(match[2]) <= 65535:
            errors.add("kubernetes:node_port_range", f"{ports!r}; valid: LOW-HIGH within 1-65535")
    return service


def check_etcd(errors: Errors, cfg: dict[str, Any]) -> None:
    etcd = section(cfg, "etcd")
    managed = etcd.get("managed") is True
    pki_dir = section(cfg, "controlplane").get("pki_dir")
    if managed and etcd.get("config_dir") and etcd.get("config_dir") == pki_dir:
        errors.add(
            "etcd:config_dir",
            f"{pki_dir!r} is controlplane:pki_dir too; valid: a directory of its own "
            "(etcd's certificates are restarted apart from the control plane's), e.g. /etc/etcd",
        )
    servers = etcd.get("servers")
    if servers is not None and not isinstance(servers, list):
        errors.add("etcd:servers", f"expected a list of URLs, got {type_name(servers)}")
        servers = []
    for index, url in enumerate(servers or []):
        if not isinstance(url, str) or not re.match(r"^https://[^\s/]+:\d+$", url):
            errors.add(f"etcd:servers:{index}", f"{url!r}; valid: https://HOST:PORT")
    listed = cfg.get("controllers")
    entries = listed if isinstance(listed, list) else []
    addresses = [c.get("address") for c in entries if isinstance(c, dict)]
    if managed and servers and all(isinstance(a, str) for a in addresses):
        port = etcd.get("client_port", 2379)
        members = [f"https://{address}:{port}" for address in addresses]
        if sorted(map(str, servers)) != sorted(members):
            errors.add(
                "etcd:servers",
                f"{', '.join(map(str, servers))} differs from the controllers' etcd members; "
                "with etcd:managed true the apiservers' etcd servers follow controllers; "
                f"valid: unset, or exactly {', '.join(members)}",
            )
    version, url = etcd.get("version"), etcd.get("release_url")
    required = "required when etcd:managed is true: " if managed else "valid: null, or "
    if (managed or version is not None) and not (
        isinstance(version, str) and parse_version(version)
    ):
        shown = "missing" if version is None else repr(version)
        errors.add("etcd:version", f"{shown}; {required}X.Y.Z as a string, e.g. '3.4.23'")
    if (managed or url is not None) and not ok(url_rule, url):
        shown = "missing" if url is None else repr(url)
        errors.add("etcd:release_url", f"{shown}; {required}an http(s) URL")


# The kubelet's port: not the formula's to set, but a controller may run one.
_KUBELET_PORT = 10250


def check_ports(errors: Errors, cfg: dict[str, Any]) -> None:
    """Every port a controller binds differs: the control plane, etcd, the kubelet, haproxy."""
    cp, etcd = section(cfg, "controlplane"), section(cfg, "etcd")
    haproxy = section(cfg, "loadbalancer:haproxy")
    # the kubelet's port first: it cannot move, so a port that collides with it is the one named
    bound = [
        (None, _KUBELET_PORT),
        ("controlplane:apiserver_port", cp.get("apiserver_port")),
        ("controlplane:controller_manager_port", cp.get("controller_manager_port")),
        ("controlplane:scheduler_port", cp.get("scheduler_port")),
        ("etcd:client_port", etcd.get("client_port")),
        ("etcd:peer_port", etcd.get("peer_port")),
        ("loadbalancer:haproxy:http_port", haproxy.get("http_port")),
        ("loadbalancer:haproxy:tls_port", haproxy.get("tls_port")),
    ]
    taken = {port for _, port in bound if ok(port_rule, port)}
    used: dict[Any, str] = {}
    for key, port in bound:
        if not ok(port_rule, port):
            continue  # the schema reports it
        if port in used:
            free = next(p for p in range(8443, 65536) if p not in taken)
            errors.add(
                str(key),  # never None: the kubelet's port comes first
                f"{port} collides with {used[port]} (each port a controller binds must "
                f"differ: the control plane and etcd bind 0.0.0.0, haproxy the VIP and "
                f"127.0.0.1); valid: a free port, e.g. {free}",
            )
        else:
            used[port] = key or f"the kubelet's port {_KUBELET_PORT}"


def check_settings(errors: Errors, cfg: dict[str, Any], ids: list[Any]) -> None:
    """The component settings whose rules span more than one value."""
    cp = section(cfg, "controlplane")
    extra = cp.get("extra_args")
    if isinstance(cfg.get("controlplane"), dict) and not isinstance(extra, dict):
        errors.add("controlplane:extra_args", f"expected a mapping, got {type_name(extra)}")
    for component, flags in (extra if isinstance(extra, dict) else {}).items():
        key = f"controlplane:extra_args:{component}"
        if component not in COMPONENT_BINARIES:
            unknown_key(errors, key, component, list(COMPONENT_BINARIES))
        elif not isinstance(flags, dict):
            errors.add(key, "expected a mapping of flag -> value (null removes the flag)")
        else:
            for flag, value in flags.items():
                if not isinstance(flag, str) or not re.match(r"^-{0,2}[A-Za-z0-9][\w.-]*$", flag):
                    errors.add(f"{key}:{flag}", "not a flag name; valid: e.g. v or --v")
                elif value is not None and (
                    not isinstance(value, str | int | float | bool) or re.search(r"\s", str(value))
                ):
                    errors.add(f"{key}:{flag}", f"{value!r}; valid: one word, or null")
    binaries: Any = cp.get("binaries")
    if isinstance(cfg.get("controlplane"), dict):
        if name_list(binaries):
            # name_list's message: not None here
            errors.add("controlplane:binaries", name_list(binaries))  # type: ignore[arg-type]
        else:
            missing = [b for b in COMPONENT_BINARIES if b not in binaries]
            if missing:
                errors.add("controlplane:binaries", f"must include {', '.join(missing)}")
    apply_from = section(cfg, "rbac").get("apply_from")
    if apply_from is not None and apply_from not in ids:
        listed = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        errors.add("rbac:apply_from", f"{apply_from!r}; valid: null or one of {listed}")


def check_rbac_rules(errors: Errors, cfg: dict[str, Any]) -> None:
    """
    What each ClusterRole rule needs, as the apiserver's validation of a
    PolicyRule says (the schema checked the keys and types): verbs; then either
    non-resource URLs alone, or API groups and resources.
    """
    rules = lookup(cfg, "rbac:cluster_role:rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict) or any(
            key in rule and not ok(check, rule[key]) for key, check in POLICY_RULE.items()
        ):
            continue  # the schema reported it
        where = f"rbac:cluster_role:rules:{index}"
        if not rule.get("verbs"):
            errors.add(
                f"{where}:verbs", "missing or empty; valid: a list of verbs, e.g. get, list or *"
            )
        if rule.get("nonResourceURLs"):
            mixed = [k for k in ("apiGroups", "resources", "resourceNames") if rule.get(k)]
            if mixed:
                errors.add(
                    f"{where}:nonResourceURLs",
                    f"a rule grants non-resource URLs or resources, not both (it also has "
                    f"{', '.join(mixed)}); valid: one rule for each",
                )
            continue
        for key, example in (("apiGroups", '"" (the core group)'), ("resources", "nodes/proxy")):
            if not rule.get(key):
                errors.add(
                    f"{where}:{key}",
                    f"missing or empty; valid: a non-empty list, e.g. {example}, "
                    "or nonResourceURLs instead",
                )


def check_extra_args_versions(
    errors: Errors, cfg: dict[str, Any], table: dict[str, Any] | None
) -> None:
    """
    extra_args against the version: a flag the table records as removed at
    or before the cluster's minor, and structured authorization, which the
    apiserver refuses next to --authorization-mode (the formula writes
    Node,RBAC) or --authorization-webhook-* and which needs 1.29.
    """
    extra = section(cfg, "controlplane").get("extra_args")
    minor = parse_version(section(cfg, "kubernetes").get("version"))
    if not isinstance(extra, dict) or minor is None:
        return
    version = ".".join(map(str, minor))
    for component, flags in extra.items():
        if not isinstance(flags, dict):
            continue
        key = f"controlplane:extra_args:{component}"
        written = {e.get("flag"): e for e in ((table or {}).get("flags") or {}).get(component, [])}
        for flag, value in flags.items():
            entry = written.get(str(flag).lstrip("-")) or {}
            removed = entry.get("removed")
            if value is not None and removed and minor[:2] >= minor_of(removed, "removed"):
                errors.add(
                    f"{key}:{flag}",
                    f"removed in Kubernetes {removed}; this cluster runs {version}; "
                    "valid: remove it",
                )
        auth = flags.get("authorization-config", flags.get("--authorization-config"))
        if component != "kube-apiserver" or auth is None:
            continue
        akey = f"{key}:authorization-config"
        mode = flags.get("authorization-mode", flags.get("--authorization-mode", "Node,RBAC"))
        webhooks = [f for f, v in flags.items() if "authorization-webhook" in str(f) and v]
        if mode is not None or webhooks:
            errors.add(
                akey,
                "cannot be combined with --authorization-mode (the formula writes Node,RBAC) "
                "or --authorization-webhook-*; valid: also set authorization-mode: null and "
                "remove any authorization-webhook-* flags, or remove authorization-config",
            )
        if minor[:2] < (1, 29):
            errors.add(
                akey,
                f"needs Kubernetes 1.29 or later (1.29 also needs feature-gates "
                f"StructuredAuthorizationConfiguration=true); this cluster runs {version}",
            )


def check_tofs(errors: Errors, cfg: dict[str, Any]) -> None:
    tofs = cfg.get("tofs")
    if tofs is None:
        return
    if not isinstance(tofs, dict):
        errors.add("tofs", f"expected a mapping with source_files, files_switch, got {kind(tofs)}")
        return
    for key in tofs:
        if key not in ("source_files", "files_switch"):
            unknown_key(errors, f"tofs:{key}", key, ["source_files", "files_switch"])
    sources = tofs.get("source_files")
    if sources is not None and not isinstance(sources, dict):
        errors.add(
            "tofs:source_files", "expected a mapping of template name -> list of salt:// URLs"
        )
    for name, urls in (sources if isinstance(sources, dict) else {}).items():
        if not isinstance(urls, list):
            errors.add(f"tofs:source_files:{name}", f"{urls!r}; valid: a list of salt:// URLs")
            continue
        for index, url in enumerate(urls):
            if not isinstance(url, str) or not re.match(r"^salt://[^\s]+$", url):
                errors.add(f"tofs:source_files:{name}:{index}", f"{url!r}; valid: a salt:// URL")
    switch = tofs.get("files_switch")
    if switch is not None and (
        not isinstance(switch, list)
        or not all(isinstance(g, str) and re.match(r"^[A-Za-z0-9_.:-]+$", g) for g in switch)
    ):
        errors.add(
            "tofs:files_switch", f"{switch!r}; valid: a list of grain names, e.g. [id, os_family]"
        )


def check_secrets(
    errors: Errors,
    cfg: dict[str, Any],
    addresses: list[ipaddress.IPv4Address],
    vip: ipaddress.IPv4Address | None,
    service: ipaddress.IPv4Network | None,
) -> None:
    secrets = cfg.get("secrets")
    if secrets is None:
        secrets = {}
    if not isinstance(secrets, dict):
        # never echo a secret
        errors.add("secrets", f"expected a mapping, got {type_name(secrets)}")
        return
    for name in secrets:
        if name not in SECRET_KEYS:
            unknown_key(errors, f"secrets:{name}", name, list(SECRET_KEYS))
    source = pki_source(cfg)
    if source is None:
        return  # the schema names pki:source; the secrets depend on it
    pki: Any = cfg.get("pki") if isinstance(cfg.get("pki"), dict) else {}
    by_salt = source == "salt"
    files = SECRET_FILES
    if by_salt:
        # The master's ext_pillar k8s_pki gives the CA, the service-account
        # signing key (one per cluster) and the encryption key; the controllers
        # make the rest.
        files = ("ca.pem", "ca-key.pem", "service-account-key.pem")
        for name in SECRET_FILES:
            if name not in files and secrets.get(name):
                errors.add(
                    f"secrets:{name}",
                    "is made by Salt with pki:source salt (the default); valid: remove it, "
                    "or set pki:source: pillar to supply every certificate yourself",
                )
        _check_days(errors, pki)
    missing = [name for name in files if not secrets.get(name)]
    sa_missing = by_salt and "service-account-key.pem" in missing
    if sa_missing:
        missing.remove("service-account-key.pem")
    if missing:
        hint = "see docs/pki.md, 'Secrets'"
        etcd: Any = cfg.get("etcd") if isinstance(cfg.get("etcd"), dict) else {}
        if by_salt and etcd.get("managed") is not True:
            hint = (
                "with etcd:managed false the master makes no CA: the external etcd trusts "
                "its own, so give that CA here; valid: secrets:ca.pem and secrets:ca-key.pem, "
                "etcd:managed: true, or pki:source: pillar; see docs/pki.md"
            )
        elif by_salt:
            hint = (
                "with pki:source salt the master's ext_pillar k8s_pki gives them: is it "
                "configured on the master? see docs/pki.md"
            )
        errors.add("secrets", f"missing {', '.join(missing)} ({hint})")
    if sa_missing:
        errors.add(
            "secrets:service-account-key.pem",
            "missing (the master's ext_pillar k8s_pki gives it: one signing key per cluster)",
        )
    texts = {}
    for name in files:
        value = secrets.get(name)
        if not value:
            continue
        if not isinstance(value, str):
            errors.add(f"secrets:{name}", f"expected the file's text, got {type_name(value)}")
        elif name.endswith(".pem") and "-----BEGIN " not in value:
            errors.add(f"secrets:{name}", "is not PEM (no '-----BEGIN' line)")
        else:
            texts[name] = value
    if secrets.get("encryption_keys") is None and not encryption_keys(secrets):
        origin = (
            "the master's ext_pillar k8s_pki gives it" if by_salt else "base64 of 32 random bytes"
        )
        errors.add("secrets:encryption_key", f"missing ({origin})")
    for where, message in encryption_key_errors(secrets):
        errors.add(where, message)
    backup = secrets.get("backup_key")
    if backup is not None and _b64_size(backup) != 32:
        errors.add(
            "secrets:backup_key",
            "valid: base64 of 32 bytes (AES-256-GCM; the master's ext_pillar k8s_pki makes one)",
        )
    check_pki(errors, texts, addresses, vip, service)


def _b64_size(value: Any) -> int | None:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return None


def _check_days(errors, pki):
    days, renew = pki.get("days_valid"), pki.get("renew_before_days")
    if ok(integer(1, 3650), days) and ok(integer(1, 3649), renew) and renew >= days:
        errors.add(
            "pki:renew_before_days",
            f"{renew} is not below pki:days_valid ({days}): every run would re-issue; "
            f"valid: 1-{days - 1}",
        )
