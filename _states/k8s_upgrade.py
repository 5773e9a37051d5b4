"""
The rolling upgrade's master-side steps (salt/orch/upgrade.sls): the
version-skew check before anything changes, and moving the VIP away from a
controller before its apiserver restarts and back afterwards.

The VIP moves by stopping keepalived on its holder: keepalived then sends a
priority-0 advert and the next controller takes the VIP after its skew time
(about 0.3 s at advert_int 0.5), instead of the full master-down interval.
Starting keepalived again gives the controller its VRRP role back (it
preempts when it has the highest priority).
"""

import logging
import time

log = logging.getLogger(__name__)

__virtualname__ = "k8s_upgrade"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def __virtual__():
    # Runs on the master, in an orchestration: asks the controllers with
    # saltutil.cmd; the skew rule is _utils/k8s_orchestration.py.
    return __virtualname__


def _ask(tgt, tgt_type, fun, timeout=30, kwarg=None):
    answers = __salt__["saltutil.cmd"](
        tgt, fun, tgt_type=tgt_type, kwarg=kwarg or {}, timeout=timeout
    )
    return {
        minion: answer.get("ret")
        for minion, answer in answers.items()
        if isinstance(answer, dict) and answer.get("retcode", 0) == 0
    }


def _holders(tgt, tgt_type):
    return sorted(m for m, held in _ask(tgt, tgt_type, "k8s_health.holds_vip", 10).items() if held)


def _targets(tgt, tgt_type, version):
    """{controller: target version}: the one given, else each controller's pillar version."""
    if version:
        return {m: str(version).lstrip("v") for m in _ask(tgt, tgt_type, "test.true")}
    configs = _ask(tgt, tgt_type, "k8s_cluster.config")
    return {m: str(c["kubernetes"]["version"]).lstrip("v") for m, c in configs.items()}


def _pending(installed, target):
    return [c for c in COMPONENTS if (installed or {}).get(c) != target]


def skew_checked(name, tgt, tgt_type="list", version=None):
    """
    Refuse the upgrade, before anything changes, when it breaks Kubernetes'
    version-skew policy (one minor at a time, no downgrade, apiservers within
    one minor, controller-manager and scheduler never newer than their
    apiserver), or when the controllers disagree on the target. Reports which
    controllers are already at the target (a re-run goes on from there).
    Read-only: it runs the same in test mode.

    .. code-block:: yaml

        upgrade-skew:
          k8s_upgrade.skew_checked:
            - name: hardway
            - tgt: k8s-controller-1,k8s-controller-2,k8s-controller-3
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    expected = [m for m in str(tgt).split(",") if m] if tgt_type == "list" else None
    targets = _targets(tgt, tgt_type, version)
    reports = _ask(tgt, tgt_type, "k8s_health.versions")
    silent = sorted(set(expected or targets) - set(reports) | set(expected or []) - set(targets))
    if silent:
        ret["result"] = False
        ret["comment"] = f"No answer from {', '.join(silent)}: nothing was changed"
        return ret
    wanted = sorted(set(targets.values()))
    if len(wanted) != 1:
        ret["result"] = False
        ret["comment"] = f"The controllers' pillars disagree on the version: {targets}"
        return ret
    target = wanted[0]
    running = {m: dict(r["installed"]) for m, r in reports.items()}
    for minion, report in reports.items():
        if report.get("serving"):
            running[minion]["kube-apiserver"] = report["serving"]
    errors = __utils__["k8s_orchestration.skew_errors"](target, running)
    log.debug("k8s_upgrade.skew_checked: to %s, %d error(s)", target, len(errors))
    if errors:
        ret["result"] = False
        ret["comment"] = "Refused, nothing was changed:\n- " + "\n- ".join(errors)
        return ret
    todo = sorted(m for m, r in running.items() if _pending(r, target))
    done = sorted(set(running) - set(todo))
    ret["comment"] = f"Upgrade to {target} respects the skew policy; " + (
        f"to upgrade: {', '.join(todo)}" if todo else "every controller is at it already"
    )
    if done and todo:
        ret["comment"] += f"; already at {target}: {', '.join(done)}"
    return ret


def _wait_holder(tgt, tgt_type, exclude, timeout, interval, want=None):
    """Poll until exactly one holder (``want`` when given, never ``exclude``) or the timeout."""
    deadline = time.monotonic() + float(timeout)
    while True:
        holders = _holders(tgt, tgt_type)
        if len(holders) == 1 and holders[0] != exclude and want in (None, holders[0]):
            return holders
        if time.monotonic() >= deadline:
            return holders
        time.sleep(float(interval))


def vip_moved_away(name, tgt, tgt_type="list", version=None, timeout=30, interval=0.2):
    """
    Before controller ``name`` restarts its apiserver: when it holds the VIP
    and is not at the target version yet, stop its keepalived and wait
    (bounded) until exactly one other controller holds the VIP.

    .. code-block:: yaml

        upgrade-k8s-controller-1-vip-away:
          k8s_upgrade.vip_moved_away:
            - name: k8s-controller-1
            - tgt: k8s-controller-1,k8s-controller-2,k8s-controller-3
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    target = _targets(name, "list", version).get(name)
    installed = (_ask(name, "list", "k8s_health.versions").get(name) or {}).get("installed")
    if target and not _pending(installed, target):
        ret["comment"] = f"{name} is at {target} already: the VIP stays where it is"
        return ret
    holders = _holders(tgt, tgt_type)
    if holders != [name]:
        ret["comment"] = f"{name} does not hold the VIP (holders: {holders or 'none'})"
        return ret
    if __opts__.get("test"):
        ret["result"] = None
        ret["changes"] = {"keepalived": {name: "would stop"}, "vip": {"old": name, "new": "next"}}
        ret["comment"] = f"Would stop keepalived on {name} and wait for another VIP holder"
        return ret
    _ask(name, "list", "service.stop", kwarg={"name": "keepalived"})
    holders = _wait_holder(tgt, tgt_type, name, timeout, interval)
    if len(holders) != 1 or holders[0] == name:
        ret["result"] = False
        ret["comment"] = (
            f"keepalived stopped on {name}, but after {timeout}s the holders are "
            f"{holders or 'none'} (expected exactly one other controller)"
        )
        return ret
    ret["changes"] = {"keepalived": {name: "stopped"}, "vip": {"old": name, "new": holders[0]}}
    ret["comment"] = f"The VIP moved from {name} to {holders[0]}"
    return ret


def vip_given_back(name, tgt, tgt_type="list", timeout=30, interval=0.2):
    """
    After controller ``name`` is upgraded and ready: start its keepalived
    again when it is stopped (giving it its VRRP role back) and wait
    (bounded) until exactly one controller holds the VIP: ``name`` itself
    when its role is MASTER (it preempts), so that the VIP has settled before
    the next controller starts.

    .. code-block:: yaml

        upgrade-k8s-controller-1-vip-back:
          k8s_upgrade.vip_given_back:
            - name: k8s-controller-1
            - tgt: k8s-controller-1,k8s-controller-2,k8s-controller-3
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    running = _ask(name, "list", "service.status", kwarg={"name": "keepalived"}).get(name)
    if running:
        ret["comment"] = f"keepalived runs on {name}"
        return ret
    if __opts__.get("test"):
        ret["result"] = None
        ret["changes"] = {"keepalived": {name: "would start"}}
        ret["comment"] = f"Would start keepalived on {name}"
        return ret
    role = _ask(name, "list", "keepalived_role.role").get(name) or {}
    want = name if role.get("state") == "MASTER" else None
    _ask(name, "list", "service.start", kwarg={"name": "keepalived"})
    holders = _wait_holder(tgt, tgt_type, None, timeout, interval, want)
    if len(holders) != 1 or want not in (None, holders[0]):
        ret["result"] = False
        ret["comment"] = f"keepalived started on {name}; after {timeout}s the holders are {holders}"
        return ret
    ret["changes"] = {"keepalived": {name: "started"}, "vip": {"holder": holders[0]}}
    ret["comment"] = f"keepalived runs on {name} again; {holders[0]} holds the VIP"
    return ret
