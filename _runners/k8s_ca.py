"""
Rotating the cluster CA the master keeps (docs/pki.md, "Rotating the CA"): upstream's manual
procedure as three steps, each rolled out by ``orch.control_plane`` (the rolling, gated
path: etcd's members one at a time, each apiserver drained before its restart) and checked
on every controller. ``orch.rotate_ca`` runs them in order:

    salt-run k8s_ca.status             # the CAs each controller trusts, who signed what
    salt-run k8s_ca.rotate trust       # then sign, then drop

trust
    A new CA (made by the k8s_pki ext_pillar) trusted everywhere beside the old one:
    ca.pem becomes old + new in every place that reads it (the apiserver's client CA, the
    controller-manager's root CA, etcd's peer and client CA, haproxy's backend ca-file,
    every kubeconfig). The old CA still signs.
sign
    The new CA signs: ca.pem becomes new + old, and every leaf is re-issued from the new
    CA, one controller at a time.
drop
    The old CA leaves every file; on the master the new CA becomes the cluster's (the old
    certificate kept, its key deleted). Refused while a certificate signed by the old CA
    remains.

ServiceAccount tokens stay valid throughout: they are signed by the service-account key,
which is not the CA and does not change. Clients outside the cluster (an operator's
kubeconfig) need the bundle before ``sign`` and a new certificate before ``drop``.
"""

import datetime
import logging
import os
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_ca"

ANSWER_TIMEOUT = 30  # seconds without a return before the client asks (find_job)
STEPS = ("trust", "sign", "drop")


def __virtual__():
    return __virtualname__


def _rules(name):
    return __utils__[f"k8s_control_plane.{name}"]


def _cluster(name, command):
    return __salt__["salt.cmd"]("k8s_orchestration.cluster", name, command)


def _directory(cluster):
    directory = _rules("cluster_keys_dir")(__opts__, cluster, "k8s_ca")
    if not os.path.exists(os.path.join(directory, "ca.pem")):
        raise CommandExecutionError(
            f"k8s_ca: the master keeps no CA of {cluster} (it does with pki:source salt and "
            "etcd:managed; a CA the pillar gives is rotated by its owner: docs/pki.md)"
        )
    return directory


def _fingerprint(directory, name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    return cert.fingerprint(hashes.SHA256()).hex()[:16]


def _trust(ids):
    """{controller: k8s_pki.trust}; raises naming the controllers that do not answer."""
    found, errors = _rules("ask_minions")(__opts__, ids, "k8s_pki.trust", ANSWER_TIMEOUT)
    if errors:
        raise CommandExecutionError("k8s_ca: " + "; ".join(f"{m}: {e}" for m, e in errors.items()))
    return found


def _wrong(trust, cas, signer):
    """
    What differs on each controller from ``cas`` (every CA file holds exactly those, in
    order) and ``signer`` (every certificate signed by that CA), as readable lines.
    """
    lines = []
    for minion, seen in sorted(trust.items()):
        for what, held in sorted(seen["cas"].items()):
            if held != cas:
                lines.append(f"{minion}: {what} holds {held}, not {cas}")
        for what, by in sorted(seen["signed_by"].items()):
            if signer is not None and by != signer:
                lines.append(f"{minion}: {what} signed by {by}, not {signer}")
    return lines


def _roll(cluster, why):
    log.warning("k8s_ca: %s: %s through orch.control_plane", cluster, why)
    result = __salt__["state.orchestrate"]("orch.control_plane", pillar={"cluster": cluster})
    steps = _rules("nested_run")(result, f"k8s_ca: {why}: orch.control_plane")
    return steps


def status(cluster: str | None = None) -> dict[str, Any]:
    """
    The CA rotation's phase on the master (none, trust, sign), the fingerprints of the
    master's CA and of the one a rotation moves to, and each controller's view
    (k8s_pki.trust: the CAs each file holds, which CA signed each certificate).

    cluster
        The cluster; optional with one on the master.

    CLI Example:

    .. code-block:: bash

        salt-run k8s_ca.status
    """
    found = _cluster(cluster, "k8s_ca.status")
    name = found["cluster"]
    directory = _directory(name)
    rotation = _rules("read_ca_rotation")(directory) or {}
    return {
        "cluster": name,
        "phase": rotation.get("phase"),
        "ca": _fingerprint(directory, "ca.pem"),
        "next": _fingerprint(directory, "ca-next.pem"),
        "controllers": _trust(found["controllers"]),
    }


def rotate(step: str, cluster: str | None = None) -> dict[str, Any]:
    """
    One step of a CA rotation (orch.rotate_ca runs them in order), rolled out by
    orch.control_plane and checked on every controller; a step where the rotation already
    stands changes nothing on the master, so a rotation that stopped half-way resumes.

    step
        ``trust``, ``sign`` or ``drop`` (see the module's documentation). ``trust`` is
        refused unless orch.control_plane has nothing else to change, and takes an etcd
        snapshot first; ``drop`` is refused while a certificate signed by the old CA
        remains.

    cluster
        The cluster; optional with one on the master.

    CLI Example:

    .. code-block:: bash

        salt-run k8s_ca.rotate trust
        salt-run k8s_ca.rotate drop cluster=hardway
    """
    if step not in STEPS:
        raise CommandExecutionError(f"k8s_ca: unknown step {step!r}; valid: {', '.join(STEPS)}")
    found = _cluster(cluster, f"k8s_ca.rotate {step}")
    directory = _directory(found["cluster"])
    try:
        with _rules("rotation_locked")(directory):
            return _rotate(step, found, directory)
    except RuntimeError as exc:
        raise CommandExecutionError(f"k8s_ca: refused, nothing changed: {exc}") from exc


def _expected(phase, ca, new):
    """(the CAs every file holds, the CA that signed every certificate) in a phase."""
    if phase == "drop":  # the new CA alone: ca-next until the master's swap, then ca.pem
        return [new or ca], new or ca
    return {"trust": ([ca, new], ca), "sign": ([new, ca], new)}.get(str(phase), ([ca], ca))


def _rotate(step, found, directory):
    """One step, under the cluster's rotation lock: the state read here is the one changed."""
    name, ids = found["cluster"], found["controllers"]
    state = _rules("read_ca_rotation")(directory)
    try:
        after = _rules("ca_rotation_step")(state, step)
    except ValueError as exc:
        raise CommandExecutionError(f"k8s_ca: refused, nothing changed: {exc}") from exc
    phase = (state or {}).get("phase")
    if after != state and phase in ("trust", "sign"):
        # every controller must stand where the rotation does before it moves on: sign with
        # peers that do not trust the new CA yet, or drop with leaves of the old, would break
        ca, new = _fingerprint(directory, "ca.pem"), _fingerprint(directory, "ca-next.pem")
        wrong = _wrong(_trust(ids), *_expected(phase, ca, new))
        if wrong:
            raise CommandExecutionError(
                f"k8s_ca: refused, nothing changed: not every controller is where the {phase} "
                f"step leads (run it again): " + "; ".join(wrong[:10])
            )
    if step == "trust" and state is None:
        plan = __salt__["salt.cmd"]("k8s_orchestration.pending", ids, found["root"], expected=found)
        if plan.get("pending"):
            raise CommandExecutionError(
                "k8s_ca: refused, nothing changed: orch.control_plane has other changes to "
                "make first (salt-run state.orchestrate orch.control_plane test=True shows "
                f"them): {sorted(plan['pending'])}"
            )
        taken = __salt__["k8s_snapshot.take"](cluster=name, reason="CA rotation")
        if not isinstance(taken, dict) or not taken.get("name"):
            raise CommandExecutionError(
                f"k8s_ca: refused, nothing changed: no etcd snapshot could be taken first ({taken})"
            )
        log.info("k8s_ca: %s: snapshot before the rotation: %s", name, taken["name"])
    done = []
    with _rules("keys_locked")(directory):
        if after != state:
            _rules("write_ca_rotation")(directory, after)
        if step == "drop" and after is not None:
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
            done = _rules("retire_ca_files")(directory, stamp)
    if done:
        log.warning("k8s_ca: %s: %s", name, "; ".join(done))
    steps = _roll(name, f"{step} ({phase} -> {(after or {}).get('phase')})")
    # the ext_pillar made the new CA at the first compile of the trust step; after the drop's
    # swap ca.pem is the new CA and there is no ca-next
    ca, new = _fingerprint(directory, "ca.pem"), _fingerprint(directory, "ca-next.pem")
    wanted = _expected((after or {}).get("phase"), ca, new)
    wrong = _wrong(_trust(ids), *wanted)
    if wrong:
        raise CommandExecutionError(
            f"k8s_ca: {step}: not every controller is where the step leads: "
            + "; ".join(wrong[:10])
        )
    if step == "drop" and after is not None:  # checked on every controller: the rotation ends
        with _rules("keys_locked")(directory):
            _rules("write_ca_rotation")(directory, None)
    return {
        "cluster": name,
        "step": step,
        "trusted": wanted[0],
        "signer": wanted[1],
        "master": done,
        "orchestration_steps": steps,
    }
