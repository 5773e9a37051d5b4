"""
Rotating the cluster CA the master keeps (docs/pki.md, "Rotating the CA"), following
upstream's manual procedure (kubernetes.io, "Manual Rotation of CA Certificates"): both CAs
trusted everywhere first, then every leaf re-issued from the new one, then the old one dropped.

What the k8s_pki ext_pillar gives as ``secrets:ca.pem`` (a bundle during a rotation: the CA
that signs first, as every reader of a single CA takes the first certificate of the file:
the x509 states' signing_cert, kube-controller-manager's --cluster-signing-cert-file) and
``secrets:ca-key.pem`` (the signing CA's key):

===========  ===============  ==========
phase        ca.pem           ca-key.pem
===========  ===============  ==========
(none)       old              old
``trust``    old + new        old
``sign``     new + old        new
===========  ===============  ==========

``drop`` ends it (the phase ``drop`` until its roll-out is checked; the ext_pillar then
gives the new CA alone, from ``ca-next*`` or, once swapped, ``ca*``): the new CA becomes
``ca.pem`` and ``ca-key.pem`` on the master, the old certificate is kept as
``ca-retired-<time>.pem`` and its key is deleted (nothing trusts it any more). The state is
``ca_rotation.json`` in the cluster's folder; the new CA is made by the ext_pillar as
``ca-next.pem`` and ``ca-next-key.pem`` (the one place a CA is made).
"""

import datetime
import json
import os
from typing import Any

from .files import write_private

STATE_FILE = "ca_rotation.json"
NEXT = "ca-next"
PHASES = ("trust", "sign", "drop")
CA_STEPS = ("trust", "sign", "drop")


def read_ca_rotation(directory: str) -> dict[str, Any] | None:
    """The rotation under way in a cluster's folder ({phase, label, started}), or None."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_ca_rotation(directory: str, state: dict[str, Any] | None) -> None:
    """Write the state 0600 (renamed into place), or remove it with None."""
    path = os.path.join(directory, STATE_FILE)
    if state is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    write_private(path, json.dumps(state, indent=1) + "\n")


def ca_given(
    phase: str | None, old: tuple[str, str], new: tuple[str, str] | None
) -> tuple[str, str]:
    """(ca.pem, ca-key.pem) the controllers get in ``phase`` from the old and new (cert, key)."""
    if phase is None or new is None:
        return old
    if phase == "drop":
        return new  # the new CA alone, wherever the master's swap of its files stands
    if phase == "trust":
        return _bundle(old[0], new[0]), old[1]
    if phase == "sign":
        return _bundle(new[0], old[0]), new[1]
    raise ValueError(f"unknown CA rotation phase {phase!r} (valid: {', '.join(PHASES)})")


def _bundle(first: str, second: str) -> str:
    return first.rstrip("\n") + "\n" + second.rstrip("\n") + "\n"


def ca_rotation_step(
    state: dict[str, Any] | None, step: str, now: datetime.datetime | None = None
) -> dict[str, Any] | None:
    """
    The rotation's state after ``step``: ``trust`` starts one (a no-op while one is under
    way), ``sign`` follows ``trust`` (a no-op when done), ``drop`` marks the swap of the
    master's files (the runner removes the state once the roll-out is checked, so that a
    re-run finishes a drop whose roll-out failed instead of starting a rotation). Out of
    order: ValueError.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    phase = (state or {}).get("phase")
    if step == "trust":
        if phase is not None:
            return state  # resumed: the new CA made before stays the new one
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        return {"phase": "trust", "label": stamp, "started": now.isoformat()}
    if step == "sign":
        if phase is None:
            raise ValueError("sign: no CA rotation under way (trust first)")
        if phase == "drop":
            return state  # resumed past it: the drop step finishes the rotation
        return {**state, "phase": "sign"}  # type: ignore[dict-item]
    if step == "drop":
        if phase == "trust":
            raise ValueError("drop: the leaves are not re-issued from the new CA yet (sign first)")
        if phase is None:
            return None  # nothing under way (or ended): nothing to swap
        return {**state, "phase": "drop"}  # type: ignore[dict-item]
    raise ValueError(f"unknown step {step!r} (valid: {', '.join(CA_STEPS)})")


def retire_ca_files(directory: str, stamp: str) -> list[str]:
    """
    On the master, the new CA becomes the cluster's: the old certificate kept as
    ``ca-retired-<stamp>.pem``, its key deleted, ``ca-next*`` renamed to ``ca.pem`` and
    ``ca-key.pem``. Each move is a rename, in an order that a re-run after a crash completes
    (the key first: a certificate is never left without its key). Returns what it did.
    """
    done = []
    paths = {n: os.path.join(directory, n) for n in ("ca.pem", "ca-key.pem")}
    nxt = {n: os.path.join(directory, f"{NEXT}{n[2:]}") for n in ("ca.pem", "ca-key.pem")}
    retired = os.path.join(directory, f"ca-retired-{stamp}.pem")
    if os.path.exists(nxt["ca-key.pem"]):
        if not os.path.exists(retired):
            with open(paths["ca.pem"], encoding="utf-8") as handle:
                old = handle.read()
            write_private(retired, old, replace=False)
            done.append(f"kept the old CA as {os.path.basename(retired)}")
        os.replace(nxt["ca-key.pem"], paths["ca-key.pem"])
        done.append("the new CA's key is ca-key.pem (the old key deleted)")
    if os.path.exists(nxt["ca.pem"]):
        os.replace(nxt["ca.pem"], paths["ca.pem"])
        done.append("the new CA is ca.pem")
    return done
