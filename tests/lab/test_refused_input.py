"""Nothing changes on failure (issue 7, item 4): invalid pillars on a converged lab.

For a sample of the invalid-pillar corpus (tests/corpus/invalid.yaml), each of a kind that would
do damage if it got through (a port collision, a bad VIP, a misspelled key whose setting would be
silently dropped, the seed's auth_pass, an apiserver certificate without the VIP, certificates
not signed by the CA), on a converged lab:

- snapshot every managed file (sha256, mode, owner, link target under /etc/haproxy,
  /etc/keepalived, /var/lib/kubernetes, /etc/kubernetes, /etc/etcd, /etc/systemd/system,
  /usr/local/bin, /etc/sysctl.d), every service's state (ActiveState, SubState, MainPID, start
  time, restarts, haproxy's workers and keepalived's child) and the VIP holder on all controllers
  (tools/lab/snapshot.py);
- put the case's keys (and, for a PKI fault, the case's secrets, made as tests/corpus makes them)
  in the lab's override pillar;
- run `salt-run state.orchestrate orch.control_plane` for real: it fails at orch-validate with
  every error of the case and no later step runs; then `salt 'k8s-controller-*' state.apply` for
  real: the validation state fails with the same errors and no other state runs or changes;
- the snapshot is identical.

At the end the valid pillar comes back and the next orchestration is a no-op (no state changes,
the same snapshot).
"""

import time

import pytest

from tests import corpus
from tests.lab.handover import hand_over
from tests.support import orchestration
from tools.lab import lab, snapshot

SAMPLE = (
    "tls-port-etcd-client",  # haproxy would bind etcd's client port: etcd or haproxy down
    "vip-network-address",  # keepalived would hold 10.240.0.0: no VIP, no API
    "service-cidr-typo",  # servce_cidr: the default 10.32.0.0/24 would silently apply
    "seed-style-auth-pass",  # the seed's password under keepalived: ignored, shown in plain text
    "sans-without-vip",  # apiserver certificate without the VIP: TLS through the VIP breaks
    "foreign-ca",  # certificates not signed by ca.pem: every client would fail
)
CASES = {c["name"]: c for c in corpus.cases(yaml_faults=False)}
VALIDATED = "k8s_control_plane-cluster-validate-k8s_cluster-validated"
STATE: dict = {}


def expected_errors(case) -> list[str]:
    supported = "1.18.x - 1.37.x"
    return [
        "k8s_control_plane:" + e.replace("{supported}", supported).replace("<file>", "hardway")
        for e in case["errors"]
    ]


def case_override(case) -> dict:
    """The case as lab pillar: its keys and, for a PKI fault, the secrets it starts from."""
    data = corpus.apply_changes({}, case.get("set"))
    if case.get("pki"):
        # a pillar-supplied PKI with a fault: pki:source pillar, as the corpus case says
        data["pki"] = {"source": "pillar"}
        data["secrets"] = corpus.case_secrets(case)
    return data


@pytest.fixture(scope="module")
def converged(converged_lab, measured):
    """The converged lab (test_clean's, handed over, or a fresh one) and its snapshot."""
    snap = snapshot.managed()
    lab.say(f"snapshot of the converged lab: {snapshot.summary(snap)}")
    STATE["converged"] = snap
    try:
        yield snap
    finally:
        lab.set_overrides(None)


def test_sample_is_in_the_corpus():
    assert set(SAMPLE) <= set(CASES)
    assert len(SAMPLE) >= 5
    # a port collision, a VIP fault, an unknown key, and two PKI faults among them
    assert sum("pki" in CASES[n] for n in SAMPLE) >= 2


@pytest.mark.parametrize("name", SAMPLE)
def test_invalid_pillar_changes_nothing(name, converged, measured):
    case = CASES[name]
    errors = expected_errors(case)
    before = snapshot.managed()
    assert before["vip holders"] == converged["vip holders"]
    lab.set_overrides(case_override(case))
    try:
        start = time.monotonic()
        _, proc = lab.orchestrate()
        took_orch = time.monotonic() - start
        data = lab.parse_json(proc.stdout)
        assert proc.returncode != 0, proc.stdout[-3000:]
        assert isinstance(data, dict), (proc.stdout + proc.stderr)[-3000:]
        results = {r["__id__"]: r for r in next(iter(data["data"].values())).values()}
        validate = results["orch-validate"]
        assert validate["result"] is False, validate
        for error in errors:
            assert error in str(validate), f"orch-validate lacks: {error}\n{str(validate)[:3000]}"
        # Salt stops at the first failhard step (orch-controlplane): later ones are not reported.
        # a running cluster whose etcd members answer: its etcd step is the first failhard one
        # (under a PKI case's pillar etcd's client files are others, no member answers, and
        # the run has a new cluster's layout, failhard at orch-controlplane)
        layouts = [
            orchestration.steps_reported_after_a_failed_validation(
                orchestration.compile_steps(running=running)
            )
            for running in (not case.get("pki"), bool(case.get("pki")))
        ]
        steps = layouts[0]
        assert set(results) == set(steps), (sorted(results), layouts)
        for step in steps[1:]:
            assert results[step]["result"] is False, step
            assert "requisite" in results[step]["comment"].lower(), results[step]["comment"]
            assert results[step]["changes"] == {}, step
        if name == "seed-style-auth-pass":
            assert "k8s-pass" not in proc.stdout + proc.stderr

        lab.salt_cmd(["salt", "k8s-controller-*", "saltutil.refresh_pillar", "wait=True"])
        start = time.monotonic()
        high, hproc = lab.salt_json(["salt", "--static", "k8s-controller-*", "state.apply"], 900)
        took_high = time.monotonic() - start
        # (the salt CLI's exit code is 0 here with --static: the states' results are the test)
        assert isinstance(high, dict) and set(high) == set(lab.controllers()), hproc.stdout[-3000:]
        for minion, states in high.items():
            assert isinstance(states, dict), f"{minion}: {states}"
            by_id = {s["__id__"]: s for s in states.values()}
            assert by_id[VALIDATED]["result"] is False, (minion, by_id[VALIDATED])
            for error in errors:
                assert error in by_id[VALIDATED]["comment"], (minion, error)
            ran = {
                sid: s["comment"][:200]
                for sid, s in by_id.items()
                if sid != VALIDATED and (s["result"] is not False or s["changes"])
            }
            assert not ran, f"{minion}: states ran past the failed validation: {ran}"
        if name == "seed-style-auth-pass":
            assert "k8s-pass" not in hproc.stdout + hproc.stderr
    finally:
        lab.set_overrides(None)
    after = snapshot.managed()
    measured[f"refused: {name} (orchestration)"] = took_orch
    measured[f"refused: {name} (highstate)"] = took_high
    changed = snapshot.compare(before, after)
    assert not changed, f"{name} changed the controllers:\n" + "\n".join(changed[:50])
    assert not snapshot.compare(converged, after), "the lab drifted from its converged state"


def test_valid_pillar_back_the_next_orchestration_is_a_no_op(converged, measured):
    lab.set_overrides(None)
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["refused input: orchestration after (no-op)"] = time.monotonic() - start
    assert report["ok"], "\n".join(report["errors"])[-6000:]
    assert report["state_changes"] == []
    changed = snapshot.compare(converged, snapshot.managed())
    assert not changed, "\n".join(changed[:50])
    hand_over()  # converged, no override: test_secrets takes this lab
