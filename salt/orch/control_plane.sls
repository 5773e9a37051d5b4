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


def _leaving(name, found, ids, membership):
    """
    Minions that get the cluster's pillar but are no longer in its list: controllers being
    removed when each is an etcd member of the cluster (refused otherwise, before any
    change: a minion matched by mistake); with the removal refused too when it would leave
    etcd without a healthy quorum. Returns {minion: whether it answers} (one that does
    not is only removed from etcd: the host is gone).
    """
    leaving = found.get("leaving") or []
    if not leaving:
        return {}
    errors = __salt__["k8s_orchestration.leaving_errors"](name, leaving, ids, membership)
    errors += (membership or {}).get("errors") or []
    if errors:
        raise SaltRenderError("orch.control_plane: " + "; ".join(errors))
    answers = __salt__["saltutil.cmd"](leaving, "test.ping", tgt_type="list", timeout=10)
    return {m: bool((answers.get(m) or {}).get("ret")) for m in leaving}


def _rolling(ids, pending, root):
    """
    The controllers whose control plane a real run would change, in list order: any
    pending change (k8s_orchestration.pending) that is not the load balancer's or etcd's
    own (those steps ran before); a controller whose test run said nothing usable counts.
    """
    others = tuple(f"{root}-{part}" for part in ("loadbalancer", "etcd", "pki-etcd"))
    return [
        minion
        for minion in ids
        if any(not str(line).startswith(others) for line in pending.get(minion, []))
    ]


def _new_etcd_ca(ids, pending, root):
    """
    The controllers where a real run would change etcd's CA file (k8s_orchestration.pending):
    a CA change, such as pki:source switched. Its members cannot restart one at a time (one
    on the new CA and the others on the old one refuse each other, so the first could not
    become ready), so they restart together, as a new cluster's start.
    """
    ca = f"{root}-pki-etcd-file-managed-ca.pem:"
    return [m for m in ids if any(str(line).startswith(ca) for line in pending.get(m, []))]


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
    membership = plan["membership"]  # None when etcd is not managed
    leaving = _leaving(name, found, ids, membership)
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
    answering = [m for m, up in leaving.items() if up]
    before_lb = {"k8s_upgrade": "orch-skew"}
    if answering:
        # a controller removed from the list: its keepalived and haproxy go first (the VIP
        # moves to the next controller by priority), then the others drop it as a peer
        steps["orch-leave-drain"] = {
            "salt.state": [
                {"tgt": ",".join(answering)},
                {"tgt_type": "list"},
                {"sls": [f"{root}.loadbalancer.clean"]},
                {"require": [before_lb]},
            ]
        }
        before_lb = {"salt": "orch-leave-drain"}
    steps["orch-loadbalancer"] = {"salt.state": on_all(before_lb, sls=[f"{root}.loadbalancer"])}
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
    # (a cluster whose members all stopped starts them together too: no member could
    # become ready alone; and a CA change restarts them together: _new_etcd_ca)
    if membership and membership["members"]:
        if membership["errors"]:
            raise SaltRenderError(
                "orch.control_plane: etcd membership: " + "; ".join(membership["errors"])
            )
        steps["orch-etcd-members"] = {
            "k8s_cluster.etcd_members": [
                {"name": name},
                {"tgt": ids},
                {"root": root},
                {"require": [{"k8s_cluster": "orch-vip-single-holder"}]},
            ]
        }
        after_members = {"k8s_cluster": "orch-etcd-members"}
        if answering:
            # the removed controllers' services stopped and their files removed, once their
            # members are gone from etcd and their apiservers from every haproxy
            steps["orch-leave-clean"] = {
                "salt.state": [
                    {"tgt": ",".join(answering)},
                    {"tgt_type": "list"},
                    {"sls": [f"{root}.clean"]},
                    {"require": [after_members]},
                ]
            }
            after_members = {"salt": "orch-leave-clean"}
        one_at_a_time = {} if _new_etcd_ca(ids, plan["pending"], root) else {"batch": "1"}
        steps["orch-etcd"] = {
            "salt.state": on_all(
                after_members, sls=[f"{root}.etcd"], failhard=True, **one_at_a_time
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
    if membership and membership["members"]:
        # A running cluster: only the controllers whose control plane would change, one
        # at a time, each taken out of every haproxy's rotation first (no new call goes
        # to an apiserver about to restart; the open ones finish) and put back once ready
        # and UP everywhere, as orch.upgrade does; orch-controlplane then has every
        # apiserver in every haproxy's rotation and UP (one an interrupted run left
        # drained too).
        previous = {"k8s_cluster": "orch-etcd-quorum"}
        for minion in _rolling(ids, plan["pending"], root):
            step = f"orch-controlplane-{minion}"
            backend = [{"name": minion}, {"tgt": tgt}, {"tgt_type": "list"}, {"always": True}]
            steps[f"{step}-drain"] = {
                "k8s_upgrade.backend_drained": [*backend, {"require": [previous]}]
            }
            steps[step] = {
                "salt.state": [
                    {"tgt": minion},
                    {"tgt_type": "list"},
                    {"sls": [f"{root}.controlplane"]},
                    {"expect_minions": True},
                    {"require": [{"k8s_upgrade": f"{step}-drain"}]},
                ]
            }
            steps[f"{step}-restore"] = {
                "k8s_upgrade.backend_restored": [*backend, {"require": [{"salt": step}]}]
            }
            previous = {"k8s_upgrade": f"{step}-restore"}
        steps["orch-controlplane"] = {
            "k8s_upgrade.backends_restored": [
                {"name": "control plane"},
                {"tgt": tgt},
                {"require": [previous]},
            ]
        }
        controlplane = {"k8s_upgrade": "orch-controlplane"}
    else:
        steps["orch-controlplane"] = {
            "salt.state": on_all(
                {"k8s_cluster": "orch-etcd-quorum"},
                sls=[f"{root}.controlplane"],
                batch="1",
                failhard=True,
            )
        }
        controlplane = {"salt": "orch-controlplane"}
    steps["orch-wait-ready"] = {
        "k8s_cluster.apiservers_ready": [
            {"name": "apiservers"},
            {"tgt": tgt},
            {"tgt_type": "list"},
            {"require": [controlplane]},
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
