"""
Cluster-level states: pillar validation (on a controller) and the single
VIP holder check (on the master, from the orchestration).
"""

import time

__virtualname__ = "k8s_cluster"


def __virtual__():
    return __virtualname__


def validated(name):
    """
    Fail, with every error at once, when this minion's cluster pillar is
    invalid. Every other state of this project requires this one, so an
    invalid pillar changes nothing. Fails in test mode too.

    name
        Any label (the cluster's name reads well).

    .. code-block:: yaml

        cluster-validate-k8s_cluster-validated:
          k8s_cluster.validated:
            - name: hardway
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    report = __salt__["k8s_cluster.validate"]()
    if report["valid"]:
        ret["comment"] = "The cluster pillar is valid"
        return ret
    ret["result"] = False
    count = len(report["errors"])
    ret["comment"] = "Invalid cluster pillar ({} error{}):\n- {}".format(
        count, "" if count == 1 else "s", "\n- ".join(report["errors"])
    )
    return ret


def vip_single_holder(name, tgt, tgt_type="compound", timeout=60, interval=0.5):
    """
    Wait (bounded, polling) until exactly one of the targeted controllers
    holds the VIP. Runs on the master, in an orchestration.

    name
        The VIP address.

    tgt, tgt_type
        The controllers of the cluster.

    timeout
        Seconds to wait before failing.

    .. code-block:: yaml

        orch-vip:
          k8s_cluster.vip_single_holder:
            - name: 10.240.0.10
            - tgt: 'I@k8s_control_plane:cluster:hardway'
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if __opts__.get("test"):
        ret["result"] = None
        ret["comment"] = f"Would wait up to {timeout}s for exactly one holder of {name}"
        return ret
    deadline = time.monotonic() + float(timeout)
    holders, answers = [], {}
    while True:
        answers = __salt__["saltutil.cmd"](
            tgt, "k8s_health.holds_vip", tgt_type=tgt_type, timeout=10
        )
        holders = sorted(m for m, r in answers.items() if r.get("ret") is True)
        if len(holders) == 1 or time.monotonic() >= deadline:
            break
        time.sleep(float(interval))
    if len(holders) == 1:
        ret["comment"] = f"{holders[0]} holds {name}"
        return ret
    ret["result"] = False
    silent = sorted(m for m, r in answers.items() if not isinstance(r.get("ret"), bool))
    ret["comment"] = (
        f"After {timeout}s, {len(holders)} controllers hold {name} (expected exactly 1): "
        f"{holders or 'none'}" + (f"; no answer from {silent}" if silent else "")
    )
    return ret
