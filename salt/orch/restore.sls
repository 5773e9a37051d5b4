#!py
"""
Restore etcd from a snapshot kept on the master (docs/snapshots.md): the way back from lost
data or a lost quorum (two of three members' disks gone for good).

    salt-run state.orchestrate orch.restore                       # the newest snapshot
    salt-run state.orchestrate orch.restore pillar='{"snapshot": "<name>"}'
    salt-run state.orchestrate orch.restore pillar='{"force": true}'   # quorum still healthy

1. refuse, changing nothing, while any controller still sees a healthy etcd quorum (a
   restore throws away every write since the snapshot) unless ``force`` is given, when a
   controller does not answer, or for a snapshot the master does not keep
2. the encryption keys retired since the snapshot listed again (k8s_encryption.relist,
   docs/encryption.md), so that the Secrets it holds under them stay readable
3. on every controller at once, stopping nothing: fetch the same sealed snapshot, open it
   and restore it beside etcd's data (``etcdutl snapshot restore --bump-revision
   1000000000 --mark-compacted``, a new cluster token: the restored members form a new
   cluster that no old member can join); then, once every controller holds it, stop
   kube-apiserver, kube-controller-manager, kube-scheduler and etcd and swap the data in;
   the data before is kept in ``<data_dir>.before-restore/<token>``
4. start etcd on every controller at once (each waits for the others' quorum), then wait
   until every controller sees quorum
5. the control plane on every controller (its encryption config, its apiserver, then
   controller-manager and scheduler, started afresh: etcd's revisions jumped, so their
   informers relist)
6. wait until every apiserver is ready, directly and via the VIP; the seed's verification

With several clusters on the master pass pillar='{"cluster": NAME}'.
"""

import datetime

from salt.exceptions import CommandExecutionError, SaltRenderError


def _cluster(wanted):
    """The cluster and its controllers, found on the master (see orch.control_plane)."""
    __salt__["saltutil.runner"]("saltutil.sync_all")
    try:
        found = __salt__["k8s_orchestration.cluster"](wanted, "orch.restore")
    except CommandExecutionError as exc:
        raise SaltRenderError(f"orch.restore: {exc}") from exc
    if found.get("leaving"):
        raise SaltRenderError(
            f"orch.restore: {', '.join(found['leaving'])} get cluster {found['cluster']!r} "
            "from pillar but are not in its controller list: a restore makes a cluster of the "
            "listed controllers only; fix the list (or run orch.control_plane) first"
        )
    return found


def _snapshot(name, wanted):
    """The snapshot to restore: the one named, else the newest the master keeps."""
    kept = __salt__["saltutil.runner"]("k8s_snapshot.list", cluster=name)
    if not isinstance(kept, list):
        raise SaltRenderError(f"orch.restore: the master lists no snapshots: {kept}")
    names = [s["name"] for s in kept]
    if wanted:
        if wanted not in names:
            raise SaltRenderError(
                f"orch.restore: the master keeps no snapshot {wanted!r} of {name}; kept: "
                + (", ".join(names) or "none (salt-run k8s_snapshot.take makes one)")
            )
        return wanted
    if not names:
        raise SaltRenderError(
            f"orch.restore: the master keeps no snapshot of {name} (salt-run "
            "k8s_snapshot.take makes one)"
        )
    return names[0]


def _quorum_seen(ids):
    """
    {controller: what it sees} for the controllers that still see a healthy etcd quorum, and
    the controllers that did not answer (a restore needs every one: each restores its
    member, and one not heard from may still see a quorum).
    """
    answers = __salt__["saltutil.cmd"](ids, "k8s_health.etcd", tgt_type="list", timeout=15)
    seen, silent = {}, []
    for minion in ids:
        answer = answers.get(minion)
        view = answer.get("ret") if isinstance(answer, dict) else None
        if not isinstance(view, dict):
            silent.append(minion)
        elif view.get("quorum"):
            seen[minion] = view["comment"]
    return seen, silent


def run():
    # the orchestration's pillar=... (Salt's loader gives a mapping, not a dict)
    options = __pillar__
    found = _cluster(options.get("cluster"))
    name, ids, root = found["cluster"], found["controllers"], found["root"]
    snapshot = _snapshot(name, options.get("snapshot"))
    seen, silent = _quorum_seen(ids)
    if silent:
        raise SaltRenderError(
            f"orch.restore: refused, nothing changed: no answer from {', '.join(silent)} "
            "(each controller restores its own member: bring its minion back, or take it out "
            "of the controller list first)"
        )
    if seen and options.get("force") is not True:
        raise SaltRenderError(
            "orch.restore: refused, nothing changed: etcd still has a healthy quorum ("
            + "; ".join(f"{m} sees {c}" for m, c in sorted(seen.items()))
            + "). A restore throws away every write since the snapshot; to do it all the same "
            "pass pillar='{\"force\": true}'"
        )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    token = f"{name}-restore-{stamp}"
    tgt = [{"tgt": ids}, {"tgt_type": "list"}, {"expect_minions": True}]
    return {
        # the encryption keys retired since the snapshot listed again (the master's list; the
        # control-plane step below writes it): the restored Secrets they hold stay readable
        "orch-restore-keys": {
            "salt.runner": [
                {"name": "k8s_encryption.relist"},
                {"snapshot": snapshot},
                {"cluster": name},
                {"failhard": True},
            ]
        },
        # nothing stops until every controller holds the restored data: a bad key, a
        # snapshot gone or a full disk stops the run here with the cluster as it was
        "orch-restore-prepare": {
            "salt.function": [
                {"name": "k8s_etcd.snapshot_prepare"},
                *tgt,
                {"arg": [snapshot, token]},
                {"timeout": 900},
                {"failhard": True},
                {"require": [{"salt": "orch-restore-keys"}]},
            ]
        },
        "orch-restore-snapshot": {
            "salt.function": [
                {"name": "k8s_etcd.snapshot_swap"},
                *tgt,
                {"arg": [token]},
                {"timeout": 300},
                {"failhard": True},
                {"require": [{"salt": "orch-restore-prepare"}]},
            ]
        },
        # etcd is Type=notify: each start returns once the members found their quorum, so
        # they start in one job, together
        "orch-restore-etcd": {
            "salt.function": [
                {"name": "service.start"},
                *tgt,
                {"arg": ["etcd"]},
                {"timeout": 300},
                {"failhard": True},
                {"require": [{"salt": "orch-restore-snapshot"}]},
            ]
        },
        "orch-etcd-quorum": {
            "k8s_cluster.etcd_quorum": [
                {"name": "etcd"},
                {"tgt": ids},
                {"tgt_type": "list"},
                {"timeout": 120},
                {"require": [{"salt": "orch-restore-etcd"}]},
            ]
        },
        "orch-controlplane": {
            "salt.state": [
                *tgt,
                {"sls": [f"{root}.controlplane"]},
                {"require": [{"k8s_cluster": "orch-etcd-quorum"}]},
            ]
        },
        "orch-wait-ready": {
            "k8s_cluster.apiservers_ready": [
                {"name": "apiservers"},
                {"tgt": ids},
                {"tgt_type": "list"},
                {"require": [{"salt": "orch-controlplane"}]},
            ]
        },
        "orch-verify": {
            "k8s_cluster.verified": [
                {"name": name},
                {"tgt": ids},
                {"tgt_type": "list"},
                {"require": [{"k8s_cluster": "orch-wait-ready"}]},
            ]
        },
    }
