"""etcd snapshots and restore (issue 21) on the real control plane, on the converged lab
test_secrets hands over:

* objects written (a ConfigMap, a Secret, a ClusterRole and its binding), then the master's
  schedule (every few seconds for this module) takes a snapshot: sealed on the controller,
  kept root-only on the master, nothing left behind on the way;
* orch.restore refuses while etcd has quorum, changing nothing;
* etcd's data wiped on every controller: orch.restore brings the snapshot back (the objects
  through the VIP, the Secret still encrypted in etcd, what was written after the snapshot
  gone, a new etcd cluster), timed, under a probe through the VIP;
* two of three members' disks destroyed (lost quorum): the same without being told to;
* then a no-op orchestration: the restored cluster is the converged one, handed to
  test_renewal.
"""

import base64
import json
import stat
import time

import pytest

from tests.lab.handover import hand_over
from tools.lab import lab
from tools.lab.common import MASTER_DIR, poll
from tools.lab.master import SNAPSHOTS_DIR, reschedule
from tools.lab.probe import ApiProbe

VIP_SERVER = f"--server=https://{lab.vip()}:8443"
ETCDCTL = (
    "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/ca.pem"
    " --cert=/etc/etcd/etcd.pem --key=/etc/etcd/etcd-key.pem"
)
OBJECTS = (
    "create configmap snap-cm --from-literal=word=kept42",
    "create secret generic snap-secret --from-literal=word=sealed42",
    "create clusterrole snap-reader --verb=get --resource=configmaps",
    "create clusterrolebinding snap-reader --clusterrole=snap-reader --user=snap-user",
)
FIRST = "k8s-controller-1"


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def kubectl(args: str, name: str = FIRST) -> str:
    return ok(lab.kubectl(name, f"{VIP_SERVER} {args}"))


def snapshots() -> list[dict]:
    data, proc = lab.salt_json(["salt-run", "k8s_snapshot.list"])
    assert isinstance(data, list), proc.stdout[-2000:] + proc.stderr[-2000:]
    return data


def _cluster_id(name: str = FIRST) -> str:
    out = ok(lab.cexec(name, f"{ETCDCTL} endpoint status -w json"))
    return str(json.loads(out)[0]["Status"]["header"]["cluster_id"])


def _wipe(names) -> None:
    for name in names:
        ok(lab.cexec(name, "systemctl stop etcd && rm -rf /var/lib/etcd"))


def _restore(measured, what, pillar=None):
    with ApiProbe("/readyz") as probe:
        start = time.monotonic()
        report, proc = lab.orchestrate(sls="orch.restore", pillar=pillar)
        took = time.monotonic() - start
    measured[f"snapshots: restore, {what}"] = took
    measured[f"snapshots: restore, {what}: failed probe calls (count)"] = probe.result["failures"]
    assert report["ok"], "\n".join(report["errors"])[-6000:]
    return report, proc


def _restored_as_the_snapshot() -> None:
    """The snapshot's objects read back through the VIP, the Secret encrypted in etcd."""
    data = json.loads(kubectl("get configmap snap-cm -o json"))["data"]
    assert data == {"word": "kept42"}
    secret = kubectl("get secret snap-secret -o jsonpath={.data.word}")
    assert base64.b64decode(secret) == b"sealed42"
    kubectl("get clusterrole snap-reader")
    assert kubectl("auth can-i get configmaps --as=snap-user").strip() == "yes"
    for name in lab.controllers():
        key = "/registry/secrets/default/snap-secret"
        head = ok(lab.cexec(name, f"{ETCDCTL} get {key} --print-value-only | head -c 23"))
        assert head == "k8s:enc:aescbc:v1:key1:", f"{name}: etcd holds {head!r}"


@pytest.fixture(scope="module")
def scheduled(converged_lab, measured):
    """The objects written, then one snapshot taken by the master's schedule."""
    for command in OBJECTS:
        kubectl(command)
    before = {s["name"] for s in snapshots()}
    start = time.monotonic()
    try:
        reschedule(snapshot_seconds=5)
        new = poll(
            "the master's schedule to take a snapshot",
            lambda: [s for s in snapshots() if s["name"] not in before],
            120,
            1,
        )
    finally:
        reschedule()
    # the restart above may kill a scheduled take between its push and the move out of the
    # master's cache (seen in CI, 2026-12-06): the next take removes what that one left
    data, proc = lab.salt_json(["salt-run", "k8s_snapshot.take", "reason=manual"], 300)
    assert isinstance(data, dict) and data.get("name"), proc.stdout[-2000:] + proc.stderr[-2000:]
    measured["snapshots: a scheduled snapshot (master restarts included)"] = (
        time.monotonic() - start
    )
    # what was written after it must not come back
    kubectl("create configmap after-snap --from-literal=word=gone")
    return sorted(new, key=lambda s: s["taken"])[-1]


def test_the_schedule_takes_a_sealed_snapshot_kept_root_only(scheduled):
    assert scheduled["cluster"] == "hardway" and scheduled["bytes"] > 0
    assert scheduled["name"].endswith(".db.sealed")
    directory = SNAPSHOTS_DIR / "hardway"
    for path in (SNAPSHOTS_DIR, directory):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert not path.name.endswith(".part"), path
        # sealed: neither the ConfigMap's value (plain in etcd) nor etcd's keys in the clear
        body = path.read_bytes()
        assert b"kept42" not in body and b"/registry/" not in body, path
    # nothing left on the way: the master's cache of pushed files, the controllers' work dirs
    pushed = list((MASTER_DIR / "cache" / "minions").glob("*/files/**/*.sealed"))
    assert pushed == [], pushed
    for name in lab.controllers():
        left = lab.cexec(name, "ls -A /var/lib/etcd.snapshots 2>&1").stdout
        assert "No such file" in left, f"{name}: {left}"


def test_a_restore_is_refused_while_etcd_has_quorum(scheduled):
    before = _cluster_id()
    report, proc = lab.orchestrate(sls="orch.restore")
    assert not report["ok"]
    out = proc.stdout + proc.stderr
    assert "refused, nothing changed: etcd still has a healthy quorum" in out, out[-3000:]
    assert _cluster_id() == before
    kubectl("get configmap after-snap")


def test_wiped_etcd_comes_back_from_the_snapshot(scheduled, measured):
    """Every member's data wiped: the newest snapshot (the scheduled one) restored."""
    before = _cluster_id()
    _wipe(lab.controllers())
    _restore(measured, "every member wiped")
    _restored_as_the_snapshot()
    gone = lab.kubectl(FIRST, f"{VIP_SERVER} get configmap after-snap")
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stderr
    assert _cluster_id() != before  # a new cluster: no old member could join it
    for name in lab.controllers():  # the same cluster everywhere
        assert _cluster_id(name) == _cluster_id()


def test_lost_quorum_is_restored_without_force(scheduled, measured):
    """Two of three members' disks destroyed: the third has no quorum, so orch.restore goes
    ahead unasked, from a snapshot taken just before (salt-run k8s_snapshot.take)."""
    data, proc = lab.salt_json(["salt-run", "k8s_snapshot.take", "reason=test"])
    assert isinstance(data, dict) and data.get("name"), proc.stdout[-2000:] + proc.stderr
    kubectl("create configmap after-snap --from-literal=word=gone")
    _wipe(["k8s-controller-2", "k8s-controller-3"])
    _restore(measured, "two of three members lost", {"snapshot": data["name"]})
    _restored_as_the_snapshot()
    assert lab.kubectl(FIRST, f"{VIP_SERVER} get configmap after-snap").returncode != 0
    # the surviving member's data kept aside under the restore's token, root-only
    aside = ok(lab.cexec(FIRST, "stat -c %a /var/lib/etcd.before-restore")).strip()
    assert aside == "700"
    kept = ok(lab.cexec(FIRST, "ls -d /var/lib/etcd.before-restore/*/member")).split()
    assert len(kept) == 1 and "-restore-" in kept[0], kept


def test_the_restored_cluster_is_the_converged_one(scheduled, measured):
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["snapshots: orchestration after the restores"] = time.monotonic() - start
    assert report["ok"], "\n".join(report["errors"])[-6000:]
    # converged: nothing left to do, so the run is the one read-only step
    assert [step["id"] for step in report["steps"]] == ["orch-converged"], report["steps"]
    for name in ("after-snap",):
        lab.kubectl(FIRST, f"delete configmap {name} --ignore-not-found")
    hand_over()  # converged, no override: test_renewal takes this lab
