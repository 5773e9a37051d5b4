"""
The encryption keys of Secrets at rest (docs/encryption.md): which keys a controller's
encryption config lists, in which order, and how a rotation steps through them.

The upstream procedure (kubernetes.io, "Encrypting Confidential Data at Rest", "Rotate a
decryption key"), one step per rolling restart of the apiservers:

1. ``add``: the new key is listed second: every apiserver can read it, none writes it yet;
2. ``promote``: the new key first: every apiserver writes it and still reads the old one;
3. every Secret is rewritten (read and replaced), so that etcd holds it under the new key;
4. ``retire``: the old key leaves the config. The master keeps it, retired, so that a
   snapshot taken before the rotation can still be read (orch.restore lists it again).

The state lives on the master beside the cluster's CA (``encryption_keys.json``, 0600), the
k8s_pki ext_pillar gives its active keys to the controllers as ``secrets:encryption_keys``.
A cluster made before rotations had one file, ``encryption_key``: that is ``key1``.
"""

import base64
import binascii
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from typing import Any

from .files import write_private

STATE_FILE = "encryption_keys.json"
FIRST_KEY_FILE = "encryption_key"
# The names the formula gives; an operator's own list (pki:source pillar) may name keys freely
# within what the apiserver accepts in the etcd prefix (k8s:enc:aescbc:v1:<name>:).
KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
KEY_SIZES = (16, 24, 32)  # aescbc: AES-128, -192 or -256
STEPS = ("add", "promote", "retire")


def encryption_keys(secrets: Any) -> list[dict[str, str]]:
    """
    The keys a controller's encryption config lists, the writing key first, from the pillar's
    ``secrets``: ``encryption_keys`` (a list of {name, secret}) or the single
    ``encryption_key`` (``key1``). Empty when neither is given (the validation names it).
    """
    if not isinstance(secrets, dict):
        return []
    listed = secrets.get("encryption_keys")
    if isinstance(listed, list) and listed:
        return [
            {"name": str(k.get("name")), "secret": str(k.get("secret"))}
            for k in listed
            if isinstance(k, dict)
        ]
    if secrets.get("encryption_key"):
        return [{"name": "key1", "secret": str(secrets["encryption_key"])}]
    return []


def key_size(secret: Any) -> int | None:
    try:
        return len(base64.b64decode(str(secret), validate=True))
    except (binascii.Error, ValueError):
        return None


def encryption_key_errors(secrets: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for every fault in the pillar's encryption keys, all at once."""
    errors = []
    listed, single = secrets.get("encryption_keys"), secrets.get("encryption_key")
    if listed is not None and single:
        errors.append(
            (
                "secrets:encryption_keys",
                "give encryption_keys (a list, the writing key first) or encryption_key "
                "(one key, named key1), not both",
            )
        )
    if listed is None:
        if single and key_size(single) not in KEY_SIZES:
            errors.append(
                ("secrets:encryption_key", "valid: base64 of 16, 24 or 32 bytes (aescbc)")
            )
        return errors
    if not isinstance(listed, list) or not listed:
        return [
            *errors,
            (
                "secrets:encryption_keys",
                "expected a non-empty list of {name, secret}, the writing key first",
            ),
        ]
    names: dict[str, int] = {}
    secrets_seen: dict[str, int] = {}
    for index, entry in enumerate(listed):
        where = f"secrets:encryption_keys:{index}"
        if not isinstance(entry, dict) or set(entry) != {"name", "secret"}:
            errors.append((where, "expected {name, secret} and nothing else"))
            continue
        name, secret = entry["name"], entry["secret"]
        if not isinstance(name, str) or not KEY_NAME_RE.match(name):
            errors.append((f"{where}:name", "valid: letters, digits, '_', '.', '-' (1-63)"))
        elif name in names:
            errors.append((f"{where}:name", f"duplicate of entry {names[name]} ({name!r})"))
        else:
            names[name] = index
        if key_size(secret) not in KEY_SIZES:
            errors.append((f"{where}:secret", "valid: base64 of 16, 24 or 32 bytes (aescbc)"))
        elif str(secret) in secrets_seen:
            errors.append((f"{where}:secret", f"the same key as entry {secrets_seen[str(secret)]}"))
        else:
            secrets_seen[str(secret)] = index
    return errors


def rotation_phase(state: dict[str, Any]) -> str:
    """
    Where a rotation stands: ``steady`` (no rotation), ``added`` (the new key listed second),
    ``promoted`` (the new key first, the old still listed), ``retiring`` (the old key out of
    the list, its roll-out not yet checked on every apiserver).
    """
    if state.get("finishing"):
        return "retiring"
    new = state.get("rotating_to")
    if not new:
        return "steady"
    return "promoted" if state["keys"][0]["name"] == new else "added"


def next_key_name(state: dict[str, Any]) -> str:
    """key<N+1>, N the highest number of any key the cluster had (retired ones too)."""
    numbers = [
        int(k["name"][3:])
        for k in [*state.get("keys", []), *state.get("retired", [])]
        if re.fullmatch(r"key[0-9]+", k["name"])
    ]
    return f"key{max(numbers, default=0) + 1}"


def rotated_keys(
    state: dict[str, Any], step: str, new_secret: str | None = None, now: str | None = None
) -> dict[str, Any]:
    """
    The state after ``step`` (add, promote, retire). Each is a no-op where the rotation
    already stands, so that a rotation that stopped half-way resumes; an out-of-order step
    raises ValueError.
    """
    phase = rotation_phase(state)
    keys = [dict(k) for k in state["keys"]]
    result = {**state, "keys": keys, "retired": [dict(k) for k in state.get("retired", [])]}
    if phase == "retiring" and step in STEPS:
        return result  # resumed: the retire step's roll-out is finished by running it again
    if step == "add":
        if phase != "steady":
            return result  # resumed: the key added before stays the new one
        if not new_secret:
            raise ValueError("add: a new secret is needed")
        name = next_key_name(state)
        result["keys"] = [*keys, {"name": name, "secret": new_secret}]
        result["rotating_to"] = name
        return result
    if step == "promote":
        if phase == "steady":
            raise ValueError("promote: no rotation under way (add first)")
        new = state["rotating_to"]
        result["keys"] = [k for k in keys if k["name"] == new] + [
            k for k in keys if k["name"] != new
        ]
        return result
    if step == "retire":
        if phase == "steady":
            return result  # done before
        if phase != "promoted":
            raise ValueError("retire: the new key does not write yet (promote first)")
        stamp = now or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        result["keys"] = keys[:1]
        result["retired"] += [{**k, "retired": stamp} for k in keys[1:]]
        result["rotating_to"] = None
        result["finishing"] = "retire"  # until its roll-out is checked (finished_keys)
        return result
    raise ValueError(f"unknown step {step!r} (valid: {', '.join(STEPS)})")


def relisted_keys(state: dict[str, Any], taken: datetime.datetime) -> dict[str, Any]:
    """
    The state for a restore of a snapshot ``taken`` then: every key retired after that (less
    an hour, for clocks that differ) may still hold its Secrets, so it is listed again, after
    the active keys (read, not written), and the rotation stands at ``promoted`` towards the
    writing key, so that the rotation's rewrite and retire steps (orch.rotate_encryption_key)
    store them under it again and retire those keys once more. Nothing retired since: the
    state as it is.
    """
    # an hour's margin: the snapshot's time is a controller's clock, the retirement the
    # master's; a key listed again needlessly only reads, one missed loses Secrets
    earlier = taken - datetime.timedelta(hours=1)
    stamp = earlier.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    retired = [dict(k) for k in state.get("retired", [])]
    again = [k for k in retired if k.get("retired", "") > stamp]
    if not again:
        return {**state, "keys": [dict(k) for k in state["keys"]], "retired": retired}
    active = [dict(k) for k in state["keys"]]
    listed = {k["name"] for k in active}
    base = {k: v for k, v in state.items() if k != "finishing"}  # promoted again, not retiring
    return {
        **base,
        "keys": active
        + [{"name": k["name"], "secret": k["secret"]} for k in again if k["name"] not in listed],
        "rotating_to": state.get("rotating_to") or active[0]["name"],
        "retired": [k for k in retired if k not in again],
    }


def finished_keys(state: dict[str, Any]) -> dict[str, Any]:
    """The state once the retire step's roll-out is checked: steady."""
    return {k: v for k, v in state.items() if k != "finishing"}


def stored_under(value: bytes) -> str:
    """
    Which key a Secret's value in etcd is stored under: the aescbc key's name from the
    ``k8s:enc:aescbc:v1:<name>:`` prefix, another provider's ``k8s:enc:<provider>``, or
    ``identity`` (not encrypted).
    """
    if not value.startswith(b"k8s:enc:"):
        return "identity"
    parts = value.split(b":", 5)
    if len(parts) >= 5 and parts[2] == b"aescbc":
        return parts[4].decode("ascii", "replace")
    return "k8s:enc:" + parts[2].decode("ascii", "replace")


# --- the state on the master (the ext_pillar and the k8s_encryption runner) ------------------


@contextlib.contextmanager
def keys_locked(directory: str) -> Iterator[None]:
    """One writer at a time in a cluster's folder (the ext_pillar's workers, the runner)."""
    fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def rotation_locked(directory: str) -> Iterator[None]:
    """
    One rotation step at a time per cluster (k8s_encryption and k8s_ca): held for the whole
    step, roll-out included; a second step while one runs is refused (RuntimeError), not
    queued, since it would decide on a state the first is about to change.
    """
    fd = os.open(
        os.path.join(directory, ".rotation.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
    )
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RuntimeError(
                "another rotation step of this cluster is running; wait for it to end"
            ) from exc
        yield
    finally:
        os.close(fd)


def key_digest(secret: str) -> str:
    """The first 16 hex digits of a key's SHA-256: tells two keys of one name apart, and
    reveals nothing of a 256-bit random key."""
    return hashlib.sha256(str(secret).encode()).hexdigest()[:16]


def read_key_state(directory: str) -> dict[str, Any] | None:
    """The cluster's key state, or None when the master holds no key for it yet."""
    path = os.path.join(directory, STATE_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    first = os.path.join(directory, FIRST_KEY_FILE)
    if os.path.exists(first):
        with open(first, encoding="utf-8") as handle:
            secret = handle.read().strip()
        return {"keys": [{"name": "key1", "secret": secret}], "rotating_to": None, "retired": []}
    return None


def write_key_state(directory: str, state: dict[str, Any]) -> None:
    """Write the state 0600 under a temporary name and rename it into place (never torn)."""
    write_private(os.path.join(directory, STATE_FILE), json.dumps(state, indent=1) + "\n")
