"""
Restarts coordinated across the controllers through etcd: a managed etcd member's
restart gate (it waits, bounded, until the member may stop without etcd losing quorum:
k8s_etcd.restart_safe), and the cluster's turn to restart a service (an etcd lock:
turn_taken before, turn_given once ready), so that only one controller at a time restarts
it however the state runs were started. The SLS files run them only when a restart is due
(onchanges); they never change anything.
"""

import time
from typing import Any

from salt.exceptions import CommandExecutionError

__virtualname__ = "k8s_etcd"


def __virtual__():
    if "k8s_etcd.restart_safe" not in __salt__:
        return (False, "k8s_etcd: the k8s_etcd execution module is not loaded")
    return __virtualname__


def restart_safe(name: str, timeout: float = 60, interval: float = 1) -> dict[str, Any]:
    """
    Pass once this controller's etcd member may restart without etcd losing quorum: the
    other voting members that answer are a quorum on their own (k8s_etcd.restart_safe).
    Fail after ``timeout`` seconds naming the members that are not healthy, so the
    restart that requires this state does not happen. In test mode, say what it would
    wait for.

    name
        A label (``etcd``).

    timeout
        Seconds to wait for the other members.

    .. code-block:: yaml

        k8s_control_plane-etcd-k8s_etcd-restart_safe:
          k8s_etcd.restart_safe:
            - name: etcd
            - onchanges:
              - file: k8s_control_plane-etcd-file-managed-unit
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = (
            f"Would wait up to {timeout}s until the other etcd members keep quorum without "
            "this one, then let it restart"
        )
        return ret
    deadline = time.monotonic() + float(timeout)
    while True:
        answer = __salt__["k8s_etcd.restart_safe"]()
        if answer["safe"] or time.monotonic() >= deadline:
            break
        time.sleep(float(interval))
    ret["result"] = bool(answer["safe"])
    ret["comment"] = (
        f"Safe to restart: {answer['comment']}"
        if answer["safe"]
        else f"Not restarted: etcd would lose quorum after {timeout}s of waiting: "
        f"{answer['comment']}. Bring the other members back (systemctl status etcd) and "
        "run again."
    )
    return ret


def turn_taken(name: str, service: str | None = None, timeout: float = 600) -> dict[str, Any]:
    """
    Before ``service`` (default ``name``) restarts: wait, bounded, for the cluster's turn
    ``name`` and take it (k8s_etcd.take_turn: an etcd lock on a lease), so that only one
    controller at a time restarts it, whether the state runs come from the orchestration's
    rolling step or from ``salt 'k8s-controller-*' state.apply`` on every controller at
    once. A service that is not running needs no turn (a start stops nothing). The SLS
    runs this only when a restart is due (onchanges) and gives the turn back once the
    service is ready (turn_given); a run that dies holding it lets it go when its lease
    expires. Fails, so the restart does not happen, when no turn comes in ``timeout``.

    .. code-block:: yaml

        k8s_control_plane-controlplane-services-k8s_etcd-turn_taken:
          k8s_etcd.turn_taken:
            - name: kube-apiserver
            - onchanges:
              - file: k8s_control_plane-controlplane-services-file-managed-kube-apiserver
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    service = service or name
    if not __salt__["service.status"](service):
        ret["comment"] = f"{service} is not running: starting it needs no turn"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"Would wait up to {timeout}s for the cluster's turn to restart {service}"
        return ret
    try:
        taken = __salt__["k8s_etcd.take_turn"](name, timeout=timeout)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"Not restarted: {exc}")
        return ret
    if taken.get("skipped"):
        ret["comment"] = f"No turn to take for {service}: {taken['skipped']} (a CA change)"
        return ret
    ret["comment"] = f"Took the cluster's turn to restart {service} after {taken['waited']}s"
    return ret


def turn_given(name: str) -> dict[str, Any]:
    """
    Give back the turn ``name`` (k8s_etcd.give_turn) once the restarted service is
    ready; nothing to do when this controller holds none.

    .. code-block:: yaml

        k8s_control_plane-controlplane-services-k8s_etcd-turn_given:
          k8s_etcd.turn_given:
            - name: kube-apiserver
            - require:
              - k8s_health: k8s_control_plane-controlplane-services-k8s_health-ready
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if __opts__["test"]:
        ret["comment"] = f"Would give the turn for {name} back, if taken"
        return ret
    try:
        given = __salt__["k8s_etcd.give_turn"](name)
    except CommandExecutionError as exc:
        ret["comment"] = f"The turn for {name} could not be given back ({exc}); its lease ends it"
        return ret
    ret["comment"] = f"Gave the turn for {name} back" if given["given"] else "No turn held"
    return ret


def trust_current(name: str) -> dict[str, Any]:
    """
    Report a change, so that the service watching this state restarts, when this
    controller's etcd member runs with another CA than its files (k8s_etcd.trust_changed):
    a CA change whose restart did not happen (an interrupted run), which no file change
    would bring again. Nothing to do when the member is not running or verifies.

    name
        The service (``etcd``).

    .. code-block:: yaml

        k8s_control_plane-etcd-k8s_etcd-trust_current:
          k8s_etcd.trust_current:
            - name: etcd
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if not __salt__["service.status"](name):
        ret["comment"] = f"{name} is not running: it starts with its files"
        return ret
    answer = __salt__["k8s_etcd.trust_changed"]()
    if not answer["changed"]:
        ret["comment"] = f"{name} runs with the CA of its files"
        return ret
    ret["changes"] = {"restart": f"{name} runs with another CA than its files"}
    ret["comment"] = f"{name} must restart: {answer['comment']}"
    if __opts__["test"]:
        ret["result"] = None
    return ret
