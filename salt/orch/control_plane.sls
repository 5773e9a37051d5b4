#!py
"""
The whole job, in order; each step requires the one before and a failure
stops the run, naming the step (its state ID) and the minions that failed.

    salt-run state.orchestrate orch.control_plane
    salt-run state.orchestrate orch.control_plane pillar='{"cluster": "hardway"}'

1. sync custom modules and states to the master and the controllers (while
   this file compiles, so that test mode has them too)
2. validate the cluster pillar on every controller
3. load balancer on all controllers; then exactly one VIP holder
4. etcd (when etcd:managed) and the control plane on all controllers
5. wait (bounded polling) until every apiserver is ready, directly and via the VIP
6. RBAC from one controller
7. verification report (k8s_health.summary)

With one cluster on the master no argument is needed; with several, pass
pillar='{"cluster": NAME}' (the k8s_control_plane:cluster pillar value).
"""

from salt.exceptions import SaltRenderError

KEY = "k8s_control_plane"
# The formula's root folder on the master (salt://k8s_control_plane/); a master
# that serves it under another name sets `k8s_control_plane_root` in its config.
ROOT_OPTION = "k8s_control_plane_root"


def _clusters():
    """
    Ask the minions which cluster each belongs to. k8s_cluster.identity
    answers with the cluster, the controller ids and the RBAC controller only:
    no secret leaves a minion.
    """
    answers = __salt__["saltutil.cmd"](
        f"I@{KEY}:cluster:*", "k8s_cluster.identity", tgt_type="compound", timeout=30
    )
    clusters = {}
    for minion, answer in answers.items():
        data = answer.get("ret") if isinstance(answer, dict) else None
        if isinstance(data, dict) and data.get("cluster"):
            clusters.setdefault(data["cluster"], {})[minion] = data
    return clusters


def _choose(clusters, wanted):
    if wanted:
        if wanted not in clusters:
            raise SaltRenderError(
                f"orch.control_plane: no minion answers for cluster {wanted!r}; "
                f"valid: {', '.join(sorted(clusters)) or 'none (check the pillar top file)'}"
            )
        return wanted
    if len(clusters) == 1:
        return next(iter(clusters))
    if not clusters:
        raise SaltRenderError(
            f"orch.control_plane: no minion has pillar {KEY}:cluster "
            "(are the minions up, their keys accepted, and listed in pillar/top.sls?)"
        )
    raise SaltRenderError(
        f"orch.control_plane: {len(clusters)} clusters on this master "
        f"({', '.join(sorted(clusters))}); pick one: salt-run state.orchestrate "
        f'orch.control_plane pillar=\'{{"cluster": "{sorted(clusters)[0]}"}}\''
    )


def _sync():
    """
    Before anything else, test mode included: refresh every minion's pillar
    (targeting below matches on it, and a pillar top edit is otherwise not
    seen), then sync custom modules and states to the master (for the checks
    below) and to the controllers (for their validation). Neither changes a
    host: they refresh Salt's own caches.
    """
    __salt__["saltutil.cmd"]("*", "saltutil.refresh_pillar", kwarg={"wait": True}, timeout=60)
    __salt__["saltutil.runner"]("saltutil.sync_all")
    __salt__["saltutil.cmd"](
        f"I@{KEY}:cluster:*", "saltutil.sync_all", tgt_type="compound", timeout=60
    )


def run():
    _sync()
    clusters = _clusters()
    name = _choose(clusters, __pillar__.get("cluster"))
    members = clusters[name]
    # Every member's pillar lists the same controllers (one cluster file);
    # validation (step 2) checks each member's own pillar in full.
    view = members[sorted(members)[0]]
    silent = sorted(set(view["controllers"]) - set(members))
    if silent:
        raise SaltRenderError(
            f"orch.control_plane: cluster {name!r} lists {', '.join(silent)} in "
            f"{KEY}:controllers, but they did not answer with this cluster's pillar "
            "(minion down, key not accepted, or not matched in pillar/top.sls)"
        )
    rbac = view["apply_from"]
    root = __salt__["config.get"](ROOT_OPTION, KEY)
    tgt = f"I@{KEY}:cluster:{name}"
    common = {"tgt": tgt, "tgt_type": "compound", "expect_minions": True}

    def on_all(require, **fields):
        data = dict(common, **fields)
        if require:
            data["require"] = [require]
        return [{k: v} for k, v in data.items()]

    steps = {}

    steps["orch-validate"] = {"salt.state": on_all(None, sls=[f"{root}.cluster.validate"])}
    steps["orch-loadbalancer"] = {
        "salt.state": on_all({"salt": "orch-validate"}, sls=[f"{root}.loadbalancer"])
    }
    steps["orch-vip-single-holder"] = {
        "k8s_cluster.vip_single_holder": [
            {"name": "vip"},
            {"tgt": tgt},
            {"tgt_type": "compound"},
            {"timeout": 60},
            {"require": [{"salt": "orch-loadbalancer"}]},
        ]
    }
    steps["orch-etcd"] = {
        "salt.state": on_all({"k8s_cluster": "orch-vip-single-holder"}, sls=[f"{root}.etcd"])
    }
    # One controller at a time, each waiting for its own apiserver to be ready
    # (controlplane.services): a rollout never restarts every apiserver at once.
    steps["orch-controlplane"] = {
        "salt.state": on_all({"salt": "orch-etcd"}, sls=[f"{root}.controlplane"], batch="1")
    }
    steps["orch-wait-ready"] = {
        "k8s_cluster.apiservers_ready": [
            {"name": "apiservers"},
            {"tgt": tgt},
            {"tgt_type": "compound"},
            {"require": [{"salt": "orch-controlplane"}]},
        ]
    }
    steps["orch-rbac"] = {
        "salt.state": [
            {"tgt": rbac},
            {"sls": [f"{root}.rbac"]},
            {"expect_minions": True},
            {"require": [{"k8s_cluster": "orch-wait-ready"}]},
        ]
    }
    steps["orch-verify"] = {
        "k8s_cluster.verified": [
            {"name": name},
            {"tgt": tgt},
            {"tgt_type": "compound"},
            {"require": [{"salt": "orch-rbac"}]},
        ]
    }
    return steps
