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

# Aliased: the py renderer sets the name `salt` in this module to __salt__.
import salt.key as salt_key
import salt.pillar as salt_pillar
import salt.utils.minions as salt_minions
from salt.exceptions import SaltRenderError

KEY = "k8s_control_plane"
# The formula's root folder on the master (salt://k8s_control_plane/); a master
# that serves it under another name sets `k8s_control_plane_root` in its config.
ROOT_OPTION = "k8s_control_plane_root"


def _minion_pillars():
    """
    {minion: its k8s_control_plane pillar} for every accepted minion, compiled
    here on the master from the pillar files as they are now (as
    `salt-run pillar.show_pillar` does), so that finding the cluster touches
    no minion and a pillar edit is seen without a refresh everywhere. Nothing
    of it is printed or sent anywhere.
    """
    accepted = salt_key.get_key(__opts__).list_status("accepted").get("minions", [])
    result = {}
    for minion in accepted:
        _, grains, _ = salt_minions.get_minion_data(minion, __opts__)
        pillar = salt_pillar.Pillar(__opts__, grains or {"id": minion}, minion, "base")
        result[minion] = pillar.compile_pillar().get(KEY)
    return result


def _views(pillars):
    """{cluster: {minion: [controller ids its pillar lists]}}; minions of no cluster left out."""
    clusters = {}
    for minion, data in pillars.items():
        if not isinstance(data, dict) or not isinstance(data.get("cluster"), str):
            continue
        listed = data.get("controllers")
        entries = listed if isinstance(listed, list) else []
        ids = [c["id"] for c in entries if isinstance(c, dict) and isinstance(c.get("id"), str)]
        clusters.setdefault(data["cluster"], {})[minion] = ids
    return clusters


def _choose(clusters, wanted):
    if wanted:
        if wanted not in clusters:
            raise SaltRenderError(
                f"orch.control_plane: no minion has cluster {wanted!r} in its pillar; "
                f"valid: {', '.join(sorted(clusters)) or 'none (check the pillar top file)'}"
            )
        return wanted
    if len(clusters) == 1:
        return next(iter(clusters))
    if not clusters:
        raise SaltRenderError(
            f"orch.control_plane: no minion has pillar {KEY}:cluster "
            "(are the minions' keys accepted, and are they listed in pillar/top.sls?)"
        )
    raise SaltRenderError(
        f"orch.control_plane: {len(clusters)} clusters on this master "
        f"({', '.join(sorted(clusters))}); pick one: salt-run state.orchestrate "
        f'orch.control_plane pillar=\'{{"cluster": "{sorted(clusters)[0]}"}}\''
    )


def _controllers(name, members):
    """
    The cluster's controller ids, after the checks that one cluster file
    defines it and that its members are the controllers it lists.
    """
    if not any(members.values()):
        # No usable controller list: target the members, and validation
        # (the first step) reports what is wrong with it.
        return sorted(members)
    lists = {tuple(ids) for ids in members.values()}
    if len(lists) > 1:
        seen = "; ".join(f"{m} lists {', '.join(ids)}" for m, ids in sorted(members.items()))
        raise SaltRenderError(
            f"orch.control_plane: cluster {name!r} is defined more than once, with different "
            f"controllers ({seen}); give each cluster file its own {KEY}:cluster value"
        )
    (ids,) = lists
    strays = sorted(set(members) - set(ids))
    if strays:
        raise SaltRenderError(
            f"orch.control_plane: {', '.join(strays)} get cluster {name!r} from pillar but are "
            f"not in its {KEY}:controllers ({', '.join(ids)}); fix pillar/top.sls "
            "or the controller list"
        )
    silent = sorted(set(ids) - set(members))
    if silent:
        raise SaltRenderError(
            f"orch.control_plane: cluster {name!r} lists {', '.join(silent)} in "
            f"{KEY}:controllers, but they do not get this cluster's pillar "
            "(key not accepted, or not matched in pillar/top.sls)"
        )
    return list(ids)


def _sync(ids):
    """
    Before anything else, test mode included, on this cluster's controllers
    only: refresh their pillar (the steps target it), then sync custom
    modules, states and utils to the master (for the checks below) and to
    them (for their validation). Neither changes a host: they refresh Salt's
    own caches.
    """
    targets = {"tgt_type": "list", "timeout": 60}
    __salt__["saltutil.cmd"](ids, "saltutil.refresh_pillar", kwarg={"wait": True}, **targets)
    __salt__["saltutil.runner"]("saltutil.sync_all")
    __salt__["saltutil.cmd"](ids, "saltutil.sync_all", **targets)


def _identities(name, ids):
    """
    Ask the controllers themselves (k8s_cluster.identity: the cluster, the
    controller ids and the RBAC controller; no secret leaves a minion) and
    check that each answers for this cluster.
    """
    answers = __salt__["saltutil.cmd"](ids, "k8s_cluster.identity", tgt_type="list", timeout=30)
    views = {}
    for minion in ids:
        answer = answers.get(minion)
        data = answer.get("ret") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or data.get("cluster") != name:
            raise SaltRenderError(
                f"orch.control_plane: {minion} did not answer for cluster {name!r} "
                f"(answer: {data if isinstance(data, dict | str) else 'none: minion down?'})"
            )
        views[minion] = data
    return views


def run():
    clusters = _views(_minion_pillars())
    name = _choose(clusters, __pillar__.get("cluster"))
    ids = _controllers(name, clusters[name])
    _sync(ids)
    view = _identities(name, ids)[ids[0]]
    rbac = view["apply_from"]
    root = __salt__["config.get"](ROOT_OPTION, KEY)
    # The controllers by id: exactly the minions the cluster file lists.
    tgt = ",".join(ids)
    common = {"tgt": tgt, "tgt_type": "list", "expect_minions": True}

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
            {"tgt_type": "list"},
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
            {"tgt_type": "list"},
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
            {"tgt_type": "list"},
            {"require": [{"salt": "orch-rbac"}]},
        ]
    }
    return steps
