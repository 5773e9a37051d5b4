"""
The cluster's configuration: defaults, profile and pillar merged into one
dict, validated with every error reported at once.

Layering (lowest first), as in saltstack-formulas' template-formula:

1. ``salt://<component>/parameters/defaults.yaml`` for each component
2. ``salt://<component>/parameters/os_family/<os_family>.yaml``
3. ``salt://<component>/parameters/profile/<profile>.yaml``
4. pillar ``k8s_control_plane``

Every state of this project reads its settings through :func:`config`, so a
value's default sits beside the states that use it and pillar holds only
what differs.
"""

import base64
import binascii
import copy
import hashlib
import ipaddress
import itertools
import json
import re

import salt.utils.dictupdate
import salt.utils.yaml
from salt.exceptions import CommandExecutionError

__virtualname__ = "k8s_cluster"

PILLAR_KEY = "k8s_control_plane"
COMPONENTS = ("cluster", "loadbalancer", "etcd", "controlplane", "rbac")
PROFILES = ("tuned", "seed")
SECRET_FILES = (
    "ca.pem",
    "ca-key.pem",
    "kubernetes.pem",
    "kubernetes-key.pem",
    "service-account.pem",
    "service-account-key.pem",
    "admin.kubeconfig",
    "kube-controller-manager.kubeconfig",
    "kube-scheduler.kubeconfig",
)
SECRET_KEYS = (*SECRET_FILES, "encryption_key", "vrrp_auth_pass")
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_DURATION_RE = re.compile(r"^\d+(us|ms|s|m|h|d)?$")


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------
# Loading and merging
# --------------------------------------------------------------------------


def _read_yaml(path):
    """Read salt://path as YAML; None when the file does not exist."""
    if "k8s_cluster.tree" not in __context__:
        # One listing instead of a failed fetch (and an error log) per absent layer.
        __context__["k8s_cluster.tree"] = set(__salt__["cp.list_master"]())
    if path not in __context__["k8s_cluster.tree"]:
        return None
    cache = __context__.setdefault("k8s_cluster.files", {})
    if path not in cache:
        text = __salt__["cp.get_file_str"](f"salt://{path}")
        cache[path] = salt.utils.yaml.safe_load(text) if text else None
    return copy.deepcopy(cache[path])


def _layer(result, doc, source):
    if doc is None:
        return result
    if not isinstance(doc, dict) or not isinstance(doc.get(PILLAR_KEY, {}), dict):
        raise CommandExecutionError(f"{source}: expected a mapping under '{PILLAR_KEY}'")
    layer = copy.deepcopy(doc.get(PILLAR_KEY) or {})
    return salt.utils.dictupdate.update(result, layer, merge_lists=False)


def merge_layers(defaults, os_layers, profile_layers, pillar):
    """
    Merge parameter layers: pure function, used by :func:`config` and tests.

    Each layer is a list of ``(source, doc)`` pairs, ``doc`` holding a
    ``k8s_control_plane`` mapping. Lists are replaced, never concatenated.
    """
    result = {}
    for source, doc in [*defaults, *os_layers, *profile_layers]:
        result = _layer(result, doc, source)
    return salt.utils.dictupdate.update(result, copy.deepcopy(pillar or {}), merge_lists=False)


def _profile_of(pillar_data, defaults_docs):
    profile = (pillar_data or {}).get("profile")
    if profile is None:
        for _, doc in defaults_docs:
            profile = ((doc or {}).get(PILLAR_KEY) or {}).get("profile", profile)
    return profile


def config(os_family=None, with_secrets=False):
    """
    Return the merged configuration of this minion's cluster (defaults, OS
    family, profile, pillar). ``secrets`` lists only the names of the secrets
    present, never their values.

    os_family
        Override the ``os_family`` grain (used by ``make render``).

    with_secrets
        Include the secret values (for validation inside this module; never
        print them).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_cluster.config
    """
    os_family = os_family or __grains__.get("os_family", "Debian")
    pillar_data = __pillar__.get(PILLAR_KEY) or {}
    if not isinstance(pillar_data, dict):
        raise CommandExecutionError(f"pillar '{PILLAR_KEY}' must be a mapping")
    # Keyed on the pillar's content: a loader that outlives a pillar refresh
    # (__context__ can) never serves the old cluster.
    key = f"k8s_cluster.config.{os_family}.{_digest(pillar_data)}"
    if key in __context__:
        return _public(__context__[key], with_secrets)
    defaults = [(f"{c}/parameters/defaults.yaml", None) for c in COMPONENTS]
    defaults = [(src, _read_yaml(src)) for src, _ in defaults]
    os_layers = [
        (src, _read_yaml(src))
        for src in (f"{c}/parameters/os_family/{os_family}.yaml" for c in COMPONENTS)
    ]
    profile = _profile_of(pillar_data, defaults)
    profile_layers = []
    if profile in PROFILES:
        profile_layers = [
            (src, _read_yaml(src))
            for src in (f"{c}/parameters/profile/{profile}.yaml" for c in COMPONENTS)
        ]
    result = merge_layers(defaults, os_layers, profile_layers, pillar_data)
    __context__[key] = result
    return _public(result, with_secrets)


def _digest(*data):
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _public(cfg, with_secrets):
    cfg = copy.deepcopy(cfg)
    if not with_secrets and isinstance(cfg.get("secrets"), dict):
        cfg["secrets"] = {name: "<secret>" for name in cfg["secrets"]}
    return cfg


def versions():
    """
    Return the version table (``salt://controlplane/parameters/versions.yaml``).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_cluster.versions
    """
    return _read_yaml("controlplane/parameters/versions.yaml")


# --------------------------------------------------------------------------
# Derived facts
# --------------------------------------------------------------------------


def parse_version(version):
    """Return (major, minor, patch) of '1.18.6' or 'v1.18.6'; None when malformed."""
    match = _VERSION_RE.match(str(version or ""))
    return tuple(int(part) for part in match.groups()) if match else None


def minor_of(text):
    """'1.19' -> (1, 19)."""
    major, minor = str(text).split(".")[:2]
    return int(major), int(minor)


def priorities(cfg):
    """Map controller id -> VRRP priority: explicit, else base, base-1, ..."""
    base = int(cfg["loadbalancer"]["keepalived"]["priority_base"])
    return {
        c["id"]: int(c["priority"]) if c.get("priority") is not None else base - index
        for index, c in enumerate(cfg.get("controllers") or [])
    }


def identity():
    """
    Return what the orchestration needs to know of this minion's cluster, and
    nothing secret: the cluster, the controller ids in order, and the
    controller that applies cluster-wide objects.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_cluster.identity
    """
    pillar_data = __pillar__.get(PILLAR_KEY)
    pillar_data = pillar_data if isinstance(pillar_data, dict) else {}
    controllers = pillar_data.get("controllers")
    ids = [
        c.get("id")
        for c in (controllers if isinstance(controllers, list) else [])
        if isinstance(c, dict)
    ]
    rbac = pillar_data.get("rbac")
    apply_from = rbac.get("apply_from") if isinstance(rbac, dict) else None
    return {
        "cluster": pillar_data.get("cluster"),
        "controllers": ids,
        "apply_from": apply_from or (ids[0] if ids else None),
    }


def secret_files():
    """
    Return the names of the files the control plane needs from
    ``k8s_control_plane:secrets`` (placed in controlplane:pki_dir).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_cluster.secret_files
    """
    return list(SECRET_FILES)


def controller(minion_id=None):
    """
    Return this minion's entry in the controller list, with its index and
    whether it is the first (the one that applies cluster-wide objects).

    minion_id
        Look up another controller instead of this minion.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-2 k8s_cluster.controller
    """
    cfg = config()
    minion_id = minion_id or __grains__["id"]
    for index, entry in enumerate(cfg.get("controllers") or []):
        if entry.get("id") == minion_id:
            return dict(entry, index=index, first=index == 0)
    raise CommandExecutionError(
        f"{minion_id} is not in {PILLAR_KEY}:controllers; "
        f"valid: {', '.join(str(c.get('id')) for c in cfg.get('controllers') or [])}"
    )


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
    controllers = [c for c in cfg.get("controllers") or [] if isinstance(c, dict)]
    base = ka.get("priority_base")
    if isinstance(base, bool) or not isinstance(base, int) or not 1 <= base <= 254:
        errors.add("loadbalancer:keepalived:priority_base", f"{base!r}; valid: 1-254")
        return
    prios = []
    for index, entry in enumerate(controllers):
        prio = entry.get("priority")
        prio = base - index if prio is None else prio
        if isinstance(prio, int) and not isinstance(prio, bool):
            prios.append((prio, entry.get("id"), index))
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
    ordered = sorted(prios, reverse=True)
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
    elif table and not minor_of(low) <= parsed[:2] <= minor_of(high):
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


COMPONENT_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


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
    Validate a merged configuration (pure function). Return every error, each
    naming the pillar key and what is valid; an empty list when valid.
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
    ids = [c.get("id") for c in cfg.get("controllers") or [] if isinstance(c, dict)]
    _check_settings(errors, cfg, ids)
    _check_secrets(errors, cfg)
    return list(errors)


def preflight(cfg, minion_id, ip4_interfaces):
    """
    Pure function: what this controller must have before anything is applied
    (run after validate_config found the pillar well-formed). Returns errors:
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


def validate():
    """
    Validate this minion's cluster pillar, then preflight this minion (its
    address configured, vip:interface present). Returns ``{"valid": bool,
    "errors": [...]}``; each error names its pillar key and the valid values.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_cluster.validate
    """
    try:
        cfg = config(with_secrets=True)
    except CommandExecutionError as exc:
        return {"valid": False, "errors": [str(exc)]}
    minion_id = __grains__.get("id")
    interfaces = __grains__.get("ip4_interfaces")
    # Every SLS of a run asks; validate once per pillar and grains.
    key = f"k8s_cluster.validate.{_digest(cfg, minion_id, interfaces)}"
    if key not in __context__:
        errors = validate_config(cfg, versions(), minion_id=minion_id)
        if not errors:
            errors = preflight(cfg, minion_id, interfaces)
        __context__[key] = {"valid": not errors, "errors": errors}
    return copy.deepcopy(__context__[key])
