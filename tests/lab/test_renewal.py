"""Certificates renewed without a person (issue 21), on the converged lab test_snapshots hands
over: the renewal margin raised to just under the certificates' lifetime (pki:days_valid
3650, pki:renew_before_days 3649), so every certificate Salt issued falls due; the master's
schedule (every few seconds for this module) finds them due (k8s_certs.renew) and runs
orch.control_plane, the rolling, gated path, under a probe through the VIP every 100 ms;
then every certificate is new, the CA is the same, nothing is due, and a no-op
orchestration finds the cluster converged (handed to test_encryption).
"""

import time

import pytest

from tests.lab.handover import hand_over
from tools.lab import lab
from tools.lab.common import LOG_DIR, poll
from tools.lab.master import reschedule
from tools.lab.probe import ApiProbe

DUE = {"pki": {"days_valid": 3650, "renew_before_days": 3649}}
RENEWED = "renewed through orch.control_plane"


def _check() -> dict:
    data, proc = lab.salt_json(["salt-run", "k8s_certs.check"])
    assert isinstance(data, dict) and "due" in data, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert data["errors"] == {} and sorted(data["controllers"]) == list(lab.controllers()), data
    return data


def _expiry() -> dict:
    data, _ = lab.salt_json(["salt", "--static", "k8s-controller-*", "k8s_pki.expiry"])
    assert isinstance(data, dict) and sorted(data) == list(lab.controllers()), data
    return {m: {c["file"]: c for c in e["certificates"]} for m, e in data.items()}


@pytest.fixture(scope="module")
def renewed(converged_lab, measured):
    before = _expiry()
    lab.set_overrides(DUE)
    lab.salt_cmd(["salt", "k8s-controller-*", "saltutil.refresh_pillar", "wait=True"])
    due = _check()["due"]
    log = LOG_DIR / "master.log"
    seen = log.read_text(errors="replace").count(RENEWED)
    try:
        with ApiProbe("/readyz") as probe:
            start = time.monotonic()
            reschedule(renewal_seconds=5)
            poll(
                "the master's schedule to renew the certificates",
                lambda: log.read_text(errors="replace").count(RENEWED) > seen,
                900,
                2,
            )
            took = time.monotonic() - start
            reschedule()
    finally:
        reschedule()
        lab.set_overrides(None)
    measured["renewal: by the schedule, every certificate due"] = took
    measured["renewal: failed probe calls (count)"] = probe.result["failures"]
    return {"before": before, "due": due, "after": _expiry(), "probe": probe.result}


def test_every_issued_certificate_fell_due_on_every_controller(renewed):
    assert sorted(renewed["due"]) == list(lab.controllers())
    for files in renewed["due"].values():
        assert "/var/lib/kubernetes/kubernetes.pem" in files, files
        assert "/etc/etcd/etcd.pem" in files, files
        assert "/var/lib/kubernetes/admin.kubeconfig (its client)" in files, files
        assert not [f for f in files if "ca.pem" in f or "(its CA)" in f], files  # not the CA


def test_the_schedule_renewed_them_with_no_failed_call(renewed):
    probe = renewed["probe"]
    assert probe["calls"] > 100, probe
    assert probe["failures"] == 0, probe["failed"]
    for minion, after in renewed["after"].items():
        before = renewed["before"][minion]
        for path, cert in after.items():
            if cert["ca"]:
                assert cert["not_after"] == before[path]["not_after"], (minion, path)
            else:
                assert cert["days_left"] > 3649, (minion, path, cert)


def test_nothing_is_due_and_the_cluster_is_converged(renewed, measured):
    assert _check()["due"] == {}
    start = time.monotonic()
    report, _ = lab.orchestrate()  # back at the default lifetime: nothing to re-issue
    measured["renewal: orchestration after it"] = time.monotonic() - start
    assert report["ok"], "\n".join(report["errors"])[-6000:]
    assert [step["id"] for step in report["steps"]] == ["orch-converged"], report["steps"]
    hand_over()  # converged, no override: test_encryption takes this lab
