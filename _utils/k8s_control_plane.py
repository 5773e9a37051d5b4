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
- It holds the rules the other utils modules share (minor-version parsing,
  the row of a per-minor table, the component names). Salt's loader gives a
  utils module no ``__utils__``, so k8s_objects.py and k8s_orchestration.py
  load this file as plain Python from their own directory (``_sibling``),
  where ``saltutil.sync_utils`` puts it next to them, as _utils/ holds it
  for the tests.

A masterless minion or a test harness must list the directory in
``utils_dirs`` (module_dirs and states_dirs do not cover it).

Why the validation is a hand-written schema (``SCHEMA`` and the rules after
it) and not JSON Schema: it runs inside every minion's Salt, and Salt 3008
does not ship ``jsonschema`` (a controller would need an extra package
before it could even refuse a bad pillar); the rules that matter most span
keys (ports that must differ, the VIP against the subnet and the CIDRs,
priorities, the PKI against the addresses) which JSON Schema cannot say; and
its errors would not name the closest valid key ("did you mean") or keep
secret values out of the message. The schema is a plain mapping of every key
to a small check, so a key added to a parameter file without one fails a
unit test.
"""

import base64
import binascii
import copy
import datetime
import difflib
import ipaddress
import itertools
import re

import salt.utils.dictupdate
import salt.utils.yaml
from salt.exceptions import CommandExecutionError

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
except ImportError:  # Salt depends on it; without it only the PKI's coherence goes unchecked
    x509 = None

PILLAR_KEY = "k8s_control_plane"
COMPONENTS = ("cluster", "loadbalancer", "pki", "etcd", "controlplane", "rbac")
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
# X.Y.Z without leading zeros: 1.18.06 is no release path.
_VERSION_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_MINOR_RE = re.compile(r"^v?(\d+)\.(\d+)(\.\d+)?$")
_DURATION_RE = re.compile(r"^\d+(us|ms|s|m|h|d)?$")
_DIGITS = re.compile(r"^\d+")
_URL_RE = re.compile(r"^https?://[^\s/]+[^\s]*$")
_HOST_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# A controller id is a minion id, a directory name (make render) and haproxy's
# server name: no spaces, '/', control characters or '..'.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


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


def row_at(rows, minor):
    """
    The row of a per-minor table (rows with a ``since: "X.Y"``, any order)
    that applies at ``minor`` ((major, minor)): the one with the highest
    ``since`` not above it (the later row of two with the same ``since``);
    None when every row starts later.
    """
    chosen = None
    for row in rows or []:
        since = _minor(row["since"], "since")
        if since <= tuple(minor) and (chosen is None or since >= _minor(chosen["since"])):
            chosen = row
    return chosen


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
    base = _get(cfg, "loadbalancer:keepalived:priority_base")
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
    """The ``api`` of row_at(rows, minor); an error naming ``what`` when no row applies."""
    chosen = row_at(rows, minor)
    if chosen is None:
        raise CommandExecutionError(f"no {what} for Kubernetes {minor[0]}.{minor[1]}")
    return chosen["api"]


def etcd_servers(cfg):
    """The apiservers' --etcd-servers: etcd:servers, else every controller's client URL."""
    etcd = cfg.get("etcd") or {}
    return list(etcd.get("servers") or []) or [
        f"https://{c['address']}:{etcd.get('client_port', 2379)}" for c in cfg["controllers"]
    ]


def pki_source(cfg):
    """
    The cluster's pki:source: ``salt`` (the default), ``pillar``, or None
    for any other value (the validation reports it). The one reading of it.
    """
    pki = cfg.get("pki") if isinstance(cfg, dict) else None
    value = pki.get("source", "salt") if isinstance(pki, dict) else "salt"
    return value if value in ("salt", "pillar") else None


def _kubelet_client(cfg):
    return "kubernetes" if pki_source(cfg) == "pillar" else "apiserver-kubelet-client"


def flag_context(cfg, address):
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


def _get(cfg, path):
    """cfg at 'a:b:c'; None when absent or when a parent is not a mapping."""
    node = cfg
    for part in path.split(":"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _section(cfg, path):
    """The mapping at 'a:b'; {} when absent or of the wrong type (the schema reports that)."""
    node = _get(cfg, path)
    return node if isinstance(node, dict) else {}


def _type(value):
    """The YAML kind of a value (Salt's pillar holds OrderedDicts: a mapping is a dict)."""
    for kind, name in ((bool, "bool"), (dict, "dict"), (list, "list"), (str, "str")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _plain(value):
    """A value as YAML wrote it, for messages (no OrderedDict(...) noise)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _kind(value):
    return "nothing" if value is None else f"{_type(value)} {_plain(value)!r}"


# Keys whose values are never shown (besides every value under secrets): by
# k8s_cluster.config (redact) and in the validation's messages (a password
# put where it does not belong).
_SECRET_LOOKING = re.compile(r"pass|secret|private|credential", re.IGNORECASE)


def _looks_secret(key):
    return bool(_SECRET_LOOKING.search(str(key)))


def _masked(value, hide=False):
    """``value`` with the value of every secret-looking key, at any depth, as ``<secret>``."""
    if isinstance(value, dict):
        return {k: _masked(v, hide or _looks_secret(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, hide) for v in value]
    return "<secret>" if hide and value is not None else copy.deepcopy(value)


def _hidden(message):
    """A check's message without the value it quotes: what is valid, or what was expected."""
    if "valid: " in message:
        return "invalid; its value is not shown; valid: " + message.split("valid: ", 1)[1]
    if message.startswith("expected ") and ", got " in message:
        return message.split(", got ", 1)[0] + "; its value is not shown"
    return "invalid; its value is not shown"


# Leaf checks: each returns None for a valid value, else what is wrong and
# what is valid. ``_nullable`` accepts null too.


def _string(value):
    if not isinstance(value, str) or not value:
        return f"expected a string, got {_kind(value)}"
    return None


def _word(value):
    if not isinstance(value, str) or not re.match(r"^[^\s]+$", value):
        return f"{value!r}; valid: one word (no spaces)"
    return None


def _path(value):
    if not isinstance(value, str) or not re.match(r"^/[^\s]*$", value):
        return f"{value!r}; valid: an absolute path"
    return None


def _command(value):
    if not isinstance(value, str) or not value.startswith("/"):
        return f"{value!r}; valid: a command line starting with an absolute path"
    return None


def _url(value):
    if not isinstance(value, str) or not _URL_RE.match(value):
        return f"{value!r}; valid: an http(s) URL"
    return None


def _dns_label(value):
    if not isinstance(value, str) or not _NAME_RE.match(value):
        return f"{value!r}; valid: a DNS label naming the cluster, e.g. hardway"
    return None


def _dns_name(value):
    labels = value.split(".") if isinstance(value, str) else [None]
    if not all(isinstance(part, str) and _HOST_LABEL_RE.match(part) for part in labels):
        return f"{value!r}; valid: a DNS name"
    return None


def _interface(value):
    if not isinstance(value, str) or not _IFACE_RE.match(value):
        return f"{value!r}; valid: an interface name (at most 15 characters)"
    return None


def _boolean(value):
    return None if isinstance(value, bool) else f"{value!r}; valid: true, false"


def _integer(low, high=None):
    if high is None:
        shown = f"an integer >= {low}" if low != 1 else "an integer > 0"
    else:
        shown = f"an integer {low}-{high}" if low >= 0 else f"an integer {low}..{high}"

    def check(value):
        ok = _whole(value) and low <= value and (high is None or value <= high)
        return None if ok else f"{value!r}; valid: {shown}"

    return check


_port = _integer(1, 65535)
_count = _integer(1)


def _positive(value):
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return f"{value!r}; valid: a number > 0"
    return None


def _one_of(*options):
    def check(value):
        if any(type(value) is type(o) and value == o for o in options):
            return None
        return f"{value!r} is invalid; valid: {', '.join(map(str, options))}"

    return check


def _duration(value):
    # haproxy's time format: digits and an optional unit; a bare number is ms.
    text = str(value) if _whole(value) else value
    if not isinstance(text, str) or not _DURATION_RE.match(text) or not int(_DIGITS.match(text)[0]):
        return (
            f"{value!r}; valid: a haproxy duration > 0, digits with an optional unit "
            "(us, ms, s, m, h, d), e.g. 2s or 500ms"
        )
    return None


def _names(value):
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _word(v) is None for v in value
    ):
        return f"{value!r}; valid: a list of names"
    return None


def _labels(value):
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return "valid: a mapping of name -> string"
    return None


def _strings(value):
    """A list of strings (an API group may be "", the core group)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return f"expected a list of strings, got {_kind(value)}"
    return None


def _words(value):
    """A list of non-empty strings without spaces (resources, verbs, names, URLs)."""
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _word(v) is None for v in value
    ):
        return f"expected a list of names (no spaces), got {_kind(value)}"
    return None


def _nullable(check):
    def nullable(value):
        message = None if value is None else check(value)
        return None if message is None else f"{message}, or null"

    return nullable


def _ok(check, value):
    return check(value) is None


# Checked by the rules below (they need more than the value itself).
_RULE = "rule"

# One entry of a ClusterRole's rules (Kubernetes' PolicyRule): every key is
# optional to the schema; _check_rbac_rules says which ones a rule needs, as
# the apiserver's validation does.
_POLICY_RULE = {
    "apiGroups": _strings,
    "resources": _words,
    "resourceNames": _words,
    "nonResourceURLs": _words,
    "verbs": _words,
}

# Every key under k8s_control_plane: a mapping is a section, a function checks
# a value, a list of one mapping is a non-empty list of entries each checked
# with that mapping (its keys optional), _RULE marks a key a rule of its own checks.
SCHEMA = {
    "cluster": _dns_label,
    "cluster_name": _word,
    "profile": _one_of(*PROFILES),
    "controllers": _RULE,
    "vip": {
        "address": _RULE,
        "hostname": _nullable(_dns_name),
        "interface": _nullable(_interface),
        "subnet": _RULE,
        "virtual_router_id": _integer(1, 255),
    },
    "kubernetes": {
        "version": _RULE,
        "release_url": _url,
        "arch": _word,
        "service_cidr": _RULE,
        "cluster_cidr": _RULE,
        "node_port_range": _RULE,
    },
    "etcd": {
        "managed": _boolean,
        "servers": _RULE,
        "version": _RULE,
        "release_url": _RULE,
        "bin_dir": _path,
        "config_dir": _path,
        "data_dir": _path,
        "unit": _path,
        "client_port": _port,
        "peer_port": _port,
        "initial_cluster_token": _word,
    },
    "secrets": _RULE,
    "pki": {
        "source": _one_of("salt", "pillar"),
        "days_valid": _integer(1, 3650),
        "renew_before_days": _integer(1, 3649),
    },
    "controlplane": {
        "bin_dir": _path,
        "config_dir": _path,
        "pki_dir": _path,
        "unit_dir": _path,
        "binaries": _RULE,
        "apiserver_port": _port,
        "controller_manager_port": _port,
        "scheduler_port": _port,
        "audit_log_path": _path,
        "service_account_issuer": _url,
        "verbosity": _integer(0, 10),
        "extra_args": _RULE,
        "ready_timeout": _positive,
    },
    "rbac": {
        "apply_from": _RULE,
        "kubeconfig": _path,
        "ready_timeout": _positive,
        "cluster_role": {
            "name": _string,
            "annotations": _labels,
            "labels": _labels,
            "rules": [_POLICY_RULE],
        },
        "cluster_role_binding": {"name": _string, "user": _string},
    },
    "loadbalancer": {
        "keepalived": {
            "pkg": _word,
            "service": _word,
            "config": _path,
            "instance": _word,
            "vrrp_version": _one_of(2, 3),
            "priority_base": _integer(1, 254),
            "script_user": _word,
            "check_command": _command,
            "track_file": _nullable(_path),
            "advert_int": _positive,
            "check_interval": _positive,
            "check_weight": _integer(-253, 253),
            "check_fall": _nullable(_count),
            "check_rise": _nullable(_count),
            "check_unicast_src": _boolean,
        },
        "haproxy": {
            "pkg": _word,
            "service": _word,
            "config": _path,
            "user": _word,
            "group": _word,
            "ca_file": _path,
            "stats_socket": _path,
            "state_dir": _path,
            "selinux_booleans": _names,
            "selinux_pkgs": _names,
            "maxconn": _count,
            "http_port": _port,
            "tls_port": _port,
            "verifyhost": _dns_name,
            "server_maxconn": _count,
            "server_maxqueue": _integer(0),
            "timeout_client": _duration,
            "timeout_server": _duration,
            "timeout_check": _duration,
            "check": _one_of("readyz", "tls"),
            "verify_backend_tls": _boolean,
            "inter": _duration,
            "downinter": _nullable(_duration),
            "fall": _count,
            "rise": _count,
            "slowstart": _nullable(_duration),
            "timeout_connect": _duration,
            "retries": _integer(0),
            "redispatch": _boolean,
            "retry_reads": _boolean,
            "shutdown_sessions": _boolean,
        },
        "sysctl": {"config": _path},
    },
    "tofs": _RULE,
}
# Keys where an operator puts a password by habit (the seed's keepalived.conf
# has auth_pass): refused with a pointer, and their value never shown.
_PASSWORD_KEYS = ("auth_pass", "password", "vrrp_auth_pass", "auth_type")


def _unknown(errors, where, key, valid):
    """An unknown key: name the closest valid one; never show its value."""
    name = str(key)
    if name in _PASSWORD_KEYS:
        errors.add(
            where,
            "unknown key; the VRRP password belongs in secrets:vrrp_auth_pass (1-8 "
            "characters, with loadbalancer:keepalived:vrrp_version 2); its value is not shown",
        )
        return
    close = difflib.get_close_matches(name, [str(v) for v in valid], n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    errors.add(where, f"unknown key; {hint}valid: {', '.join(map(str, valid))}")


def _walk(errors, node, spec, path, quiet_absent):
    for key in node:
        if key not in spec:
            _unknown(errors, f"{path}{key}", key, list(spec))
    for key, check in spec.items():
        where = f"{path}{key}"
        if key not in node and quiet_absent:
            continue  # an unknown profile sets nothing: the profile's error says so
        value = node.get(key)
        # What a message may show of the value: never a secret-looking key's.
        shown = _masked(value, _looks_secret(key))
        if isinstance(check, list):
            _walk_entries(errors, value, check[0], where)
        elif isinstance(check, dict):
            if value is None:
                errors.add(where, f"missing (expected a mapping with {', '.join(check)})")
            elif not isinstance(value, dict):
                errors.add(where, f"expected a mapping, got {_kind(shown)}")
            else:
                _walk(errors, value, check, f"{where}:", quiet_absent)
        elif check is not _RULE:
            message = check(value)
            if message:
                errors.add(where, message if shown == value else _hidden(message))


def _walk_entries(errors, value, spec, where):
    """A non-empty list of mappings, each entry's keys checked with ``spec`` (all optional)."""
    if not isinstance(value, list) or not value:
        errors.add(
            where,
            f"expected a non-empty list of mappings with {', '.join(spec)}, "
            f"got {_kind(_masked(value))}",
        )
        return
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            errors.add(
                f"{where}:{index}",
                f"expected a mapping with {', '.join(spec)}, got {_kind(_masked(entry))}",
            )
        else:
            _walk(errors, entry, spec, f"{where}:{index}:", quiet_absent=True)


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


def _check_controllers(errors, cfg):
    """The controller list; returns the valid addresses."""
    controllers = cfg.get("controllers")
    if controllers is None:
        errors.add("controllers", "missing (expected a list of {id, address})")
        return []
    if not isinstance(controllers, list):
        errors.add("controllers", f"expected a list of {{id, address}}, got {_type(controllers)}")
        return []
    if not controllers:
        errors.add("controllers", "empty (expected a list of {id, address}, one per controller)")
        return []
    seen_ids, seen_addresses, addresses = {}, {}, []
    for index, entry in enumerate(controllers):
        key = f"controllers:{index}"
        if not isinstance(entry, dict):
            errors.add(key, f"expected a mapping with id and address, got {entry!r}")
            continue
        for name in entry:
            if name not in ("id", "address", "priority"):
                _unknown(errors, f"{key}:{name}", name, ["id", "address", "priority"])
        cid = entry.get("id")
        if cid is None or cid == "":
            errors.add(f"{key}:id", "missing (expected the controller's minion id)")
        elif not isinstance(cid, str) or not _ID_RE.match(cid) or ".." in cid:
            errors.add(
                f"{key}:id",
                f"{cid!r} is not a valid minion id and haproxy server name; "
                f"valid: {_ID_RE.pattern} without '..'",
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
        if priority is not None and not (_whole(priority) and 1 <= priority <= 254):
            errors.add(f"{key}:priority", f"{priority!r} is invalid; valid: an integer 1-254")
    return addresses


def _check_vip(errors, cfg, addresses):
    """The VIP and its segment; returns the VIP when it is an address."""
    vip = _section(cfg, "vip")
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


def _check_vrrp(errors, cfg):
    ka = _section(cfg, "loadbalancer:keepalived")
    version = ka.get("vrrp_version")
    advert = ka.get("advert_int")
    if version == 2 and _ok(_positive, advert) and (advert < 1 or advert != int(advert)):
        errors.add(
            "loadbalancer:keepalived:advert_int",
            f"{advert!r} needs VRRPv3; valid with vrrp_version 2: whole seconds >= 1",
        )
    secrets = cfg.get("secrets") if isinstance(cfg.get("secrets"), dict) else {}
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
    controllers = cfg.get("controllers") if isinstance(cfg.get("controllers"), list) else []
    prios = []
    for index, prio in enumerate(priorities(cfg)):
        entry = controllers[index]
        if prio is None:
            continue
        if entry.get("priority") is None and not 1 <= prio <= 254:
            errors.add(f"controllers:{index}:priority", f"computed priority {prio}; valid: 1-254")
        elif 1 <= prio <= 254:
            prios.append((prio, entry.get("id"), index))
    seen = {}
    for prio, cid, index in prios:
        if prio in seen:
            errors.add(
                f"controllers:{index}:priority",
                f"duplicate priority {prio} ({cid} and {seen[prio]}); each must be unique",
            )
        seen[prio] = cid
    weight = ka.get("check_weight")
    if not _ok(_integer(-253, 253), weight) or not weight:
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


def _check_kubernetes(errors, cfg, table, addresses, vip):
    k8s = _section(cfg, "kubernetes")
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


def _check_etcd(errors, cfg):
    etcd = _section(cfg, "etcd")
    managed = etcd.get("managed") is True
    pki_dir = _section(cfg, "controlplane").get("pki_dir")
    if managed and etcd.get("config_dir") and etcd.get("config_dir") == pki_dir:
        errors.add(
            "etcd:config_dir",
            f"{pki_dir!r} is controlplane:pki_dir too; valid: a directory of its own "
            "(etcd's certificates are restarted apart from the control plane's), e.g. /etc/etcd",
        )
    servers = etcd.get("servers")
    if servers is not None and not isinstance(servers, list):
        errors.add("etcd:servers", f"expected a list of URLs, got {_type(servers)}")
        servers = []
    for index, url in enumerate(servers or []):
        if not isinstance(url, str) or not re.match(r"^https://[^\s/]+:\d+$", url):
            errors.add(f"etcd:servers:{index}", f"{url!r}; valid: https://HOST:PORT")
    version, url = etcd.get("version"), etcd.get("release_url")
    required = "required when etcd:managed is true: " if managed else "valid: null, or "
    if (managed or version is not None) and not (
        isinstance(version, str) and parse_version(version)
    ):
        shown = "missing" if version is None else repr(version)
        errors.add("etcd:version", f"{shown}; {required}X.Y.Z as a string, e.g. '3.4.23'")
    if (managed or url is not None) and not _ok(_url, url):
        shown = "missing" if url is None else repr(url)
        errors.add("etcd:release_url", f"{shown}; {required}an http(s) URL")


# The kubelet's port: not the formula's to set, but a controller may run one.
_KUBELET_PORT = 10250


def _check_ports(errors, cfg):
    """Every port a controller binds differs: the control plane, etcd, the kubelet, haproxy."""
    cp, etcd = _section(cfg, "controlplane"), _section(cfg, "etcd")
    haproxy = _section(cfg, "loadbalancer:haproxy")
    bound = [
        ("controlplane:apiserver_port", cp.get("apiserver_port")),
        ("controlplane:controller_manager_port", cp.get("controller_manager_port")),
        ("controlplane:scheduler_port", cp.get("scheduler_port")),
        ("etcd:client_port", etcd.get("client_port")),
        ("etcd:peer_port", etcd.get("peer_port")),
        (None, _KUBELET_PORT),
        ("loadbalancer:haproxy:http_port", haproxy.get("http_port")),
        ("loadbalancer:haproxy:tls_port", haproxy.get("tls_port")),
    ]
    taken = {port for _, port in bound if _ok(_port, port)}
    used = {}
    for key, port in bound:
        if not _ok(_port, port):
            continue  # the schema reports it
        if port in used:
            free = next(p for p in range(8443, 65536) if p not in taken)
            errors.add(
                key,
                f"{port} collides with {used[port]} (each port a controller binds must "
                f"differ: the control plane and etcd bind 0.0.0.0, haproxy the VIP and "
                f"127.0.0.1); valid: a free port, e.g. {free}",
            )
        else:
            used[port] = key or f"the kubelet's port {_KUBELET_PORT}"


def _check_settings(errors, cfg, ids):
    """The component settings whose rules span more than one value."""
    cp = _section(cfg, "controlplane")
    extra = cp.get("extra_args")
    if isinstance(cfg.get("controlplane"), dict) and not isinstance(extra, dict):
        errors.add("controlplane:extra_args", f"expected a mapping, got {_type(extra)}")
    for component, flags in (extra if isinstance(extra, dict) else {}).items():
        key = f"controlplane:extra_args:{component}"
        if component not in COMPONENT_BINARIES:
            _unknown(errors, key, component, list(COMPONENT_BINARIES))
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
    binaries = cp.get("binaries")
    if isinstance(cfg.get("controlplane"), dict):
        if _names(binaries):
            errors.add("controlplane:binaries", _names(binaries))
        else:
            missing = [b for b in COMPONENT_BINARIES if b not in binaries]
            if missing:
                errors.add("controlplane:binaries", f"must include {', '.join(missing)}")
    apply_from = _section(cfg, "rbac").get("apply_from")
    if apply_from is not None and apply_from not in ids:
        listed = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        errors.add("rbac:apply_from", f"{apply_from!r}; valid: null or one of {listed}")


def _check_rbac_rules(errors, cfg):
    """
    What each ClusterRole rule needs, as the apiserver's validation of a
    PolicyRule says (the schema checked the keys and types): verbs; then either
    non-resource URLs alone, or API groups and resources.
    """
    rules = _get(cfg, "rbac:cluster_role:rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict) or any(
            key in rule and not _ok(check, rule[key]) for key, check in _POLICY_RULE.items()
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


def _check_extra_args_versions(errors, cfg, table):
    """
    extra_args against the version: a flag the table records as removed at
    or before the cluster's minor, and structured authorization, which the
    apiserver refuses next to --authorization-mode (the formula writes
    Node,RBAC) or --authorization-webhook-* and which needs 1.29.
    """
    extra = _section(cfg, "controlplane").get("extra_args")
    minor = parse_version(_section(cfg, "kubernetes").get("version"))
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
            if value is not None and removed and minor[:2] >= _minor(removed, "removed"):
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


def _check_tofs(errors, cfg):
    tofs = cfg.get("tofs")
    if tofs is None:
        return
    if not isinstance(tofs, dict):
        errors.add("tofs", f"expected a mapping with source_files, files_switch, got {_kind(tofs)}")
        return
    for key in tofs:
        if key not in ("source_files", "files_switch"):
            _unknown(errors, f"tofs:{key}", key, ["source_files", "files_switch"])
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


def _check_secrets(errors, cfg, addresses, vip, service):
    secrets = cfg.get("secrets")
    if secrets is None:
        secrets = {}
    if not isinstance(secrets, dict):
        # never echo a secret
        errors.add("secrets", f"expected a mapping, got {_type(secrets)}")
        return
    for name in secrets:
        if name not in SECRET_KEYS:
            _unknown(errors, f"secrets:{name}", name, list(SECRET_KEYS))
    source = pki_source(cfg)
    if source is None:
        return  # the schema names pki:source; the secrets depend on it
    pki = cfg.get("pki") if isinstance(cfg.get("pki"), dict) else {}
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
        hint = "see README, 'Secrets'"
        etcd = cfg.get("etcd") if isinstance(cfg.get("etcd"), dict) else {}
        if by_salt and etcd.get("managed") is not True:
            hint = (
                "with etcd:managed false the master makes no CA: the external etcd trusts "
                "its own, so give that CA here; valid: secrets:ca.pem and secrets:ca-key.pem, "
                "etcd:managed: true, or pki:source: pillar; see README, 'PKI'"
            )
        elif by_salt:
            hint = (
                "with pki:source salt the master's ext_pillar k8s_pki gives them: is it "
                "configured on the master? see README, 'PKI'"
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
            errors.add(f"secrets:{name}", f"expected the file's text, got {_type(value)}")
        elif name.endswith(".pem") and "-----BEGIN " not in value:
            errors.add(f"secrets:{name}", "is not PEM (no '-----BEGIN' line)")
        else:
            texts[name] = value
    key = secrets.get("encryption_key")
    if not key:
        origin = (
            "the master's ext_pillar k8s_pki gives it" if by_salt else "base64 of 32 random bytes"
        )
        errors.add("secrets:encryption_key", f"missing ({origin})")
    else:
        try:
            size = len(base64.b64decode(str(key), validate=True))
        except (binascii.Error, ValueError):
            size = None
        if size not in (16, 24, 32):
            errors.add("secrets:encryption_key", "valid: base64 of 16, 24 or 32 bytes (aescbc)")
    _check_pki(errors, texts, addresses, vip, service)


def _check_days(errors, pki):
    days, renew = pki.get("days_valid"), pki.get("renew_before_days")
    if _ok(_integer(1, 3650), days) and _ok(_integer(1, 3649), renew) and renew >= days:
        errors.add(
            "pki:renew_before_days",
            f"{renew} is not below pki:days_valid ({days}): every run would re-issue; "
            f"valid: 1-{days - 1}",
        )


# --------------------------------------------------------------------------
# PKI coherence (cryptography, a dependency of Salt itself)
# --------------------------------------------------------------------------

_PAIRS = {
    "ca-key.pem": "ca.pem",
    "kubernetes-key.pem": "kubernetes.pem",
    "service-account-key.pem": "service-account.pem",
}
_API_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _load_cert(data):
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        return None


def _load_key(data):
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _spki(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _cert_problems(cert, ca, what):
    """What is wrong with a certificate on its own and against the CA: its dates, its signer."""
    problems = []
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now:
        problems.append(f"{what} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        problems.append(
            f"{what} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if ca is not None and cert is not ca:
        if cert.issuer != ca.subject:
            problems.append(
                f"{what} is not signed by secrets:ca.pem: its issuer is "
                f"{cert.issuer.rfc4514_string()}, ca.pem is {ca.subject.rfc4514_string()}"
            )
        else:
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                problems.append(
                    f"{what} is not signed by secrets:ca.pem: its issuer has ca.pem's name, "
                    "but its signature does not verify with ca.pem's key"
                )
    return problems


def _ca_problems(cert):
    """What keeps a certificate from signing others: basicConstraints CA:true, keyCertSign."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    problems = []
    if not is_ca:
        problems.append("is not a CA certificate (basicConstraints CA:true missing)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            problems.append("its key usage lacks keyCertSign, so it cannot sign certificates")
    except x509.ExtensionNotFound:
        pass
    return problems


def _sans(cert):
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in names.get_values_for_type(x509.IPAddress)} | set(
        names.get_values_for_type(x509.DNSName)
    )


def _b64_pem(value):
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _check_kubeconfig(errors, name, text, ca):
    key = f"secrets:{name}"
    try:
        doc = salt.utils.yaml.safe_load(text)
    except Exception:  # any YAML error; its message could quote the secret
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("clusters"), list):
        errors.add(key, "is not a kubeconfig (no 'clusters')")
        return
    if x509 is None:
        return
    for entry in doc["clusters"]:
        data = _get(entry, "cluster:certificate-authority-data")
        if data is None:
            continue
        cert = _load_cert(_b64_pem(data))
        if cert is None:
            errors.add(key, "its certificate-authority-data is not a PEM certificate")
        elif ca is not None and cert != ca:
            errors.add(key, "its certificate-authority-data is not secrets:ca.pem")
    for entry in doc.get("users") if isinstance(doc.get("users"), list) else []:
        user = _get(entry, "name")
        cert_data, key_data = (
            _get(entry, "user:client-certificate-data"),
            _get(entry, "user:client-key-data"),
        )
        if cert_data is None and key_data is None:
            continue
        cert = _load_cert(_b64_pem(cert_data)) if cert_data is not None else None
        private = _load_key(_b64_pem(key_data)) if key_data is not None else None
        if cert_data is not None and cert is None:
            errors.add(key, f"user {user}: its client-certificate-data is not a PEM certificate")
        if key_data is not None and private is None:
            errors.add(key, f"user {user}: its client-key-data is not a PEM private key")
        if (
            cert is not None
            and private is not None
            and _spki(cert.public_key()) != _spki(private.public_key())
        ):
            errors.add(key, f"user {user}: its client key is not the key of its certificate")
        if cert is not None:
            for problem in _cert_problems(cert, ca, "its client certificate"):
                errors.add(key, f"user {user}: {problem}")


def _check_pki(errors, texts, addresses, vip, service):
    """
    The certificates, keys and kubeconfigs agree: each parses, each
    certificate matches its key, is valid now and is signed by ca.pem, and the
    apiserver's covers every name its clients use. Errors name files, never
    their content.
    """
    if x509 is None:
        for name in SECRET_FILES:
            if name.endswith(".kubeconfig") and name in texts:
                _check_kubeconfig(errors, name, texts[name], None)
        return
    certs, keys = {}, {}
    for name, text in texts.items():
        if name in _PAIRS:
            keys[name] = _load_key(text.encode())
        elif name.endswith(".pem"):
            certs[name] = _load_cert(text.encode())
    ca = certs.get("ca.pem")
    for name in SECRET_FILES:
        if name not in texts:
            continue
        key = f"secrets:{name}"
        if name.endswith(".kubeconfig"):
            _check_kubeconfig(errors, name, texts[name], ca)
        elif name in _PAIRS:
            private, cert = keys[name], certs.get(_PAIRS[name])
            if private is None:
                errors.add(key, "is not an unencrypted PEM private key that parses")
            elif cert is not None and _spki(cert.public_key()) != _spki(private.public_key()):
                errors.add(
                    key, f"is not the key of secrets:{_PAIRS[name]} (their public keys differ)"
                )
        elif certs[name] is None:
            errors.add(
                key, "is not a PEM certificate that parses (PEM armour around something else)"
            )
        else:
            for problem in _cert_problems(certs[name], ca, "the certificate"):
                errors.add(key, problem)
            if name == "ca.pem":
                for problem in _ca_problems(certs[name]):
                    errors.add(key, problem)
            if name == "kubernetes.pem":
                wanted = [
                    *([str(vip)] if vip is not None else []),
                    *map(str, addresses),
                    "127.0.0.1",
                    *([str(service[1])] if service and service.num_addresses > 1 else []),
                    *_API_NAMES,
                ]
                have = _sans(certs[name])
                lacking = [n for n in dict.fromkeys(wanted) if n not in have]
                if lacking:
                    errors.add(
                        key,
                        f"the apiserver certificate's subject alternative names lack "
                        f"{', '.join(lacking)} (it needs the VIP, every controller address, "
                        "127.0.0.1, the first service IP and the kubernetes.default names)",
                    )


def validate_config(cfg, table=None, minion_id=None):
    """
    Validate a merged configuration: every error at once, each naming the
    pillar key and what is valid; an empty list when valid. ``table`` is the
    version table (the supported range); ``minion_id``, when given, must be
    one of the controllers. An error never quotes a secret.
    """
    errors = _Errors()
    if not isinstance(cfg, dict):
        errors.add("", "must be a mapping")
        return list(errors)
    cfg = _plain(cfg)  # Salt's pillar holds OrderedDicts; messages show plain YAML
    _walk(errors, cfg, SCHEMA, "", quiet_absent=cfg.get("profile") not in PROFILES)
    addresses = _check_controllers(errors, cfg)
    ids = controller_ids(cfg)
    if minion_id is not None and addresses and minion_id not in ids:
        errors.add("controllers", f"this minion ({minion_id}) is not listed; listed: {ids}")
    vip = _check_vip(errors, cfg, addresses)
    _check_vrrp(errors, cfg)
    service = _check_kubernetes(errors, cfg, table, addresses, vip)
    _check_etcd(errors, cfg)
    _check_ports(errors, cfg)
    _check_settings(errors, cfg, ids)
    _check_rbac_rules(errors, cfg)
    _check_extra_args_versions(errors, cfg, table)
    _check_tofs(errors, cfg)
    _check_secrets(errors, cfg, addresses, vip, service)
    return list(errors)


def redact(cfg):
    """
    A copy of a configuration for display: every value under ``secrets``, and
    the value of every key that looks like a password anywhere else
    (``auth_pass``, ``password``, ...), replaced by ``<secret>``.
    """

    if not isinstance(cfg, dict):
        return copy.deepcopy(cfg)
    result = _masked({k: v for k, v in cfg.items() if k != "secrets"})
    if "secrets" in cfg:
        secrets = cfg["secrets"]
        result["secrets"] = (
            {name: "<secret>" for name in secrets} if isinstance(secrets, dict) else "<secret>"
        )
    return result


def validate_minion(cfg, table, minion_id, ip4_interfaces):
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


def preflight(cfg, minion_id, ip4_interfaces):
    """
    What this controller must have before anything is applied (validate_minion
    runs it only once validate_config found the configuration well-formed; on
    a malformed one it skips what it cannot read rather than fail). Returns
    errors: the controller's address must be configured on it, and
    vip:interface (when set) must exist and carry that address.
    """
    errors = _Errors()
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
        interface = _section(cfg, "vip").get("interface")
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
