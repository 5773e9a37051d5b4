"""
A managed etcd member's restart gate: a state that waits (bounded) until this member
may stop without etcd losing quorum (k8s_etcd.restart_safe). The etcd SLS runs it only
when a restart is due (onchanges), before the restart; it never changes anything.
"""

import time
from typing import Any

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
