"""
The encryption keys of Secrets at rest and their rotation (docs/encryption.md), kept on the
master beside the cluster's CA (``encryption_keys.json``; the k8s_pki ext_pillar gives the
controllers the active keys). ``orch.rotate_encryption_key`` runs the steps in order:

    salt-run k8s_encryption.status           # the keys, each controller's config, etcd's counts
    salt-run k8s_encryption.rotate add         # then promote, rewrite, retire

Each of add, promote and retire changes the list, then rolls it out with ``orch.control_plane``
(the rolling, gated path: one apiserver drained and restarted at a time) and checks that every
controller's apiserver runs with it. ``rewrite`` stores every Secret again under the new key.
A step where the rotation already stands changes nothing, so a rotation that stopped half-way
resumes where it stood.
"""

import base64
import logging
import secrets as random
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_encryption"

# Seconds without a return before the client asks whether the job still runs (find_job).
ANSWER_TIMEOUT = 30
STEPS = ("add", "promote", "rewrite", "retire")


def __virtual__():
    return __virtualname__


def _rules(name):
    return __utils__[f"k8s_control_plane.{name}"]


def _cluster(name, command):
    return __salt__["salt.cmd"]("k8s_orchestration.cluster", name, command)


def _directory(cluster):
    return _rules("cluster_keys_dir")(__opts__, cluster, "k8s_encryption")


def _state(cluster):
    state = _rules("read_key_state")(_directory(cluster))
    if state is None:
        raise CommandExecutionError(
            f"k8s_encryption: the master keeps no encryption key of {cluster} (pki:source salt "
            "makes one: docs/encryption.md; with pki:source pillar the pillar's "
            "secrets:encryption_keys is rotated by editing it)"
        )
    return state


def _ask(ids, fun, **kwarg):
    """{controller: its answer} and {controller: why not} for one function on every one."""
    return _rules("ask_minions")(__opts__, ids, fun, ANSWER_TIMEOUT, **kwarg)


def _configs(ids):
    """{controller: the key names its apiserver runs with}; raises when one does not answer."""
    found, errors = _ask(ids, "k8s_pki.encryption_keys")
    if errors:
        raise CommandExecutionError(
            "k8s_encryption: " + "; ".join(f"{m}: {e}" for m, e in errors.items())
        )
    # each key as name:digest (two keys of one name differ); an apiserver that started before
    # its config last changed runs with an older list
    return {
        m: [f"{n}:{d}" for n, d in zip(a["names"], a.get("digests") or [], strict=False)]
        if a.get("loaded")
        else ["(not loaded yet)", *a["names"]]
        for m, a in found.items()
    }


def _names(state):
    return [k["name"] for k in state["keys"]]


def _listed(state):
    """The keys as _configs shows them: name:digest, the writing one first."""
    return [f"{k['name']}:{_rules('key_digest')(k['secret'])}" for k in state["keys"]]


def _differ(configs, names):
    return {m: got for m, got in configs.items() if got != names}


def _roll(name, ids, state, why):
    """orch.control_plane rolls the list out; then every apiserver must run with it."""
    log.warning("k8s_encryption: %s: %s through orch.control_plane", name, why)
    result = __salt__["state.orchestrate"]("orch.control_plane", pillar={"cluster": name})
    steps = _rules("nested_run")(result, f"k8s_encryption: {why}: orch.control_plane")
    differ = _differ(_configs(ids), _listed(state))
    if differ:
        raise CommandExecutionError(
            f"k8s_encryption: {why}: the apiservers do not run with {_listed(state)}: {differ} "
            "(does the pillar give secrets:encryption_key(s) itself?)"
        )
    return steps


def _etcd_counts(ids):
    """etcd's Secrets by key, read through the first controller that answers."""
    found, errors = _ask(ids, "k8s_etcd.secret_keys")
    for minion in ids:
        if minion in found:
            return found[minion]
    raise CommandExecutionError(
        "k8s_encryption: no controller read etcd: "
        + "; ".join(f"{m}: {e}" for m, e in errors.items())
    )


def status(cluster: str | None = None) -> dict[str, Any]:
    """
    The cluster's encryption keys as the master keeps them (names only: the writing one
    first, the rotation's phase, the retired ones), each controller's encryption config as
    its apiserver runs it, and etcd's Secrets counted by the key they are stored under.

    cluster
        The cluster; optional with one on the master.

    CLI Example:

    .. code-block:: bash

        salt-run k8s_encryption.status
    """
    found = _cluster(cluster, "k8s_encryption.status")
    name, ids = found["cluster"], found["controllers"]
    state = _state(name)
    return {
        "cluster": name,
        "keys": _names(state),
        "phase": _rules("rotation_phase")(state),
        "rotating_to": state.get("rotating_to"),
        "retired": [k["name"] for k in state.get("retired", [])],
        # names, as an operator reads them (the steps compare digests too)
        "controllers": {m: [e.split(":")[0] for e in c] for m, c in _configs(ids).items()},
        "etcd": _etcd_counts(ids),
    }


def rotate(step: str, cluster: str | None = None) -> dict[str, Any]:
    """
    One step of an encryption-key rotation (orch.rotate_encryption_key runs them in order):

    add
        A new key (32 random bytes) listed second, rolled out: every apiserver reads it,
        none writes it yet. Refused unless every apiserver runs with the master's list and
        nothing else is pending (the roll must change the encryption config only). A
        snapshot of etcd is taken first.
    promote
        The new key first, rolled out: every apiserver writes it and reads the old one.
    rewrite
        Every Secret stored again (under the new key): k8s_api.rewrite_secrets on the first
        controller whose apiserver answers; then etcd is read to prove it.
    retire
        The old key out of the config, rolled out; the master keeps it, retired, so that a
        snapshot taken before can still be read. Refused while etcd holds a Secret under it.

    cluster
        The cluster; optional with one on the master.

    CLI Example:

    .. code-block:: bash

        salt-run k8s_encryption.rotate add
        salt-run k8s_encryption.rotate rewrite cluster=hardway
    """
    name = step
    if name not in STEPS:
        raise CommandExecutionError(f"k8s_encryption: unknown step {name!r}; valid: {STEPS}")
    found = _cluster(cluster, f"k8s_encryption.rotate {name}")
    directory = _directory(found["cluster"])
    try:
        with _rules("rotation_locked")(directory):
            return _rotate(name, found, directory)
    except RuntimeError as exc:
        raise CommandExecutionError(f"k8s_encryption: refused, nothing changed: {exc}") from exc


def _rotate(name, found, directory):
    """One step, under the cluster's rotation lock: the state read here is the one changed."""
    cluster, ids = found["cluster"], found["controllers"]
    state = _state(cluster)
    phase = _rules("rotation_phase")(state)
    if name == "rewrite":
        return _rewrite(cluster, ids, state, directory)
    try:
        after = _rules("rotated_keys")(
            state, name, _new_key() if name == "add" and phase == "steady" else None
        )
    except ValueError as exc:
        raise CommandExecutionError(f"k8s_encryption: refused, nothing changed: {exc}") from exc
    if after != state:
        # the cluster must stand where the master's list says before the list moves on: every
        # apiserver runs with exactly these keys (names and digests)
        differ = _differ(_configs(ids), _listed(state))
        if differ:
            raise CommandExecutionError(
                f"k8s_encryption: refused, nothing changed: the apiservers do not all run with "
                f"the master's keys {_listed(state)}: {differ} (run orch.control_plane, or the "
                "step before, first; a pillar that gives secrets:encryption_key(s) itself is "
                "rotated by editing it)"
            )
    if name == "add" and after != state:
        plan = __salt__["salt.cmd"]("k8s_orchestration.pending", ids, found["root"], expected=found)
        if plan.get("pending"):
            raise CommandExecutionError(
                "k8s_encryption: refused, nothing changed: orch.control_plane has other "
                "changes to make first (salt-run state.orchestrate orch.control_plane "
                f"test=True shows them): {sorted(plan['pending'])}"
            )
        taken = __salt__["k8s_snapshot.take"](cluster=cluster, reason="encryption-key rotation")
        if not isinstance(taken, dict) or not taken.get("name"):
            raise CommandExecutionError(
                "k8s_encryption: refused, nothing changed: no etcd snapshot could be taken "
                f"first ({taken}); a rotation needs a managed etcd (etcd:managed) to prove "
                "its rewrite"
            )
        log.info("k8s_encryption: %s: snapshot before the rotation: %s", cluster, taken["name"])
    if name == "retire" and after != state:
        counts = _etcd_counts(ids)
        left = {k: n for k, n in counts["by_key"].items() if k != state["rotating_to"]}
        proof = state.get("rewritten") or {}
        if left or proof.get("to") != state["rotating_to"]:
            raise CommandExecutionError(
                f"k8s_encryption: refused: etcd still holds Secrets under {left}, or no "
                f"rewrite to {state['rotating_to']} was proven since the last change; run the "
                "rewrite step first (salt-run k8s_encryption.rotate rewrite)"
            )
        if proof.get("count") and not counts["total"]:
            raise CommandExecutionError(
                f"k8s_encryption: refused: {proof['count']} Secrets were rewritten but etcd "
                "shows none where k8s_etcd.secret_keys counts (/registry/secrets/)"
            )
    if after != state:
        with _rules("keys_locked")(directory):
            _rules("write_key_state")(directory, after)
    steps = _roll(cluster, ids, after, f"{name} ({_names(state)} -> {_names(after)})")
    if name == "retire" and _rules("rotation_phase")(after) == "retiring":  # checked: done
        after = _rules("finished_keys")(after)
        with _rules("keys_locked")(directory):
            _rules("write_key_state")(directory, after)
    return {
        "cluster": cluster,
        "step": name,
        "keys": _names(after),
        "was": _names(state),
        "retired": [k["name"] for k in after.get("retired", [])],
        "orchestration_steps": steps,
    }


def relist(snapshot: str, cluster: str | None = None) -> dict[str, Any]:
    """
    Before a restore (orch.restore runs it): list again every key retired after the snapshot
    was taken, after the active ones, so that the restored Secrets it may hold stay readable
    once the restore's control-plane step writes the encryption config and starts the
    apiservers. The rotation then stands at ``promoted``: ``orch.rotate_encryption_key``
    stores them under the writing key again and retires those keys once more. Nothing
    retired since the snapshot, or no keys kept on the master (pki:source pillar): nothing
    changes.

    snapshot
        The snapshot's file name (salt-run k8s_snapshot.list).

    CLI Example:

    .. code-block:: bash

        salt-run k8s_encryption.relist hardway_20261206T180000Z_k8s-controller-1_r123.db.sealed
    """
    found = _cluster(cluster, "k8s_encryption.relist")
    cluster = found["cluster"]
    parsed = _rules("parse_snapshot_name")(snapshot)
    if parsed is None or parsed["cluster"] != cluster:
        raise CommandExecutionError(f"k8s_encryption: {snapshot!r} is no snapshot of {cluster}")
    directory = _directory(cluster)
    state = _rules("read_key_state")(directory)
    if state is None:
        return {"cluster": cluster, "relisted": [], "comment": "no keys kept on the master"}
    after = _rules("relisted_keys")(state, parsed["taken"])
    if after != state:  # the restored Secrets may be under a relisted key: rewrite again
        after.pop("rewritten", None)
    again = [n for n in _names(after) if n not in _names(state)]
    if after != state:
        with _rules("keys_locked")(directory):
            _rules("write_key_state")(directory, after)
        log.warning("k8s_encryption: %s: %s listed again for a restore", cluster, again)
    return {
        "cluster": cluster,
        "keys": _names(after),
        "relisted": again,
        "comment": (
            f"{', '.join(again)} listed again (retired after the snapshot); then run "
            "orch.rotate_encryption_key to store every Secret under "
            f"{_names(after)[0]} again"
            if again
            else "no key was retired after the snapshot"
        ),
    }


def _rewrite(cluster, ids, state, directory):
    if _rules("rotation_phase")(state) == "retiring":  # resumed past it: nothing to rewrite
        return {"cluster": cluster, "step": "rewrite", "skipped": "the old key is retiring"}
    if _rules("rotation_phase")(state) != "promoted":
        raise CommandExecutionError(
            "k8s_encryption: rewrite: the new key does not write yet (add, then promote)"
        )
    differ = _differ(_configs(ids), _listed(state))
    if differ:
        raise CommandExecutionError(
            f"k8s_encryption: rewrite: the apiservers do not all run with {_listed(state)}: "
            f"{differ} (the promote step rolls it out)"
        )
    found, errors = {}, {}
    for minion in ids:  # one controller does it; the next when one cannot
        answer, error = _ask([minion], "k8s_api.rewrite_secrets")
        if minion in answer:
            found = {minion: answer[minion]}
            break
        errors.update(error)
    if not found:
        raise CommandExecutionError(
            "k8s_encryption: rewrite: " + "; ".join(f"{m}: {e}" for m, e in errors.items())
        )
    counts = _etcd_counts(ids)
    new = state["rotating_to"]
    left = {k: n for k, n in counts["by_key"].items() if k != new}
    if left:
        raise CommandExecutionError(
            f"k8s_encryption: rewrite: etcd still holds Secrets under {left} after it "
            f"(rewritten: {found}); run the step again"
        )
    ((minion, done),) = found.items()
    if done.get("rewritten") and not counts["by_key"].get(new):
        # a check that counted nothing proves nothing (another --etcd-prefix, another etcd)
        raise CommandExecutionError(
            f"k8s_encryption: rewrite: {done['rewritten']} Secrets rewritten, but etcd shows "
            f"none under {new} (k8s_etcd.secret_keys counts /registry/secrets/: another "
            "--etcd-prefix?); "
            "the retire step would not be safe"
        )
    # the proof the retire step asks for: every Secret stored under the new key, seen in etcd
    with _rules("keys_locked")(directory):
        _rules("write_key_state")(
            directory, {**state, "rewritten": {"to": new, "count": done.get("rewritten", 0)}}
        )
    return {"cluster": cluster, "step": "rewrite", "by": minion, **done, "etcd": counts["by_key"]}


def _new_key():
    """32 random bytes, base64: a new aescbc key (AES-256)."""
    return base64.b64encode(random.token_bytes(32)).decode()
