#!py
"""
A rolling upgrade of the control plane that keeps the API up through the VIP.

    # bump k8s_control_plane:kubernetes:version in the cluster's pillar, then
    salt-run state.orchestrate orch.upgrade
    # or name the version (and the cluster, with several on the master)
    salt-run state.orchestrate orch.upgrade pillar='{"version": "1.37.1", "cluster": "hardway"}'
    # and move the VIP off each controller while it is upgraded
    salt-run state.orchestrate orch.upgrade pillar='{"move_vip": true}'

1. validate the cluster pillar on every controller (with the new version)
2. refuse, before any change, an upgrade that breaks Kubernetes' version-skew
   policy: one minor at a time, no downgrade, apiservers within one minor,
   controller-manager and scheduler never newer than their apiserver; refuse
   when the controllers do not see etcd quorum (no apiserver could get ready);
   then one more etcd snapshot (salt-run k8s_snapshot.take, docs/snapshots.md)
3. then one controller at a time, the VIP holder last:
   a. drain its apiserver from every controller's haproxy (no new
      connection goes to it) and wait, bounded, for its sessions to end
   b. apply k8s_control_plane.controlplane on it: the new binaries, the units
      with the new version's flags; its apiserver restarts and is ready
      (/readyz) before its controller-manager and scheduler restart
   c. put it back in every haproxy's rotation and wait until each has it UP
   d. wait until every apiserver, the VIP and every haproxy backend are ready
4. the seed's verification on every controller

The VIP stays where it is: keepalived tracks haproxy, which the upgrade does
not touch, and moving the VIP cuts the connections in flight (see
_states/k8s_upgrade.py). With pillar='{"move_vip": true}' (for a keepalived
check that watches the apiserver), the holder's keepalived is also stopped
before step a (the VIP moves to exactly one other controller, or nothing
changes) and started after step d (it takes its VRRP role back).

A version given on the command line applies to this run only: the next
highstate with the old pillar version refuses to downgrade
(k8s_upgrade.installable); write the version in pillar.

A failure stops the run with the cluster serving (the controllers not yet
upgraded untouched), naming the controller and why; the failed controller's
apiserver stays drained. A re-run goes on where it stopped: the controllers
already at the version change nothing, and the drained one is put back once
ready. test=True predicts the steps.
"""

from salt.exceptions import CommandExecutionError, SaltRenderError


def _cluster(wanted):
    """The cluster and its controllers, found on the master (see orch.control_plane)."""
    __salt__["saltutil.runner"]("saltutil.sync_all")
    try:
        found = __salt__["k8s_orchestration.cluster"](wanted, "orch.upgrade")
    except CommandExecutionError as exc:
        raise SaltRenderError(f"orch.upgrade: {exc}") from exc
    if found.get("leaving"):
        raise SaltRenderError(
            f"orch.upgrade: {', '.join(found['leaving'])} get cluster {found['cluster']!r} "
            "from pillar but are not in its controller list: change the membership with "
            "orch.control_plane first (it removes them), then upgrade"
        )
    return found


def _holder(ids):
    """The VIP holder now (read-only), upgraded last so that the VIP moves once."""
    answers = __salt__["saltutil.cmd"](ids, "k8s_health.holds_vip", tgt_type="list", timeout=10)
    holders = sorted(m for m, a in answers.items() if isinstance(a, dict) and a.get("ret") is True)
    return holders[0] if len(holders) == 1 else None


def run():
    found = _cluster(__pillar__.get("cluster"))
    name, ids = found["cluster"], found["controllers"]
    targets = {"tgt_type": "list", "timeout": 60}
    __salt__["saltutil.cmd"](ids, "saltutil.refresh_pillar", kwarg={"wait": True}, **targets)
    __salt__["saltutil.cmd"](ids, "saltutil.sync_all", **targets)
    version = __pillar__.get("version")
    # A version given on the command line reaches the controllers' states as pillar.
    override = {found["pillar_key"]: {"kubernetes": {"version": str(version)}}} if version else None
    root = found["root"]  # the formula's folder on the master
    every = ",".join(ids)

    def state(tgt, sls, require, **extra):
        args = [{"tgt": tgt}, {"tgt_type": "list"}, {"sls": [sls]}, {"expect_minions": True}]
        if override:
            args.append({"pillar": override})
        if require:
            args.append({"require": [require]})
        return {"salt.state": args + [{k: v} for k, v in extra.items()]}

    def check(fun, label, require, **extra):
        args = [{"name": label}, {"tgt": every}, {"tgt_type": "list"}]
        args += [{k: v} for k, v in extra.items()]
        if require:
            args.append({"require": [require]})
        return {fun: args}

    steps = {"upgrade-validate": state(every, f"{root}.cluster.validate", None)}
    steps["upgrade-skew"] = check(
        "k8s_upgrade.skew_checked", name, {"salt": "upgrade-validate"}, version=version
    )
    steps["upgrade-etcd-quorum"] = check(
        "k8s_cluster.etcd_quorum", "etcd", {"k8s_upgrade": "upgrade-skew"}
    )
    # one more etcd snapshot before the first controller changes (docs/snapshots.md)
    steps["upgrade-snapshot"] = {
        "salt.runner": [
            {"name": "k8s_snapshot.take"},
            {"cluster": name},
            {"reason": "upgrade"},
            {"require": [{"k8s_cluster": "upgrade-etcd-quorum"}]},
        ]
    }
    previous = {"salt": "upgrade-snapshot"}
    move_vip = bool(__pillar__.get("move_vip"))
    holder = _holder(ids)
    for minion in [i for i in ids if i != holder] + [i for i in ids if i == holder]:
        step = f"upgrade-{minion}"
        if move_vip:
            steps[f"{step}-vip-away"] = check(
                "k8s_upgrade.vip_moved_away", minion, previous, version=version
            )
            previous = {"k8s_upgrade": f"{step}-vip-away"}
        steps[f"{step}-drain"] = check(
            "k8s_upgrade.backend_drained", minion, previous, version=version
        )
        steps[f"{step}-controlplane"] = state(
            minion, f"{root}.controlplane", {"k8s_upgrade": f"{step}-drain"}
        )
        steps[f"{step}-restore"] = check(
            "k8s_upgrade.backend_restored",
            minion,
            {"salt": f"{step}-controlplane"},
            version=version,
        )
        steps[f"{step}-ready"] = {
            "k8s_cluster.apiservers_ready": [
                {"name": minion},
                {"tgt": minion},
                {"tgt_type": "list"},
                {"require": [{"k8s_upgrade": f"{step}-restore"}]},
            ]
        }
        previous = {"k8s_cluster": f"{step}-ready"}
        if move_vip:
            steps[f"{step}-vip-back"] = check("k8s_upgrade.vip_given_back", minion, previous)
            previous = {"k8s_upgrade": f"{step}-vip-back"}
    steps["upgrade-verify"] = check("k8s_cluster.verified", name, previous)
    return steps
