"""
The certificate watch on the master (docs/pki.md, "Expiry and renewal"): which certificates
each controller holds and when each expires (``k8s_pki.expiry``), and renewal without a
person through the rolling, gated orchestration, never from a minion's own state run.

    salt-run k8s_certs.check            # every controller's certificates, soonest first
    salt-run k8s_certs.renew            # what the master's schedule runs (daily)

A schedule on the master rather than a beacon on each controller: the renewal must go
through ``orch.control_plane`` (one apiserver and one etcd member at a time, drained and
gated), which only the master can start, and one job per day is enough for certificates
that live a year. Master configuration::

    schedule:
      k8s-cert-renewal:
        function: k8s_certs.renew
        hours: 24
        run_on_start: False
        maxrunning: 1
"""

import logging
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_certs"


def __virtual__():
    return __virtualname__


def _cluster(name, command):
    return __salt__["salt.cmd"]("k8s_orchestration.cluster", name, command)


def _expiry(ids):
    # timeout: without a return after it, the client asks whether the job still runs
    return __utils__["k8s_control_plane.ask_minions"](__opts__, ids, "k8s_pki.expiry", 30)


def check(cluster: str | None = None) -> dict[str, Any]:
    """
    Every controller's certificates with their days left (k8s_pki.expiry), and which are
    within the renewal margin (``pki:renew_before_days``). Read-only.

    cluster
        The cluster (``k8s_control_plane:cluster``); optional with one on the master.

    CLI Example:

    .. code-block:: bash

        salt-run k8s_certs.check
    """
    found = _cluster(cluster, "k8s_certs.check")
    expiry, errors = _expiry(found["controllers"])
    return {
        "cluster": found["cluster"],
        "due": {m: e["due"] for m, e in expiry.items() if e["due"]},
        "renew": {m: e["renew"] for m, e in expiry.items() if e.get("renew")},
        "controllers": {m: e["comment"] for m, e in expiry.items()},
        "errors": errors,
    }


def _not_renewal(pending, root, renewing):
    """
    What keeps a renewal from running alone: on a controller ``renewing``, no PKI change
    pending (the orchestration would not re-issue what is due); anywhere, a pending line
    outside the PKI files and the restarts they cause (the services and their gates), or
    a state that would fail.
    """
    follows = ("service-running", "k8s_etcd-", "k8s_health-", "turn_")
    other = []
    for minion, lines in pending.items():
        changes_pki = False
        for line in (str(line) for line in lines):
            state, _, what = line.partition(":")
            if what.strip() != "would change":
                other.append(f"{minion}: {line}")
            elif state.startswith(f"{root}-pki-"):
                changes_pki = True
            elif not any(f in state for f in follows):
                other.append(f"{minion}: {line}")
        if minion in renewing and not changes_pki:
            other.append(f"{minion}: certificates due, but no PKI change pending")
    return other


def renew(cluster: str | None = None) -> dict[str, Any]:
    """
    Renew the certificates within the renewal margin on any controller by running
    ``orch.control_plane`` (the rolling, gated path: each apiserver drained before its
    restart, etcd's members one at a time), when that is all the orchestration would do.
    Nothing due: nothing runs. Other changes pending as well (a pillar edit not applied
    yet): nothing runs, and they are named, since a person should apply those.

    cluster
        The cluster; optional with one on the master.

    CLI Example:

    .. code-block:: bash

        salt-run k8s_certs.renew
    """
    found = _cluster(cluster, "k8s_certs.renew")
    name, ids = found["cluster"], found["controllers"]
    expiry, errors = _expiry(ids)
    if errors:
        raise CommandExecutionError(
            f"k8s_certs: no renewal for {name}: "
            + "; ".join(f"{m}: {e}" for m, e in errors.items())
        )
    due = {m: e["renew"] for m, e in expiry.items() if e.get("renew")}
    by_hand = {m: sorted(set(e["due"]) - set(e.get("renew") or [])) for m, e in expiry.items()}
    by_hand = {m: files for m, files in by_hand.items() if files}
    if by_hand:
        log.warning("k8s_certs: %s: due, to be replaced by a person: %s", name, by_hand)
    if not due:
        soonest = min(
            (e["soonest"]["days_left"] for e in expiry.values() if e.get("soonest")), default=None
        )
        comment = f"nothing the orchestration renews is due (soonest: {soonest})"
        if by_hand:
            comment += "; due, and not renewed by the formula (a CA, or the pillar's): " + (
                "; ".join(f"{m}: {', '.join(f)}" for m, f in by_hand.items())
            )
        return {"cluster": name, "renewed": False, "by_hand": by_hand, "comment": comment}
    plan = __salt__["salt.cmd"]("k8s_orchestration.pending", ids, found["root"], expected=found)
    other = _not_renewal(plan.get("pending") or {}, found["root"], due)
    if other:
        log.warning("k8s_certs: %s: certificates due but other changes pending: %s", name, other)
        return {
            "cluster": name,
            "renewed": False,
            "due": due,
            "comment": "certificates are due, but orch.control_plane would change more than "
            "them, so it was not run: apply the pending changes (salt-run state.orchestrate "
            "orch.control_plane test=True shows them)",
            "other_changes": other[:50],
        }
    log.warning("k8s_certs: %s: renewing %s through orch.control_plane", name, due)
    result = __salt__["state.orchestrate"]("orch.control_plane", pillar={"cluster": name})
    steps = __utils__["k8s_control_plane.nested_run"](
        result, "k8s_certs: the renewal's orch.control_plane"
    )
    after, _ = _expiry(ids)
    still = {m: e["renew"] for m, e in after.items() if e.get("renew")}
    if still:
        raise CommandExecutionError(f"k8s_certs: still due after orch.control_plane: {still}")
    log.warning("k8s_certs: %s: renewed through orch.control_plane (%s steps)", name, steps)
    return {"cluster": name, "renewed": True, "due": due, "steps": steps}
