"""
The pure rules of the k8s_control_plane formula, each in one place: the
parameter layers and their merge, the PKI files and their modes, version
parsing, VRRP priorities and keepalived roles, the components' flags and API
versions from the version table, the TOFS source list, the validation of a
merged configuration and the controller's preflight.

Why a synced custom utils module (``_utils/``) and not helpers inside the
execution modules:

- Salt's custom execution modules cannot import each other: the loader
  imports each one under its own generated name, so ``keepalived_role``
  cannot ``import k8s_cluster``, and reaching a pure helper through
  ``__salt__`` would put it on the CLI (``salt '*' k8s_cluster.priorities``).
  Before this module, the VRRP priority rule existed three times.
- ``__utils__`` is how Salt shares code between custom modules: the master
  syncs ``_utils/`` with ``saltutil.sync_all`` (or ``sync_utils``) like
  ``_modules/`` and ``_states/``, and the loader hands every execution and
  state module a ``__utils__`` mapping; they call
  ``__utils__["k8s_control_plane.<function>"](...)``. Utils functions are
  not execution functions, so none of them appears on the CLI, and names
  starting with ``_`` are not packed at all.
- The file imports nothing from Salt's loader and uses no dunder, so the unit
  tests import it as plain Python (tests/support/cluster.py).

A masterless minion or a test harness must list the directory in
``utils_dirs`` (module_dirs and states_dirs do not cover it).
"""

import base64
import binascii
import copy
import ipaddress
import itertools
import re

import salt.utils.dictupdate
from salt.exceptions import CommandExecutionError

PILLAR_KEY = "k8s_control_plane"
COMPONENTS = ("cluster", "loadbalancer", "etcd", "controlplane", "rbac")
PROFILES = ("tuned", "seed")
COMPONENT_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The files the control plane takes from k8s_control_plane:secrets, in the
# order they are placed, with their modes: certificates are public (0644),
# keys and kubeconfigs (client credentials) are root-only.
_PKI_FILES = (
    ("ca.pem", "0644"),
    ("ca-key.pem", "0600"),
    ("kubernetes.pem", "0644"),
    ("kubernetes-key.pem", "0600"),
    ("service-account.pem", "0644"),
    ("service-account-key.pem", "0600"),
    ("admin.kubeconfig", "0600"),
    ("kube-controller-manager.kubeconfig", "0600"),
    ("kube-scheduler.kubeconfig", "0600"),
)
SECRET_FILES = tuple(name for name, _ in _PKI_FILES)
SECRET_KEYS = (*SECRET_FILES, "encryption_key", "vrrp_auth_pass")
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_MINOR_RE = re.compile(r"^v?(\d+)\.(\d+)(\.\d+)?$")
_DURATION_RE = re.compile(r"^\d+(us|ms|s|m|h|d)?$")


# --------------------------------------------------------------------------
# Parameter layers
# --------------------------------------------------------------------------


def layer_files(root, layer, value=None):
    """
    The per-component parameter files of one layer, as salt:// paths without
    the scheme: ``layer`` is ``defaults``, ``os_family`` (value: the family)
    or ``profile`` (value: the profile name; none for an unknown profile,
    which the validation reports).
    """
    if layer == "profile" and value not in PROFILES:
        return []
    name = {
        "defaults": "defaults.yaml",
        "os_family": f"os_family/{value}.yaml",
        "profile": f"profile/{value}.yaml",
    }[layer]
    return [f"{root}/{component}/parameters/{name}" for component in COMPONENTS]


def _layer(result, doc, source):
    if doc is None:
        return result
    if not isinstance(doc, dict) or not isinstance(doc.get(PILLAR_KEY, {}), dict):
        raise CommandExecutionError(f"{source}: expected a mapping under '{PILLAR_KEY}'")
    layer = copy.deepcopy(doc.get(PILLAR_KEY) or {})
    return salt.utils.dictupdate.update(result, layer, merge_lists=False)


def merge_layers(defaults, os_layers, profile_layers, pillar):
    """
    Merge parameter layers, lowest first: defaults, OS family, profile, then
    the pillar. Each layer is a list of ``(source, doc)`` pairs, ``doc``
    holding a ``k8s_control_plane`` mapping (None: the file is absent). Lists
    are replaced, never concatenated; the inputs are not changed.
    """
    result = {}
    for source, doc in [*defaults, *os_layers, *profile_layers]:
        result = _layer(result, doc, source)
    return salt.utils.dictupdate.update(result, copy.deepcopy(pillar or {}), merge_lists=False)


def profile_of(pillar, defaults):
    """The profile the pillar asks for, else the one the defaults layer sets."""
    profile = (pillar or {}).get("profile")
    if profile is None:
        for _, doc in defaults:
            profile = ((doc or {}).get(PILLAR_KEY) or {}).get("profile", profile)
    return profile


# --------------------------------------------------------------------------
# Derived facts
# --------------------------------------------------------------------------


def pki_files():
    """The files placed from k8s_control_plane:secrets: [{"name", "mode"}]."""
    return [{"name": name, "mode": mode} for name, mode in _PKI_FILES]


def controller_ids(cfg):
    """The ids of the controller list, tolerating any shape (invalid entries skipped)."""
    controllers = cfg.get("controllers") if isinstance(cfg, dict) else None
    return [
        c.get("id")
        for c in (controllers if isinstance(controllers, list) else [])
        if isinstance(c, dict)
    ]


def apply_from(cfg):
    """
    The controller that applies the cluster-wide objects (RBAC): rbac:apply_from,
    default the first controller; None when there is none. Reads a pillar or a
    merged configuration, of any shape.
    """
    rbac = cfg.get("rbac") if isinstance(cfg, dict) else None
    chosen = rbac.get("apply_from") if isinstance(rbac, dict) else None
    ids = controller_ids(cfg)
    return chosen or (ids[0] if ids else None)


def parse_version(version):
    """(major, minor, patch) of '1.18.6' or 'v1.18.6'; None when malformed."""
    match = _VERSION_RE.match(str(version or ""))
    return tuple(int(part) for part in match.groups()) if match else None


def parse_minor(version):
    """(major, minor) of '1.19', 'v1.19' or '1.19.4'; None when malformed."""
    match = _MINOR_RE.match(str(version or ""))
    return (int(match[1]), int(match[2])) if match else None


def _minor(version, what="version"):
    minor = parse_minor(version)
    if minor is None:
        raise CommandExecutionError(f"{what} {version!r} is not X.Y or X.Y.Z")
    return minor


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def priorities(cfg):
    """
    The one VRRP priority rule: per controller, in list order, its explicit
    ``priority``, else loadbalancer:keepalived:priority_base minus its index.
    Tolerant: None for an entry whose priority cannot be known (not a mapping,
    a priority that is not an integer, or no integer base to compute from);
    the validation reports those.
    """
    controllers = cfg.get("controllers") if isinstance(cfg, dict) else None
    controllers = controllers if isinstance(controllers, list) else []
    keepalived = ((cfg.get("loadbalancer") or {}) if isinstance(cfg, dict) else {}).get(
        "keepalived"
    )
    base = keepalived.get("priority_base") if isinstance(keepalived, dict) else None
    result = []
    for index, entry in enumerate(controllers):
        explicit = entry.get("priority") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            result.append(None)
        elif explicit is not None:
            result.append(explicit if _whole(explicit) else None)
        else:
            result.append(base - index if _whole(base) else None)
    return result


def _interface_for(address, ip4_interfaces):
    for name, addresses in sorted((ip4_interfaces or {}).items()):
        if address in (addresses or []):
            return name
    return None


def keepalived_role(cfg, minion_id, ip4_interfaces=None):
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


def tofs_sources(root, component, name, tofs=None, grains=None):
    """
    The salt:// sources of a template, first found wins (template-formula's
    TOFS): ``tofs:source_files:<name>`` (a list), then per grain of
    ``tofs:files_switch`` (default id, os_family)
    ``salt://<root>/<component>/files/<grain value>/<name>``, then
    ``salt://<root>/<component>/files/default/<name>``.
    """
    tofs = tofs if isinstance(tofs, dict) else {}
    grains = grains or {}
    sources = list((tofs.get("source_files") or {}).get(name) or [])
    switch = tofs.get("files_switch")
    for grain in ["id", "os_family"] if switch is None else switch:
        value = grains
        for part in str(grain).split(":"):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            sources.append(f"salt://{root}/{component}/files/{value}/{name}")
    sources.append(f"salt://{root}/{component}/files/default/{name}")
    return sources


# --------------------------------------------------------------------------
# Flags and API versions from the version table
# --------------------------------------------------------------------------


def _applies(entry, minor):
    since, until = entry.get("since"), entry.get("until")
    return (since is None or _minor(since, "since") <= minor) and (
        until is None or minor < _minor(until, "until")
    )


def _pick(rows, minor, what):
    chosen = None
    for row in rows:
        if _minor(row["since"], "since") <= minor:
            chosen = row["api"]
    if chosen is None:
        raise CommandExecutionError(f"no {what} for Kubernetes {minor[0]}.{minor[1]}")
    return chosen


def flag_context(cfg, address):
    """The values the flag table's format strings can use, for a controller at ``address``."""
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
    The ordered ``--flag=value`` list of ``component`` at ``version``.
    ``extra_args`` ({flag: value}) replaces a flag's value in place, appends
    new flags, and removes a flag whose value is None.
    """
    if component not in table["flags"]:
        raise CommandExecutionError(
            f"unknown component {component!r}; valid: {', '.join(COMPONENT_BINARIES)}"
        )
    minor = _minor(version, "Kubernetes version")
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
    """{'scheduler_config': ..., 'rbac': ...}: the API versions ``version`` serves."""
    minor = _minor(version, "Kubernetes version")
    return {
        "scheduler_config": _pick(table["scheduler_config_api"], minor, "scheduler config API"),
        "rbac": _pick(table["rbac_api"], minor, "RBAC API"),
    }


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


class _Errors(list):
    def add(self, key, message):
        self.append(f"{PILLAR_KEY}:{key}: {message}")


def _typed(errors, cfg, path, kind, required=False):
    """Fetch cfg at 'a:b:c'; record an error if missing/wrong type; return value or None."""
    node = cfg
    for part in path.split(":"):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        if required:
            errors.add(path, f"missing (expected {kind.__name__ if kind else 'a value'})")
        return None
    kinds = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}.get(kind, (kind,))
    if kind in (int, float) and isinstance(node, bool):
        kinds = ()
    if not isinstance(node, kinds):
        errors.add(path, f"expected {kind.__name__}, got {type(node).__name__} {node!r}")
        return None
    return node


def _ipv4(errors, key, value):
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        errors.add(key, f"{value!r} is not an IPv4 address")
        return None


def _network(errors, key, value):
    try:
        return ipaddress.IPv4Network(str(value), strict=True)
    except ValueError as exc:
        errors.add(key, f"{value!r} is not an IPv4 network in CIDR form ({exc})")
        return None


def _check_controllers(errors, cfg):
    controllers = cfg.get("controllers")
    if not isinstance(controllers, list) or not controllers:
        errors.add("controllers", "missing or empty (expected a list of {id, address})")
        return []
    seen_ids, seen_addresses, addresses = {}, {}, []
    for index, entry in enumerate(controllers):
        key = f"controllers:{index}"
        if not isinstance(entry, dict):
            errors.add(key, f"expected a mapping with id and address, got {entry!r}")
            continue
        unknown = sorted(set(entry) - {"id", "address", "priority"})
        if unknown:
            errors.add(key, f"unknown keys {unknown}; valid: id, address, priority")
        cid = entry.get("id")
        if not isinstance(cid, str) or not cid:
            errors.add(f"{key}:id", "missing (expected the controller's minion id)")
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
                seen_addresses[ip] = index
                addresses.append(ip)
        priority = entry.get("priority")
        if priority is not None and (
            isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 254
        ):
            errors.add(f"{key}:priority", f"{priority!r} is invalid; valid: an integer 1-254")
    return addresses


def _check_vrrp(errors, cfg):
    lb = cfg.get("loadbalancer") or {}
    ka = lb.get("keepalived") or {}
    version = ka.get("vrrp_version")
    if version not in (2, 3):
        errors.add("loadbalancer:keepalived:vrrp_version", f"{version!r} is invalid; valid: 2, 3")
    advert = ka.get("advert_int")
    if isinstance(advert, bool) or not isinstance(advert, int | float) or advert <= 0:
        errors.add("loadbalancer:keepalived:advert_int", f"{advert!r}; valid: a number > 0")
    elif version == 2 and (advert < 1 or advert != int(advert)):
        errors.add(
            "loadbalancer:keepalived:advert_int",
            f"{advert!r} needs VRRPv3; valid with vrrp_version 2: whole seconds >= 1",
        )
    password = (cfg.get("secrets") or {}).get("vrrp_auth_pass")
    if password is not None:
        if version == 3:
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
    weight = ka.get("check_weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or not -253 <= weight <= 253:
        errors.add("loadbalancer:keepalived:check_weight", f"{weight!r}; valid: -253..253")
        weight = None
    vrid = (cfg.get("vip") or {}).get("virtual_router_id")
    if isinstance(vrid, bool) or not isinstance(vrid, int) or not 1 <= vrid <= 255:
        errors.add("vip:virtual_router_id", f"{vrid!r} is invalid; valid: an integer 1-255")
    base = ka.get("priority_base")
    if isinstance(base, bool) or not isinstance(base, int) or not 1 <= base <= 254:
        errors.add("loadbalancer:keepalived:priority_base", f"{base!r}; valid: 1-254")
        return
    # The rule the roles use; entries it cannot price are reported by _check_controllers.
    ids = [c.get("id") if isinstance(c, dict) else None for c in cfg.get("controllers") or []]
    prios = [(p, ids[i], i) for i, p in enumerate(priorities(cfg)) if p is not None]
    seen = {}
    for prio, cid, index in prios:
        if not 1 <= prio <= 254:
            errors.add(f"controllers:{index}:priority", f"computed priority {prio}; valid: 1-254")
        if prio in seen:
            errors.add(
                f"controllers:{index}:priority",
                f"duplicate priority {prio} ({cid} and {seen[prio]}); each must be unique",
            )
        seen[prio] = cid
    ordered = sorted(prios, key=lambda p: p[0], reverse=True)
    if weight:
        for (high, high_id, _), (low, low_id, _) in itertools.pairwise(ordered):
            if high - low >= abs(weight):
                errors.add(
                    "loadbalancer:keepalived:check_weight",
                    f"weight {weight} cannot overcome the priority gap {high - low} between "
                    f"{high_id} ({high}) and {low_id} ({low}); valid: |weight| > {high - low}, "
                    "or weight 0 (FAULT on a failed check)",
                )


def _check_vip(errors, cfg, addresses):
    vip = cfg.get("vip")
    if not isinstance(vip, dict):
        errors.add("vip", "missing (expected a mapping with address, virtual_router_id)")
        return
    address = vip.get("address")
    if address is None:
        errors.add("vip:address", "missing (expected an IPv4 address)")
        return
    ip = _ipv4(errors, "vip:address", address)
    if ip is None:
        return
    if ip in addresses:
        errors.add("vip:address", f"{ip} is also a controller's address; it must be unused")
    interface = vip.get("interface")
    if interface is not None and not (isinstance(interface, str) and _IFACE_RE.match(interface)):
        errors.add("vip:interface", f"{interface!r}; valid: an interface name, or null")
    subnet = vip.get("subnet")
    if subnet is not None:
        net = _network(errors, "vip:subnet", subnet)
        if net is not None:
            if ip not in net:
                errors.add("vip:address", f"{ip} is outside vip:subnet {net}")
            for index, addr in enumerate(addresses):
                if addr not in net:
                    errors.add(
                        f"controllers:{index}:address", f"{addr} is outside vip:subnet {net}"
                    )
    elif addresses:
        # Without an explicit subnet, the VIP must share the controllers' /24.
        nets = {ipaddress.IPv4Network(f"{a}/24", strict=False) for a in addresses}
        if not any(ip in n for n in nets):
            errors.add(
                "vip:address",
                f"{ip} is outside the controllers' subnet ({', '.join(map(str, sorted(nets)))}); "
                "set vip:subnet if the segment is larger than /24",
            )


def _check_kubernetes(errors, cfg, table, addresses):
    k8s = cfg.get("kubernetes") or {}
    version = k8s.get("version")
    supported = (table or {}).get("supported") or {}
    low, high = supported.get("min", "?"), supported.get("max", "?")
    parsed = parse_version(version)
    if version is None:
        errors.add("kubernetes:version", f"missing; valid: {low}.x - {high}.x, e.g. 1.18.6")
    elif parsed is None:
        errors.add("kubernetes:version", f"{version!r} is not X.Y.Z; valid: {low}.x - {high}.x")
    elif table and not (parse_minor(low) or (0, 0)) <= parsed[:2] <= (parse_minor(high) or (0, 0)):
        errors.add("kubernetes:version", f"{version} is unsupported; valid: {low}.x - {high}.x")
    nets = {}
    for key in ("service_cidr", "cluster_cidr"):
        value = k8s.get(key)
        if value is None:
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
    ports = str(k8s.get("node_port_range", ""))
    match = re.match(r"^(\d+)-(\d+)$", ports)
    if not match or not 1 <= int(match[1]) < int(match[2]) <= 65535:
        errors.add("kubernetes:node_port_range", f"{ports!r}; valid: LOW-HIGH within 1-65535")
    url = k8s.get("release_url")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
        errors.add("kubernetes:release_url", f"{url!r}; valid: an http(s) URL")


def _check_etcd(errors, cfg):
    etcd = cfg.get("etcd") or {}
    managed = etcd.get("managed")
    if not isinstance(managed, bool):
        errors.add("etcd:managed", f"{managed!r}; valid: true, false")
    servers = etcd.get("servers")
    if servers is not None and not isinstance(servers, list):
        errors.add("etcd:servers", f"expected a list of URLs, got {type(servers).__name__}")
        servers = []
    for index, url in enumerate(servers or []):
        if not isinstance(url, str) or not re.match(r"^https://[^\s/]+:\d+$", url):
            errors.add(f"etcd:servers:{index}", f"{url!r}; valid: https://HOST:PORT")
    if managed is True:
        if not isinstance(etcd.get("version"), str) or parse_version(etcd["version"]) is None:
            errors.add("etcd:version", f"{etcd.get('version')!r}; required when etcd:managed is "
                       "true: X.Y.Z as a string, e.g. '3.4.23'")  # fmt: skip
        url = etcd.get("release_url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            errors.add("etcd:release_url", f"{url!r}; required when etcd:managed is true: "
                       "an http(s) URL")  # fmt: skip


def _check_loadbalancer_ports(errors, cfg):
    haproxy = (cfg.get("loadbalancer") or {}).get("haproxy") or {}
    ports = [
        ("controlplane:apiserver_port", (cfg.get("controlplane") or {}).get("apiserver_port")),
        ("loadbalancer:haproxy:http_port", haproxy.get("http_port")),
        ("loadbalancer:haproxy:tls_port", haproxy.get("tls_port")),
    ]
    used = {}
    for key, port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            errors.add(key, f"{port!r}; valid: 1-65535")
        elif port in used:
            free = next(p for p in range(8443, 65536) if p not in used)
            errors.add(
                key,
                f"{port} collides with {used[port]} (the apiservers bind 0.0.0.0, haproxy "
                f"binds the VIP and 127.0.0.1); valid: a free port, e.g. {free}",
            )
        else:
            used[port] = key
    check = haproxy.get("check")
    if check not in ("readyz", "tls"):
        errors.add("loadbalancer:haproxy:check", f"{check!r}; valid: readyz, tls")
    for key in ("inter", "timeout_connect", "timeout_client", "timeout_server"):
        value = haproxy.get(key)
        if not _DURATION_RE.match(str(value)):
            errors.add(f"loadbalancer:haproxy:{key}", f"{value!r}; valid: a duration like 2s")


def _positive(errors, key, value, allow_none=False, integer=False):
    kinds = int if integer else (int, float)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        what = "an integer" if integer else "a number"
        errors.add(key, f"{value!r}; valid: {what} > 0" + (", or null" if allow_none else ""))


def _string_list(errors, key, value):
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors.add(key, f"{value!r}; valid: a list of names")
        return []
    return value


def _check_settings(errors, cfg, ids):
    """The component settings that defaults fill: still the operator's to break."""
    cp = cfg.get("controlplane") or {}
    extra = cp.get("extra_args")
    if not isinstance(extra, dict):
        errors.add("controlplane:extra_args", f"expected a mapping, got {type(extra).__name__}")
    else:
        for component, flags in extra.items():
            key = f"controlplane:extra_args:{component}"
            if component not in COMPONENT_BINARIES:
                errors.add(key, f"unknown component; valid: {', '.join(COMPONENT_BINARIES)}")
            elif not isinstance(flags, dict):
                errors.add(key, "expected a mapping of flag -> value (null removes the flag)")
            else:
                for flag, value in flags.items():
                    if value is not None and (
                        not isinstance(value, str | int | float | bool)
                        or re.search(r"\s", str(value))
                    ):
                        errors.add(f"{key}:{flag}", f"{value!r}; valid: one word, or null")
    binaries = _string_list(errors, "controlplane:binaries", cp.get("binaries"))
    missing = [b for b in COMPONENT_BINARIES if binaries and b not in binaries]
    if missing:
        errors.add("controlplane:binaries", f"must include {', '.join(missing)}")
    _positive(errors, "controlplane:ready_timeout", cp.get("ready_timeout"))
    rbac = cfg.get("rbac") or {}
    _positive(errors, "rbac:ready_timeout", rbac.get("ready_timeout"))
    apply_from = rbac.get("apply_from")
    if apply_from is not None and apply_from not in ids:
        errors.add("rbac:apply_from", f"{apply_from!r}; valid: null or one of {ids}")
    role, binding = rbac.get("cluster_role"), rbac.get("cluster_role_binding")
    if not isinstance(role, dict) or not isinstance(role.get("name"), str):
        errors.add("rbac:cluster_role", "expected a mapping with name and rules")
    elif not isinstance(role.get("rules"), list) or not role["rules"]:
        errors.add("rbac:cluster_role:rules", "expected a non-empty list of rules")
    if not isinstance(binding, dict) or not all(
        isinstance(binding.get(k), str) for k in ("name", "user")
    ):
        errors.add("rbac:cluster_role_binding", "expected a mapping with name and user")
    ka = (cfg.get("loadbalancer") or {}).get("keepalived") or {}
    _positive(errors, "loadbalancer:keepalived:check_interval", ka.get("check_interval"))
    for key in ("check_fall", "check_rise"):
        _positive(errors, f"loadbalancer:keepalived:{key}", ka.get(key), True, True)
    haproxy = (cfg.get("loadbalancer") or {}).get("haproxy") or {}
    for key in ("selinux_booleans", "selinux_pkgs"):
        if haproxy.get(key) != []:
            _string_list(errors, f"loadbalancer:haproxy:{key}", haproxy.get(key))
    sysctl = ((cfg.get("loadbalancer") or {}).get("sysctl") or {}).get("config")
    if not isinstance(sysctl, str) or not sysctl.startswith("/"):
        errors.add("loadbalancer:sysctl:config", f"{sysctl!r}; valid: an absolute path")


def _check_secrets(errors, cfg):
    secrets = cfg.get("secrets")
    if not isinstance(secrets, dict):
        errors.add("secrets", "expected a mapping of file name -> content")
        return
    unknown = sorted(set(secrets) - set(SECRET_KEYS))
    if unknown:
        errors.add("secrets", f"unknown keys {unknown}; valid: {', '.join(SECRET_KEYS)}")
    missing = [name for name in SECRET_FILES if not secrets.get(name)]
    if missing:
        errors.add("secrets", f"missing {', '.join(missing)} (see README, 'Secrets')")
    for name in SECRET_FILES:
        value = secrets.get(name)
        if not value:
            continue
        if name.endswith(".pem") and "-----BEGIN " not in str(value):
            errors.add(f"secrets:{name}", "is not PEM (no '-----BEGIN' line)")
        if name.endswith(".kubeconfig") and "clusters" not in str(value):
            errors.add(f"secrets:{name}", "is not a kubeconfig (no 'clusters')")
    key = secrets.get("encryption_key")
    if not key:
        errors.add("secrets:encryption_key", "missing (base64 of 32 random bytes)")
    else:
        try:
            size = len(base64.b64decode(str(key), validate=True))
        except (binascii.Error, ValueError):
            size = None
        if size not in (16, 24, 32):
            errors.add("secrets:encryption_key", "valid: base64 of 16, 24 or 32 bytes (aescbc)")


MAPPINGS = (
    "vip",
    "kubernetes",
    "etcd",
    "secrets",
    "controlplane",
    "rbac",
    "loadbalancer",
    "loadbalancer:keepalived",
    "loadbalancer:haproxy",
)


def _check_shape(errors, cfg):
    """Sections that must be mappings; the other checks rely on it."""
    for path in MAPPINGS:
        node = cfg
        for part in path.split(":"):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None and not isinstance(node, dict):
            shown = "" if path == "secrets" else f" {node!r}"  # never echo a secret
            errors.add(path, f"expected a mapping, got {type(node).__name__}{shown}")
    controllers = cfg.get("controllers")
    if controllers is not None and not isinstance(controllers, list):
        errors.add(
            "controllers", f"expected a list of {{id, address}}, got {type(controllers).__name__}"
        )


def validate_config(cfg, table=None, minion_id=None):
    """
    Validate a merged configuration: every error at once, each naming the
    pillar key and what is valid; an empty list when valid. ``table`` is the
    version table (the supported range); ``minion_id``, when given, must be
    one of the controllers.
    """
    errors = _Errors()
    if not isinstance(cfg, dict):
        errors.add("", "must be a mapping")
        return list(errors)
    _check_shape(errors, cfg)
    if errors:
        # The remaining checks read inside these sections: report the shape first.
        return list(errors)
    name = cfg.get("cluster")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        errors.add("cluster", f"{name!r}; valid: a DNS label naming the cluster, e.g. hardway")
    if cfg.get("profile") not in PROFILES:
        errors.add("profile", f"{cfg.get('profile')!r} is invalid; valid: {', '.join(PROFILES)}")
    _typed(errors, cfg, "cluster_name", str, required=True)
    addresses = _check_controllers(errors, cfg)
    if minion_id is not None and addresses:
        ids = [c.get("id") for c in cfg["controllers"] if isinstance(c, dict)]
        if minion_id not in ids:
            errors.add("controllers", f"this minion ({minion_id}) is not listed; listed: {ids}")
    _check_vip(errors, cfg, addresses)
    _check_vrrp(errors, cfg)
    _check_kubernetes(errors, cfg, table, addresses)
    _check_etcd(errors, cfg)
    _check_loadbalancer_ports(errors, cfg)
    _check_settings(errors, cfg, controller_ids(cfg))
    _check_secrets(errors, cfg)
    return list(errors)


def preflight(cfg, minion_id, ip4_interfaces):
    """
    What this controller must have before anything is applied (run after
    validate_config found the configuration well-formed). Returns errors:
    the controller's address must be configured on it, and vip:interface (when
    set) must exist and carry that address.
    """
    errors = _Errors()
    ip4_interfaces = ip4_interfaces or {}
    for index, entry in enumerate(cfg.get("controllers") or []):
        if entry.get("id") != minion_id:
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
        interface = (cfg.get("vip") or {}).get("interface")
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
