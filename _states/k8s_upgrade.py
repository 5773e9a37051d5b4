"""
The rolling upgrade's steps (salt/orch/upgrade.sls). On the master: the
version-skew check before anything changes; draining a controller's
apiserver from every haproxy before it restarts and putting it back after;
optionally moving the VIP away from it and back. On a controller:
``installable``, which refuses a downgrade or a jump of minors in any
state run (a highstate with a stale pillar after ``orch.upgrade`` was given
the version on its command line).

Why drain: haproxy sends new connections to a server until its health check
has failed ``fall`` times; an apiserver stopped in that window costs the
calls sent to it (measured in the lab: one failed call per restart). A
server set to ``drain`` gets no new connection while the ones open go on.

Why the VIP does not move by default: keepalived tracks haproxy, which the
upgrade does not touch, so the holder keeps serving while its own apiserver
restarts (drained like the others). Moving the VIP cuts the connections in
flight at that moment (measured in the lab: about one move in two cost a
call). ``move_vip`` does it for a keepalived check that watches the
apiserver itself. It moves by stopping keepalived on the holder: keepalived
then sends a priority-0 advert and the next controller takes the VIP after
its skew time (about 0.3 s at advert_int 0.5), not the full master-down
interval; starting keepalived again gives the controller its VRRP role back.
"""

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

__virtualname__ = "k8s_upgrade"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def __virtual__():
    # Runs on the master, in an orchestration: asks the controllers with
    # saltutil.cmd; the skew rule is _utils/k8s_control_plane/orchestration.py.
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


def _expected(tgt, tgt_type):
    return [m for m in str(tgt).split(",") if m] if tgt_type == "list" else None


def _census(tgt, tgt_type):
    """(VIP holders, controllers that did not answer): a silent controller is not a non-holder."""
    answers = _ask(tgt, tgt_type, "k8s_health.holds_vip", 10)
    holders = sorted(m for m, held in answers.items() if held is True)
    silent = sorted(set(_expected(tgt, tgt_type) or []) - set(answers))
    return holders, silent


def _targets(reports, version):
    """
    {controller: target version} of the controllers that answered k8s_health.versions:
    the version given, else each controller's pillar version.
    """
    if version:
        return dict.fromkeys(reports, str(version).lstrip("v"))
    return {m: str(r["pillar"]).lstrip("v") for m, r in reports.items()}


def _pending(installed, target):
    return [c for c in COMPONENTS if (installed or {}).get(c) != target]


def skew_checked(
    name: str, tgt: str, tgt_type: str = "list", version: str | None = None
) -> dict[str, Any]:
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
    ret: dict[str, Any] = {"name": name, "changes": {}, "result": True, "comment": ""}
    expected = _expected(tgt, tgt_type)
    reports = _ask(tgt, tgt_type, "k8s_health.versions")
    targets = _targets(reports, version)
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
    errors = __utils__["k8s_control_plane.skew_errors"](target, running)
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


def _at_target(name, version):
    """(target version, True when controller ``name`` runs it in every component)."""
    reports = _ask(name, "list", "k8s_health.versions")
    target = _targets(reports, version).get(name)
    installed = (reports.get(name) or {}).get("installed")
    return target, bool(target) and not _pending(installed, target)


def _wait_holder(tgt, tgt_type, exclude, timeout, interval, want=None):
    """Poll until every controller answers and exactly one holds the VIP (``want`` when
    given, never ``exclude``), or the timeout; return (holders, silent)."""
    deadline = time.monotonic() + float(timeout)
    while True:
        holders, silent = _census(tgt, tgt_type)
        settled = len(holders) == 1 and holders[0] != exclude and want in (None, holders[0])
        if (settled and not silent) or time.monotonic() >= deadline:
            return holders, silent
        time.sleep(float(interval))


def vip_moved_away(
    name: str,
    tgt: str,
    tgt_type: str = "list",
    version: str | None = None,
    timeout: float = 30,
    interval: float = 0.2,
) -> dict[str, Any]:
    """
    Before controller ``name`` restarts its apiserver: when it holds the VIP
    and is not at the target version yet, stop its keepalived and wait
    (bounded) until exactly one other controller holds the VIP. Refuses,
    changing nothing, when a controller does not answer or no other
    controller runs keepalived; when the VIP has not moved in time, starts
    keepalived on ``name`` again and fails.

    .. code-block:: yaml

        upgrade-k8s-controller-1-vip-away:
          k8s_upgrade.vip_moved_away:
            - name: k8s-controller-1
            - tgt: k8s-controller-1,k8s-controller-2,k8s-controller-3
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    target, done = _at_target(name, version)
    if done:
        ret["comment"] = f"{name} is at {target} already: the VIP stays where it is"
        return ret
    holders, silent = _census(tgt, tgt_type)
    if silent:
        ret["result"] = False
        ret["comment"] = f"No answer from {', '.join(silent)}: nothing was changed"
        return ret
    if holders != [name]:
        ret["comment"] = f"{name} does not hold the VIP (holders: {holders or 'none'})"
        return ret
    others = [m for m in _expected(tgt, tgt_type) or [] if m != name]
    running = _ask(",".join(others), "list", "service.status", kwarg={"name": "keepalived"})
    if others and not any(running.values()):
        ret["result"] = False
        ret["comment"] = (
            f"No other controller runs keepalived ({', '.join(others)}): the VIP would have "
            "nowhere to go; nothing was changed"
        )
        return ret
    if __opts__.get("test"):
        ret["result"] = None
        ret["changes"] = {"keepalived": {name: "would stop"}, "vip": {"old": name, "new": "next"}}
        ret["comment"] = f"Would stop keepalived on {name} and wait for another VIP holder"
        return ret
    _ask(name, "list", "service.stop", kwarg={"name": "keepalived"})
    holders, silent = _wait_holder(tgt, tgt_type, name, timeout, interval)
    if len(holders) != 1 or holders[0] == name or silent:
        _ask(name, "list", "service.start", kwarg={"name": "keepalived"})
        ret["result"] = False
        ret["comment"] = (
            f"keepalived stopped on {name}, but after {timeout}s the holders are "
            f"{holders or 'none'}"
            + (f" (no answer from {', '.join(silent)})" if silent else "")
            + f"; expected exactly one other controller. keepalived started on {name} again"
        )
        return ret
    ret["changes"] = {"keepalived": {name: "stopped"}, "vip": {"old": name, "new": holders[0]}}
    ret["comment"] = f"The VIP moved from {name} to {holders[0]}"
    return ret


def vip_given_back(
    name: str, tgt: str, tgt_type: str = "list", timeout: float = 30, interval: float = 0.2
) -> dict[str, Any]:
    """
    After controller ``name`` is upgraded and ready: start its keepalived
    again when it is stopped (giving it its VRRP role back) and wait
    (bounded) until every controller answers and exactly one holds the VIP:
    ``name`` itself when its role is MASTER (it preempts), so that the VIP
    has settled before the next controller starts.

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
    role = _ask(name, "list", "k8s_keepalived.role").get(name) or {}
    want = name if role.get("state") == "MASTER" else None
    _ask(name, "list", "service.start", kwarg={"name": "keepalived"})
    holders, silent = _wait_holder(tgt, tgt_type, None, timeout, interval, want)
    if len(holders) != 1 or want not in (None, holders[0]) or silent:
        ret["result"] = False
        ret["comment"] = (
            f"keepalived started on {name}; after {timeout}s the holders are {holders}"
            + (f" (no answer from {', '.join(silent)})" if silent else "")
        )
        return ret
    ret["changes"] = {"keepalived": {name: "started"}, "vip": {"holder": holders[0]}}
    ret["comment"] = f"keepalived runs on {name} again; {holders[0]} holds the VIP"
    return ret


def _servers(name, tgt, tgt_type, state=None):
    """
    ({controller: its haproxy's rows for server ``name``}, [controllers that did
    not answer or failed], {controller: why its haproxy is not running}). A
    controller whose haproxy is not running carries no traffic (keepalived has
    moved the VIP away from it): there is nothing to drain or restore there.
    """
    kwarg = {"server": name, **({"state": state} if state else {})}
    answers = __salt__["saltutil.cmd"](
        tgt, "k8s_health.haproxy_server", tgt_type=tgt_type, kwarg=kwarg, timeout=30
    )
    rows, stopped = {}, {}
    for minion, answer in answers.items():
        ret = answer.get("ret") if isinstance(answer, dict) else None
        if isinstance(answer, dict) and answer.get("retcode", 0) == 0:
            rows[minion] = ret
        elif "haproxy stats socket" in str(ret):
            stopped[minion] = str(ret).strip().splitlines()[-1][-200:]
    failed = sorted(set(_expected(tgt, tgt_type) or answers) - set(rows) - set(stopped))
    return rows, failed, stopped


def _not_running(stopped):
    return "".join(f"; haproxy not running on {m}: nothing to do there" for m in sorted(stopped))


def backend_drained(
    name: str,
    tgt: str,
    tgt_type: str = "list",
    version: str | None = None,
    timeout: float = 10,
    interval: float = 0.2,
    always: bool = False,
) -> dict[str, Any]:
    """
    Before controller ``name`` restarts its apiserver: set its server to
    ``drain`` in every controller's haproxy (no new connection goes to it;
    the open ones go on) and wait, bounded, until its sessions have ended.
    Sessions still open at the timeout (long watches) are left to the
    apiserver's own shutdown and said in the comment. Does nothing when
    ``name`` is at the target version already, unless ``always`` (orch.control_plane:
    its control plane would change at any version); refuses, changing nothing,
    when a controller does not answer.

    .. code-block:: yaml

        upgrade-k8s-controller-1-drain:
          k8s_upgrade.backend_drained:
            - name: k8s-controller-1
            - tgt: k8s-controller-1,k8s-controller-2,k8s-controller-3
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    target, done = (None, False) if always else _at_target(name, version)
    if done:
        ret["comment"] = f"{name} is at {target} already: it stays in haproxy's rotation"
        return ret
    rows, silent, stopped = _servers(name, tgt, tgt_type)
    if silent:
        ret["result"] = False
        ret["comment"] = f"No answer from {', '.join(silent)}'s haproxy: nothing was changed"
        return ret
    todo = sorted(m for m, r in rows.items() if any(row["admin"] == "ready" for row in r))
    if __opts__.get("test"):
        ret["result"] = None if todo else True
        ret["changes"] = {"haproxy": dict.fromkeys(todo, "would drain")} if todo else {}
        ret["comment"] = f"Would drain {name} from haproxy on {', '.join(todo) or 'none'}"
        ret["comment"] += _not_running(stopped)
        return ret
    start = time.monotonic()
    drained, silent = {}, []
    if todo:
        drained, silent, _ = _servers(name, ",".join(todo), "list", state="drain")
    if silent:
        _servers(name, ",".join(drained), "list", state="ready")
        ret["result"] = False
        ret["comment"] = (
            f"Could not drain {name} from haproxy on {', '.join(silent)}; put back in rotation "
            f"on {', '.join(drained) or 'none'}"
        )
        return ret
    deadline = start + float(timeout)
    while True:
        rows = _servers(name, tgt, tgt_type)[0]
        sessions = sum(row["sessions"] for r in rows.values() for row in r)
        if not sessions or time.monotonic() >= deadline:
            break
        time.sleep(float(interval))
    seconds = round(time.monotonic() - start, 2)
    log.debug("k8s_upgrade.backend_drained: %s, %d session(s) after %ss", name, sessions, seconds)
    if todo:
        ret["changes"] = {"haproxy": dict.fromkeys(todo, "drain")}
    ret["comment"] = (
        f"{name} drained from haproxy on {', '.join(sorted(rows))}: "
        + (
            f"its sessions ended after {seconds}s"
            if not sessions
            else f"{sessions} session(s) still open after {timeout}s, "
            "left to the apiserver's shutdown"
        )
        + _not_running(stopped)
    )
    return ret


def backend_restored(
    name: str,
    tgt: str,
    tgt_type: str = "list",
    version: str | None = None,
    timeout: float = 180,
    interval: float = 0.2,
    always: bool = False,
) -> dict[str, Any]:
    """
    After controller ``name``'s apiserver is upgraded and ready: put its
    server back in every controller's haproxy rotation (``ready``) and wait,
    bounded, until each haproxy's health check has it UP. In test mode it
    predicts the restore that ``backend_drained`` makes necessary (with
    ``always``, as that drain always happens).

    .. code-block:: yaml

        upgrade-k8s-controller-1-restore:
          k8s_upgrade.backend_restored:
            - name: k8s-controller-1
            - tgt: k8s-controller-1,k8s-controller-2,k8s-controller-3
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    rows, silent, stopped = _servers(name, tgt, tgt_type)
    if silent:
        ret["result"] = False
        ret["comment"] = f"No answer from {', '.join(silent)}'s haproxy"
        return ret
    todo = sorted(m for m, r in rows.items() if any(row["admin"] != "ready" for row in r))
    if __opts__.get("test"):
        if not todo and (always or not _at_target(name, version)[1]):
            todo = sorted(rows)  # the drain step before this one will have drained it
        ret["result"] = None if todo else True
        ret["changes"] = {"haproxy": dict.fromkeys(todo, "would set ready")} if todo else {}
        ret["comment"] = f"Would put {name} back in rotation on {', '.join(todo) or 'none'}"
        ret["comment"] += _not_running(stopped)
        return ret
    start = time.monotonic()
    if todo:
        silent = _servers(name, ",".join(todo), "list", state="ready")[1]
    deadline, down = start + float(timeout), []
    while not silent:
        rows, silent, stopped = _servers(name, tgt, tgt_type)
        down = sorted(
            f"{m}: {row['proxy']} {row['status']}"
            for m, r in rows.items()
            for row in r
            if row["status"] != "UP" or row["admin"] != "ready"
        )
        if not down or time.monotonic() >= deadline:
            break
        time.sleep(float(interval))
    if todo:
        ret["changes"] = {"haproxy": dict.fromkeys(todo, "ready")}
    if silent or down:
        ret["result"] = False
        ret["comment"] = f"{name} not UP in every haproxy after {timeout}s: " + "; ".join(
            down + [f"{m}: no answer" for m in silent]
        )
        return ret
    seconds = round(time.monotonic() - start, 2)
    ret["comment"] = f"{name} UP in haproxy on {', '.join(sorted(rows))} after {seconds}s"
    ret["comment"] += _not_running(stopped)
    return ret


def installable(name: str) -> dict[str, Any]:
    """
    On a controller, before its binaries change: refuse to install version
    ``name`` when the skew policy forbids it over the binaries installed
    here (a downgrade, or more than one minor ahead). It guards every state
    run, not only orch.upgrade: a highstate after ``orch.upgrade`` was given
    a version on its command line, with the pillar still at the old one,
    fails here naming the version to write in pillar. Read-only.

    .. code-block:: yaml

        k8s_control_plane-controlplane-binaries-k8s_upgrade-installable:
          k8s_upgrade.installable:
            - name: 1.37.1
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    target = str(name).lstrip("v")
    installed = __salt__["k8s_health.versions"]()["installed"]
    me = __grains__.get("id", "this controller")
    errors = __utils__["k8s_control_plane.skew_errors"](target, {me: installed})
    log.debug("k8s_upgrade.installable: %s over %s: %d error(s)", target, installed, len(errors))
    if errors:
        ret["result"] = False
        ret["comment"] = (
            f"Refused to install {target} (k8s_control_plane:kubernetes:version), nothing was "
            "changed:\n- " + "\n- ".join(errors) + "\nSet the pillar's version to the one "
            "installed, or upgrade one minor at a time with orch.upgrade."
        )
        return ret
    found = sorted({v for v in installed.values() if v})
    ret["comment"] = f"{target} may be installed over {', '.join(found) or 'nothing'}"
    return ret


def backends_restored(
    name: str, tgt: str, tgt_type: str = "list", timeout: float = 180
) -> dict[str, Any]:
    """
    Every targeted controller's apiserver in every controller's haproxy rotation and UP
    (backend_restored for each, in turn): what orch.control_plane checks after its rolling
    step, so that a server a failed or interrupted run left drained is put back too.

    .. code-block:: yaml

        orch-controlplane:
          k8s_upgrade.backends_restored:
            - name: control plane
            - tgt: k8s-controller-1,k8s-controller-2,k8s-controller-3
    """
    ret: dict[str, Any] = {"name": name, "changes": {}, "result": True, "comment": ""}
    comments = []
    for minion in _expected(tgt, tgt_type) or []:
        one = backend_restored(minion, tgt, tgt_type, timeout=timeout)
        if one["changes"]:
            ret["changes"][minion] = one["changes"]
        comments.append(one["comment"])
        if one["result"] is False:
            ret["result"] = False
            break
        if one["result"] is None:
            ret["result"] = None
    ret["comment"] = "; ".join(comments)
    return ret
