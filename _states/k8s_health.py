"""
Wait for the control plane: a state that polls, bounded, until this
controller's apiserver and the VIP are ready. It never changes anything.
"""

from typing import Any

from salt.exceptions import CommandExecutionError

__virtualname__ = "k8s_health"

LOOPBACK = "127.0.0.1"


def __virtual__():
    if "k8s_health.wait_ready" not in __salt__:
        return (False, "k8s_health: the k8s_health execution module is not loaded (needs `ip`)")
    return __virtualname__


def ready(name: str, timeout: float | None = None, scope: str = "cluster") -> dict[str, Any]:
    """
    Wait until this controller's apiserver answers ``/readyz`` and so does the
    VIP (k8s_health.wait_ready). In test mode, report whether the apiserver on
    127.0.0.1 is ready now: a dry run sends nothing off this host.

    name
        A label (e.g. ``apiserver``).

    timeout
        Seconds; default controlplane:ready_timeout.

    scope
        ``cluster``: also the VIP and every haproxy backend; ``local``: this
        controller's apiserver only.

    .. code-block:: yaml

        k8s_control_plane-rbac-k8s_health-ready:
          k8s_health.ready:
            - name: apiserver
            - timeout: 180
            - scope: local
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if __opts__["test"]:
        # Loopback only (the apiserver binds every address and its
        # certificate names 127.0.0.1): a dry run probes no other host.
        ready_now = __salt__["k8s_health.apiserver"](address=LOOPBACK, timeout=2)["ok"]
        ret["comment"] = (
            "The apiserver is ready" if ready_now else f"Would wait up to {timeout}s for readiness"
        )
        return ret
    try:
        waited = __salt__["k8s_health.wait_ready"](timeout=timeout, scope=scope)
    except (CommandExecutionError, ValueError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["comment"] = f"Ready after {waited['seconds']}s"
    return ret
