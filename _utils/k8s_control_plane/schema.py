"""The schema of a merged configuration: every key with its small check, the walk that
applies it (unknown keys named with the closest valid one), and how values are shown in
messages (secrets never)."""

import copy
import difflib
import re
from collections.abc import Callable
from typing import Any

from .facts import is_whole, lookup
from .names import PILLAR_KEY, PROFILES

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_DURATION_RE = re.compile(r"^\d+(us|ms|s|m|h|d)?$")
_DIGITS = re.compile(r"^\d+")
_URL_RE = re.compile(r"^https?://[^\s/]+[^\s]*$")
_HOST_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# A controller id is a minion id, a directory name (make render) and haproxy's
# server name: no spaces, '/', control characters or '..'.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class Errors(list):
    def add(self, key: str, message: str) -> None:
        self.append(f"{PILLAR_KEY}:{key}: {message}")


def section(cfg: Any, path: str) -> dict[str, Any]:
    """The mapping at 'a:b'; {} when absent or of the wrong type (the schema reports that)."""
    node = lookup(cfg, path)
    return node if isinstance(node, dict) else {}


def type_name(value: Any) -> str:
    """The YAML kind of a value (Salt's pillar holds OrderedDicts: a mapping is a dict)."""
    for kind, name in ((bool, "bool"), (dict, "dict"), (list, "list"), (str, "str")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def plain(value: Any) -> Any:
    """A value as YAML wrote it, for messages (no OrderedDict(...) noise)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def kind(value: Any) -> str:
    return "nothing" if value is None else f"{type_name(value)} {plain(value)!r}"


# Keys whose values are never shown (besides every value under secrets): by
# k8s_cluster.config (redact) and in the validation's messages (a password
# put where it does not belong).
_SECRET_LOOKING = re.compile(r"pass|secret|private|credential", re.IGNORECASE)


def _looks_secret(key):
    return bool(_SECRET_LOOKING.search(str(key)))


def masked(value: Any, hide: bool = False) -> Any:
    """``value`` with the value of every secret-looking key, at any depth, as ``<secret>``."""
    if isinstance(value, dict):
        return {k: masked(v, hide or _looks_secret(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, hide) for v in value]
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
        return f"expected a string, got {kind(value)}"
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


def url_rule(value: Any) -> str | None:
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


def integer(low: int, high: int | None = None) -> Callable[[Any], str | None]:
    if high is None:
        shown = f"an integer >= {low}" if low != 1 else "an integer > 0"
    else:
        shown = f"an integer {low}-{high}" if low >= 0 else f"an integer {low}..{high}"

    def check(value):
        ok = is_whole(value) and low <= value and (high is None or value <= high)
        return None if ok else f"{value!r}; valid: {shown}"

    return check


port_rule = integer(1, 65535)
_count = integer(1)


def positive(value: Any) -> str | None:
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
    text = str(value) if is_whole(value) else value
    if not isinstance(text, str) or not _DURATION_RE.match(text) or not int(_DIGITS.match(text)[0]):
        return (
            f"{value!r}; valid: a haproxy duration > 0, digits with an optional unit "
            "(us, ms, s, m, h, d), e.g. 2s or 500ms"
        )
    return None


def name_list(value: Any) -> str | None:
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
        return f"expected a list of strings, got {kind(value)}"
    return None


def _words(value):
    """A list of non-empty strings without spaces (resources, verbs, names, URLs)."""
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _word(v) is None for v in value
    ):
        return f"expected a list of names (no spaces), got {kind(value)}"
    return None


def _nullable(check):
    def nullable(value):
        message = None if value is None else check(value)
        return None if message is None else f"{message}, or null"

    return nullable


def ok(check: Callable[[Any], str | None], value: Any) -> bool:
    return check(value) is None


# Checked by the rules below (they need more than the value itself).
_RULE = "rule"

# One entry of a ClusterRole's rules (Kubernetes' PolicyRule): every key is
# optional to the schema; check_rbac_rules says which ones a rule needs, as
# the apiserver's validation does.
POLICY_RULE = {
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
        "virtual_router_id": integer(1, 255),
    },
    "kubernetes": {
        "version": _RULE,
        "release_url": url_rule,
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
        "client_port": port_rule,
        "peer_port": port_rule,
        "initial_cluster_token": _word,
        "snapshots": {"keep": integer(1, 1000), "max_age_days": integer(1, 3650)},
    },
    "secrets": _RULE,
    "pki": {
        "source": _one_of("salt", "pillar"),
        "days_valid": integer(1, 3650),
        "renew_before_days": integer(1, 3649),
    },
    "controlplane": {
        "bin_dir": _path,
        "config_dir": _path,
        "pki_dir": _path,
        "unit_dir": _path,
        "binaries": _RULE,
        "apiserver_port": port_rule,
        "controller_manager_port": port_rule,
        "scheduler_port": port_rule,
        "audit_log_path": _path,
        "service_account_issuer": url_rule,
        "verbosity": integer(0, 10),
        "extra_args": _RULE,
        "ready_timeout": positive,
    },
    "rbac": {
        "apply_from": _RULE,
        "kubeconfig": _path,
        "ready_timeout": positive,
        "cluster_role": {
            "name": _string,
            "annotations": _labels,
            "labels": _labels,
            "rules": [POLICY_RULE],
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
            "priority_base": integer(1, 254),
            "script_user": _word,
            "check_command": _command,
            "track_file": _nullable(_path),
            "advert_int": positive,
            "check_interval": positive,
            "check_weight": integer(-253, 253),
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
            "selinux_booleans": name_list,
            "selinux_pkgs": name_list,
            "maxconn": _count,
            "http_port": port_rule,
            "tls_port": port_rule,
            "verifyhost": _dns_name,
            "server_maxconn": _count,
            "server_maxqueue": integer(0),
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
            "retries": integer(0),
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


def unknown_key(errors: Errors, where: str, key: Any, valid: list[str]) -> None:
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


def walk(
    errors: Errors, node: dict[str, Any], spec: dict[str, Any], path: str, quiet_absent: bool
) -> None:
    for key in node:
        if key not in spec:
            unknown_key(errors, f"{path}{key}", key, list(spec))
    for key, check in spec.items():
        where = f"{path}{key}"
        if key not in node and quiet_absent:
            continue  # an unknown profile sets nothing: the profile's error says so
        value = node.get(key)
        # What a message may show of the value: never a secret-looking key's.
        shown = masked(value, _looks_secret(key))
        if isinstance(check, list):
            _walk_entries(errors, value, check[0], where)
        elif isinstance(check, dict):
            if value is None:
                errors.add(where, f"missing (expected a mapping with {', '.join(check)})")
            elif not isinstance(value, dict):
                errors.add(where, f"expected a mapping, got {kind(shown)}")
            else:
                walk(errors, value, check, f"{where}:", quiet_absent)
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
            f"got {kind(masked(value))}",
        )
        return
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            errors.add(
                f"{where}:{index}",
                f"expected a mapping with {', '.join(spec)}, got {kind(masked(entry))}",
            )
        else:
            walk(errors, entry, spec, f"{where}:{index}:", quiet_absent=True)
