"""
Cluster-level states: pillar validation (on a controller), and the
orchestration's checks across the controllers (on the master): a single VIP
holder, etcd quorum, every apiserver ready, the seed's verification. The checks report
their findings in the comment and never as changes, so a converged cluster's
orchestration reports zero changes.
"""

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

__virtualname__ = "k8s_cluster"


def __virtual__():
    # validated runs on a controller (k8s_cluster.validate), the checks on
    # the master (saltutil.cmd); each function needs only its own.
    return __virtualname__


def validated(name: str) -> dict[str, Any]:
    """
    Fail, with every error at once, when this minion's cluster pillar is
    invalid. Every other state of this project requires this one, so an
    invalid pillar changes nothing. Fails in test mode too.

    name
        Any label (the cluster's name reads well).

    .. code-block:: yaml

        k8s_control_plane-cluster-validate-k8s_cluster-validated:
          k8s_cluster.validated:
            - name: hardway
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    report = __salt__["k8s_cluster.validate"]()
    log.debug("k8s_cluster.validated: %d error(s)", len(report["errors"]))
    if report["valid"]:
        ret["comment"] = "The cluster pillar is valid"
        return ret
    ret["result"] = False
    count = len(report["errors"])
    ret["comment"] = "Invalid cluster pillar ({} error{}):\n- {}".format(
        count, "" if count == 1 else "s", "\n- ".join(report["errors"])
    )
    return ret


def _check(name, prediction):
    """
    A check's return, passing so far; in test mode already final: result None
    and what the real run would wait for (a check changes nothing).
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if __opts__.get("test"):
        ret.update(result=None, comment=prediction)
    return ret


def _until(ask, done, timeout, interval):
    """ask() again every `interval` s until done(answer) or `timeout` s passed; the last answer."""
    deadline = time.monotonic() + float(timeout)
    while True:
        answer = ask()
        if done(answer) or time.monotonic() >= deadline:
            return answer
        time.sleep(float(interval))


def vip_single_holder(
    name: str,
    tgt: str | list[str],
    tgt_type: str = "compound",
    timeout: float = 60,
    interval: float = 0.5,
) -> dict[str, Any]:
    """
    Wait (bounded, polling) until exactly one of the targeted controllers
    holds the VIP. Runs on the master, in an orchestration.

    name
        A label; each controller checks the VIP of its own pillar.

    tgt, tgt_type
        The controllers of the cluster.

    timeout
        Seconds to wait before failing.

    .. code-block:: yaml

        orch-vip-single-holder:
          k8s_cluster.vip_single_holder:
            - name: vip
            - tgt: 'I@k8s_control_plane:cluster:hardway'
    """
    ret = _check(name, f"Would wait up to {timeout}s for exactly one holder of the VIP")
    if ret["result"] is None:
        return ret

    def holders_of(answers):
        return sorted(m for m, r in answers.items() if r.get("ret") is True)

    answers = _until(
        lambda: __salt__["saltutil.cmd"](
            tgt, "k8s_health.holds_vip", tgt_type=tgt_type, timeout=10
        ),
        lambda answers: len(holders_of(answers)) == 1,
        timeout,
        interval,
    )
    holders = holders_of(answers)
    log.debug("k8s_cluster.vip_single_holder: holders %s", holders)
    if len(holders) == 1:
        ret["comment"] = f"{holders[0]} holds the VIP"
        return ret
    ret["result"] = False
    silent = sorted(m for m, r in answers.items() if not isinstance(r.get("ret"), bool))
    ret["comment"] = (
        f"After {timeout}s, {len(holders)} controllers hold the VIP (expected exactly 1): "
        f"{holders or 'none'}" + (f"; no answer from {silent}" if silent else "")
    )
    return ret


# Salt's timeout of a job is when it starts asking (saltutil.find_job) whether
# each silent minion still runs it: it keeps waiting for those that do (a long
# wait_ready is fine) and gives up on a dead one a gather_job_timeout later. A
# timeout as long as the longest wait made a minion killed mid-run hang the
# orchestration for 15 minutes.
ANSWER_TIMEOUT = 15


def _call(tgt, tgt_type, fun, kwarg=None, timeout=ANSWER_TIMEOUT):
    """
    Run fun on the controllers; return ({minion: return}, {minion: error}). A
    listed controller that did not answer (its minion down) is an error, never
    left out: a check must not pass on the controllers that happened to answer.
    """
    answers = __salt__["saltutil.cmd"](
        tgt, fun, tgt_type=tgt_type, kwarg=kwarg or {}, timeout=timeout
    )
    good, bad = {}, {}
    for minion, answer in sorted(answers.items()):
        if not isinstance(answer, dict) or answer.get("retcode", 0) != 0 or answer.get("failed"):
            error = answer.get("ret") if isinstance(answer, dict) else answer
            bad[minion] = error if error is not None else "no answer (minion down?)"
        else:
            good[minion] = answer.get("ret")
    if tgt_type == "list":
        listed = tgt if isinstance(tgt, list) else str(tgt).split(",")
        for minion in sorted(set(listed) - set(answers)):
            bad[minion] = "no answer (minion down?)"
    if not answers and not bad:
        bad["(none)"] = f"no minion matched {tgt}"
    return good, bad


def etcd_quorum(
    name: str,
    tgt: str | list[str],
    tgt_type: str = "compound",
    timeout: float = 30,
    interval: float = 0.5,
) -> dict[str, Any]:
    """
    Wait (bounded, polling) until every targeted controller sees a majority
    of the apiservers' etcd servers healthy (k8s_health.etcd); otherwise
    fail naming each server and its answer, before the control plane is
    touched: restarting apiservers on an etcd without quorum cannot make them
    ready and takes away the reads they still serve from their watch cache.
    Passes with a comment when no controller has an etcd client certificate
    yet (a fresh cluster with etcd elsewhere).

    name
        A label.

    tgt, tgt_type
        The controllers of the cluster.

    timeout
        Seconds to wait (etcd elects a leader within a few seconds of a start).

    .. code-block:: yaml

        orch-etcd-quorum:
          k8s_cluster.etcd_quorum:
            - name: etcd
            - tgt: 'I@k8s_control_plane:cluster:hardway'
    """
    ret = _check(name, f"Would wait up to {timeout}s for every controller to see etcd quorum")
    if ret["result"] is None:
        return ret

    def views():
        good, bad = _call(tgt, tgt_type, "k8s_health.etcd", timeout=10)
        bad.update({m: r for m, r in good.items() if not isinstance(r, dict)})
        good = {m: r for m, r in good.items() if isinstance(r, dict)}
        return good, bad, {m: r for m, r in good.items() if r.get("quorum") is False}

    good, bad, lacking = _until(views, lambda v: not v[1] and not v[2], timeout, interval)
    if bad or lacking:
        ret["result"] = False
        findings = [
            f"{minion} sees {view['comment']} ("
            + "; ".join(f"{url}: {a['answer']}" for url, a in view["servers"].items())
            + ")"
            for minion, view in lacking.items()
        ] + [f"{minion}: no answer ({error})" for minion, error in bad.items()]
        ret["comment"] = (
            f"etcd has no quorum after {timeout}s, so the control plane was left as it is "
            "(no apiserver restarted). Bring the etcd members back (systemctl status etcd on "
            "their hosts) and run again.\n- " + "\n- ".join(findings)
        )
        return ret
    unchecked = sorted(m for m, r in good.items() if r.get("quorum") is None)
    checked = {m: r for m, r in good.items() if r.get("quorum")}
    ret["comment"] = "etcd quorum: " + (
        ", ".join(f"{m} sees {r['healthy']} of {r['total']}" for m, r in checked.items())
        or "not checked"
    )
    if unchecked:
        ret["comment"] += f"; not checked on {', '.join(unchecked)} (no client certificate yet)"
    return ret


def apiservers_ready(
    name: str, tgt: str | list[str], tgt_type: str = "compound", timeout: float | None = None
) -> dict[str, Any]:
    """
    Wait (bounded, polling, on each controller at once) until every
    controller's apiserver and the VIP answer ``/readyz``.

    name
        A label.

    tgt, tgt_type
        The controllers of the cluster.

    timeout
        Seconds each controller waits before failing; default: each
        controller's controlplane:ready_timeout.

    .. code-block:: yaml

        orch-wait-ready:
          k8s_cluster.apiservers_ready:
            - name: apiservers
            - tgt: 'I@k8s_control_plane:cluster:hardway'
    """
    ret = _check(name, "Would wait for every apiserver, the VIP and haproxy's backends")
    if ret["result"] is None:
        return ret
    kwarg = {"timeout": timeout} if timeout else {}
    good, bad = _call(tgt, tgt_type, "k8s_health.wait_ready", kwarg, timeout=ANSWER_TIMEOUT)
    if bad:
        ret["result"] = False
        ret["comment"] = "Not ready: " + "; ".join(f"{m}: {e}" for m, e in bad.items())
        return ret
    ret["comment"] = "Ready: " + ", ".join(f"{m} after {r['seconds']}s" for m, r in good.items())
    return ret


def verified(name: str, tgt: str | list[str], tgt_type: str = "compound") -> dict[str, Any]:
    """
    The seed's verification on every controller (k8s_health.summary); fails
    naming each check that did not pass.

    .. code-block:: yaml

        orch-verify:
          k8s_cluster.verified:
            - name: hardway
            - tgt: 'I@k8s_control_plane:cluster:hardway'
    """
    ret = _check(name, "Would run k8s_health.summary on every controller")
    if ret["result"] is None:
        return ret
    good, bad = _call(tgt, tgt_type, "k8s_health.summary")
    lines = []
    summaries = {**good, **bad}
    for minion, summary in summaries.items():
        if not isinstance(summary, dict):
            lines.append(f"{minion}: {summary}")
            continue
        failed = [k for k, v in summary.items() if isinstance(v, dict) and v.get("ok") is False]
        status = "ok" if summary.get("ok") else "FAILED " + ", ".join(failed)
        vip = " (holds the VIP)" if summary.get("holds_vip") else ""
        lines.append(f"{minion}: {status}{vip}")
    # the first certificate to expire and any within the renewal margin, as the converged
    # run's findings say them
    lines += __utils__["k8s_control_plane.certificate_findings"](summaries)
    ret["result"] = not bad
    ret["comment"] = "\n".join(lines)
    return ret


def converged(name: str, findings: list[str] | None = None) -> dict[str, Any]:
    """
    The orchestration's one step on a cluster found converged while it compiled
    (k8s_orchestration.pending): every state would pass unchanged on every controller, and
    the checks of the full run passed at once on every one (exactly one VIP holder, etcd
    quorum, every apiserver and the VIP ready, haproxy's backends up, the seed's
    verification). Reports those findings; changes nothing. Anything short of that makes
    the orchestration the full run, whose steps wait and refuse as they always do.

    name
        The cluster.

    findings
        The lines k8s_orchestration.pending found (what is unchanged, each check's answer).

    .. code-block:: yaml

        orch-converged:
          k8s_cluster.converged:
            - name: hardway
            - findings: [...]
    """
    lines = [str(line) for line in findings or []]
    return {"name": name, "changes": {}, "result": True, "comment": "\n".join(lines)}


def _run(minion, fun, args, timeout=60):
    """One function on one controller; its return, or RuntimeError naming what it said."""
    answers = __salt__["saltutil.cmd"](
        [minion], fun, arg=list(args), tgt_type="list", timeout=timeout
    )
    answer = answers.get(minion)
    if not isinstance(answer, dict) or answer.get("retcode", 0) != 0:
        said = answer.get("ret") if isinstance(answer, dict) else "no answer (minion down?)"
        raise RuntimeError(f"{minion} {fun}: {said}")
    return answer.get("ret")


def _membership(ids):
    """The membership plan (k8s_control_plane.cluster_membership) from every controller now."""
    good, bad = _call(ids, "list", "k8s_etcd.status", timeout=15)
    statuses = {m: r for m, r in good.items() if isinstance(r, dict)}
    plan = __utils__["k8s_control_plane.cluster_membership"](ids, statuses)
    if plan is None:
        silent = ", ".join(f"{m} ({error})" for m, error in bad.items()) or "none"
        plan = {"bootstrap": False, "changes": [], "members": []}
        plan["errors"] = [f"no controller answered for a managed etcd (no answer: {silent})"]
    return plan


def _through(plan, ids, name):
    """A voting member other than ``name`` whose controller answers: changes go through it."""
    for member in plan["members"]:
        if member["name"] in ids and member["name"] != name and not member["learner"]:
            return member["name"]
    raise RuntimeError(f"no other voting etcd member among {', '.join(ids)} to go through")


def _promote(helper, member_id, timeout):
    """Promote a learner once it has caught up (etcd refuses until then), bounded."""
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            _run(helper, "k8s_etcd.promote", [member_id])
            return
        except RuntimeError as exc:
            if "in sync" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(1)


def _apply(change, plan, ids, root, timeout):
    """Apply one membership change (k8s_control_plane.membership_plan's first)."""
    action, name = change["action"], change["name"]
    helper = _through(plan, ids, name)
    if action == "remove":
        _run(helper, "k8s_etcd.remove", [change["id"]])
        return
    if action == "promote":
        _promote(helper, change["id"], timeout)
        return
    if action == "add":
        added = _run(helper, "k8s_etcd.add", [name, change["peer_url"]])
        member_id, initial = added["id"], added["initial_cluster"]
    else:  # join: added before and never started; it joins the members as they are
        member_id = change["id"]
        initial = ",".join(
            f"{m['name'] or name}={url}"
            for m in plan["members"]
            for url in m["peer_urls"]
            if m["name"] or m["id"] == member_id
        )
    # as a keyword: Salt reads a positional "a=b" as a keyword argument
    _run(name, "k8s_etcd.join", [{"initial_cluster": initial, "__kwarg__": True}])
    states = _run(name, "state.sls", [f"{root}.etcd"], timeout=max(float(timeout), 120))
    failed = (
        [
            f"{s.get('__id__', key)}: {s.get('comment')}"
            for key, s in states.items()
            if isinstance(s, dict) and s.get("result") is False
        ]
        if isinstance(states, dict)
        else [str(states)]
    )
    if failed:
        raise RuntimeError(f"{name}: its etcd states failed: " + "; ".join(failed))
    _promote(helper, member_id, timeout)


def etcd_members(
    name: str, tgt: str | list[str], root: str, timeout: float = 120
) -> dict[str, Any]:
    """
    Make a managed etcd's members follow the controller list, one change at a time,
    reading the members again after each (k8s_control_plane.membership_plan): a stale
    member of a controller on a new disk removed, a missing controller added as a
    learner (its etcd started with ``--initial-cluster-state existing``, then promoted
    once caught up), members no controller lists removed. Refuses, changing nothing,
    when no member answers or a removal would leave etcd without a healthy quorum. On
    a new cluster (no controller holds etcd data) there is nothing to do: the members
    start together. Test mode names each change. Runs on the master, in an
    orchestration.

    name
        A label (the cluster's name).

    tgt
        The controllers, in list order (a list, or ids joined by commas).

    root
        The formula's folder (its etcd SLS is applied on a joining controller).

    timeout
        Seconds a joining member may take to start and catch up.

    .. code-block:: yaml

        orch-etcd-members:
          k8s_cluster.etcd_members:
            - name: hardway
            - tgt: [k8s-controller-1, k8s-controller-2, k8s-controller-3]
            - root: k8s_control_plane
    """
    ids = tgt if isinstance(tgt, list) else [i for i in str(tgt).split(",") if i]
    ret: dict[str, Any] = {"name": name, "changes": {}, "result": True, "comment": ""}
    describe = __utils__["k8s_control_plane.describe_change"]
    plan = _membership(ids)
    if plan["errors"]:
        ret.update(result=False, comment="etcd membership: " + "; ".join(plan["errors"]))
        return ret
    if plan["bootstrap"] or not plan["changes"]:
        ret["comment"] = (
            "a new etcd cluster: its members start together"
            if plan["bootstrap"]
            else f"etcd's members are the controllers ({', '.join(ids)})"
        )
        return ret
    if __opts__.get("test"):
        ret["result"] = None
        ret["changes"] = {"etcd members": [describe(c) for c in plan["changes"]]}
        ret["comment"] = "Would take an etcd snapshot (k8s_snapshot.take), then, one at a time: "
        ret["comment"] += "; ".join(describe(c) for c in plan["changes"])
        return ret
    # One more snapshot before the first change (docs/snapshots.md): the way back if the
    # change goes wrong. None, none changed.
    taken = __salt__["saltutil.runner"]("k8s_snapshot.take", cluster=name, reason="membership")
    if not isinstance(taken, dict) or not (taken.get("name") or taken.get("skipped")):
        ret.update(result=False)
        ret["comment"] = (
            f"no etcd snapshot before the membership change, so nothing changed: {taken}"
        )
        return ret
    done: list[str] = [f"snapshot {taken.get('name') or taken.get('skipped')}"]
    for _ in range(2 * len(ids) + 4):  # each pass applies one change; the plan shrinks
        if not plan["changes"]:
            break
        change = plan["changes"][0]
        started = time.monotonic()
        try:
            _apply(change, plan, ids, root, timeout)
        except RuntimeError as exc:
            ret.update(result=False, changes={"etcd members": done} if done else {})
            ret["comment"] = f"etcd membership stopped at: {describe(change)}: {exc}"
            return ret
        done.append(f"{describe(change)} ({time.monotonic() - started:.1f}s)")
        plan = _membership(ids)
        if plan["errors"]:
            ret.update(result=False, changes={"etcd members": done})
            ret["comment"] = "etcd membership: " + "; ".join(plan["errors"])
            return ret
    ret["changes"] = {"etcd members": done}
    ret["result"] = not plan["changes"]
    ret["comment"] = "etcd membership: " + "; ".join(done)
    if plan["changes"]:
        ret["comment"] += "; still to do: " + "; ".join(describe(c) for c in plan["changes"])
    return ret
