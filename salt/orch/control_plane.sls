#!py
"""
The whole job, in order; each step requires the one before and a failure
stops the run, naming the step (its state ID) and the minions that failed.

    salt-run state.orchestrate orch.control_plane
    salt-run state.orchestrate orch.control_plane pillar='{"cluster": "hardway"}'

1. sync custom modules and states to the master, and to each controller
   whose copy differs; run the whole formula on every controller at once in
   test mode (while this file compiles, in one job: k8s_orchestration.pending);
   when nothing would change anywhere, the checks of steps 3-7 run at once,
   read-only, in one more job; when they all pass too, the run is one step,
   orch-converged, that reports what was found (k8s_cluster.converged), and
   no state that could change a host
2. validate the cluster pillar on every controller; refuse a version change
   that breaks Kubernetes' skew policy (one minor at a time, no downgrade)
3. load balancer on all controllers; then exactly one VIP holder
4. etcd (when etcd:managed): a new cluster's members at once; a running one's
   members first follow the controller list (added as learners, promoted,
   stale or unlisted ones removed, one change at a time), then its members
   one at a time; refuse, naming each etcd server's answer, when
   the controllers do not see etcd quorum; the control plane on all
   controllers, one at a time
5. wait (bounded polling) until every apiserver is ready, directly and via the VIP
6. RBAC from one controller
7. verification report (k8s_health.summary)

With one cluster on the master no argument is needed; with several, pass
pillar='{"cluster": NAME}' (the k8s_control_plane:cluster pillar value).
"""

from salt.exceptions import CommandExecutionError, SaltRenderError


def _cluster(wanted):
    """
    The cluster, its controller ids, the pillar key and the formula's root
    folder (k8s_orchestration.cluster). The master compiles the accepted
    minions' pillar itself (k8s_orchestration.cluster, after syncing the
    project's modules to the master only), so finding the cluster touches no
    minion; it refuses a cluster name shared by two cluster files and a
    minion the cluster does not list.
    """
    __salt__["saltutil.runner"]("saltutil.sync_all")
    try:
        found = __salt__["k8s_orchestration.cluster"](wanted, "orch.control_plane")
    except CommandExecutionError as exc:
        raise SaltRenderError(f"orch.control_plane: {exc}") from exc
    return found


def _identities(name, ids, identities):
    """
    What the controllers themselves answered (k8s_cluster.identity, in the
    plan job: the cluster, the controller ids and the RBAC controller; no
    secret leaves a minion): each must answer for this cluster.
    """
    for minion in ids:
        data = identities.get(minion)
        if not isinstance(data, dict) or data.get("cluster") != name:
            raise SaltRenderError(
                f"orch.control_plane: {minion} did not answer for cluster {name!r} "
                f"(answer: {data if isinstance(data, dict | str) else 'none: minion down?'})"
            )
    return identities


def run():
    found = _cluster(__pillar__.get("cluster"))
    name, ids = found["cluster"], found["controllers"]
    root = found["root"]  # the formula's folder on the master
    # Before anything else, test mode included, one job on this cluster's controllers at
    # once: the whole formula in test mode (changes nothing) and their identities; the
    # project synced and their pillar refreshed first where either is not current.
    plan = __salt__["k8s_orchestration.pending"](ids, root, expected=found)
    view = _identities(name, ids, plan["identities"])[ids[0]]
    rbac = view["apply_from"]
    # The controllers by id: exactly the minions the cluster file lists.
    tgt = ",".join(ids)
    if plan["converged"]:
        # Nothing would change anywhere and every check passed: no step that could change
        # a host, one that reports what was found (k8s_cluster.converged).
        report = [{"name": name}, {"findings": plan["findings"]}]
        return {"orch-converged": {"k8s_cluster.converged": report}}
    common = {"tgt": tgt, "tgt_type": "list", "expect_minions": True}

    def on_all(require, **fields):
        data = dict(common, **fields)
        if require:
            data["require"] = [require]
        return [{k: v} for k, v in data.items()]

    steps = {}

    steps["orch-validate"] = {"salt.state": on_all(None, sls=[f"{root}.cluster.validate"])}
    # A version change that breaks the skew policy is refused before any change
    # (a fresh cluster has nothing installed and passes); orch.upgrade is the
    # way to change the minor of a running cluster with the VIP in mind.
    steps["orch-skew"] = {
        "k8s_upgrade.skew_checked": [
            {"name": name},
            {"tgt": tgt},
            {"tgt_type": "list"},
            {"require": [{"salt": "orch-validate"}]},
        ]
    }
    steps["orch-loadbalancer"] = {
        "salt.state": on_all({"k8s_upgrade": "orch-skew"}, sls=[f"{root}.loadbalancer"])
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
    # etcd: a new cluster's members start together (each waits for the others' votes);
    # once any controller holds etcd data, the members first follow the controller list
    # (k8s_cluster.etcd_members: one change at a time), then any etcd change restarts one
    # member at a time (batch 1, failhard: each restart waits for its member to be ready).
    statuses = [s for s in plan["etcd"].values() if isinstance(s, dict) and s.get("managed")]
    if any(s.get("data") for s in statuses):
        steps["orch-etcd-members"] = {
            "k8s_cluster.etcd_members": [
                {"name": name},
                {"tgt": ids},
                {"root": root},
                {"require": [{"k8s_cluster": "orch-vip-single-holder"}]},
            ]
        }
        steps["orch-etcd"] = {
            "salt.state": on_all(
                {"k8s_cluster": "orch-etcd-members"},
                sls=[f"{root}.etcd"],
                batch="1",
                failhard=True,
            )
        }
    else:
        steps["orch-etcd"] = {
            "salt.state": on_all({"k8s_cluster": "orch-vip-single-holder"}, sls=[f"{root}.etcd"])
        }
    # One controller at a time, each waiting for its own apiserver to be ready
    # (controlplane.services): a rollout never restarts every apiserver at once.
    # failhard: a controller whose state fails stops the batch there, so the
    # next controller is not touched (without it the batch goes on and only the
    # step's result is False at the end).
    # etcd without quorum: refuse before any apiserver restarts (it could not
    # get ready), naming each etcd server and its answer.
    steps["orch-etcd-quorum"] = {
        "k8s_cluster.etcd_quorum": [
            {"name": "etcd"},
            {"tgt": tgt},
            {"tgt_type": "list"},
            {"require": [{"salt": "orch-etcd"}]},
        ]
    }
    steps["orch-controlplane"] = {
        "salt.state": on_all(
            {"k8s_cluster": "orch-etcd-quorum"},
            sls=[f"{root}.controlplane"],
            batch="1",
            failhard=True,
        )
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
