"""_runners/k8s_certs.py (issue 21) with Salt stood in: nothing due runs nothing; certificates
due with nothing else pending run orch.control_plane once; other changes pending as well run
nothing and are named; a controller that does not answer stops it."""

import pytest
import salt.client
from salt.exceptions import CommandExecutionError

from tests.support.cluster import REPO, load_file, utils_mapping

IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]
ROOT = "k8s_control_plane"
RENEWAL = [
    f"{ROOT}-pki-x509-certificate_managed-kubernetes.pem: would change",
    f"{ROOT}-pki-k8s_pki-kubeconfig_managed-admin.kubeconfig: would change",
    f"{ROOT}-pki-etcd-x509-certificate_managed-etcd.pem: would change",
    f"{ROOT}-etcd-k8s_etcd-turn_taken: would change",
    f"{ROOT}-etcd-k8s_etcd-restart_safe: would change",
    f"{ROOT}-etcd-service-running: would change",
    f"{ROOT}-controlplane-services-service-running-kube-apiserver: would change",
]


def _expiry(due=(), by_hand=()):
    first = {"file": "/var/lib/kubernetes/kubernetes.pem", "days_left": 12.0 if due else 300.0}
    return {"due": [*due, *by_hand], "renew": list(due), "soonest": first, "comment": "..."}


class _Client:
    """k8s_pki.expiry's answers, one set per call (the last one repeated)."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def cmd(self, tgt, fun, **_kwargs):
        assert (tgt, fun) == (IDS, "k8s_pki.expiry")
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def runner(monkeypatch):
    module = load_file(REPO / "_runners" / "k8s_certs.py", "k8s_test_runner_k8s_certs")
    module.__opts__ = {}
    module.__utils__ = utils_mapping()
    module.orchestrated = []
    module.pending = {m: [] for m in IDS}

    def salt_cmd(fun, *args, **kwargs):
        if fun == "k8s_orchestration.cluster":
            return {"cluster": "hardway", "controllers": IDS, "root": ROOT}
        assert fun == "k8s_orchestration.pending"
        return {"pending": module.pending}

    def orchestrate(sls, pillar=None):
        module.orchestrated.append((sls, pillar))
        return {"data": {"master": {"a": {"__id__": "orch-verify", "result": True}}}}

    module.__salt__ = {"salt.cmd": salt_cmd, "state.orchestrate": orchestrate}

    def answer(*answers):
        client = _Client(*answers)
        monkeypatch.setattr(salt.client, "get_local_client", lambda **_k: client)

    module.answer = answer
    return module


def _ok(value):
    return {"ret": value, "retcode": 0}


def test_nothing_due_runs_nothing(runner):
    runner.answer({m: _ok(_expiry()) for m in IDS})
    done = runner.renew()
    assert done["renewed"] is False and "renews is due (soonest: 300.0)" in done["comment"]
    assert runner.orchestrated == []


def test_a_due_ca_is_named_and_runs_nothing(runner):
    ca = "/var/lib/kubernetes/ca.pem"
    runner.answer({m: _ok(_expiry(by_hand=[ca])) for m in IDS})
    done = runner.renew()
    assert done["renewed"] is False and done["by_hand"] == {m: [ca] for m in IDS}
    assert "not renewed by the formula (a CA, or the pillar's)" in done["comment"]
    assert runner.orchestrated == []


def test_due_certificates_alone_run_the_rolling_orchestration(runner):
    due = ["/var/lib/kubernetes/kubernetes.pem", "/etc/etcd/etcd.pem"]
    runner.answer({m: _ok(_expiry(due)) for m in IDS}, {m: _ok(_expiry()) for m in IDS})
    runner.pending = {m: list(RENEWAL) for m in IDS}
    done = runner.renew()
    assert done["renewed"] is True and done["due"] == {m: due for m in IDS}
    assert runner.orchestrated == [("orch.control_plane", {"cluster": "hardway"})]


def test_still_due_after_the_orchestration_is_an_error(runner):
    runner.answer({m: _ok(_expiry(["/etc/etcd/etcd.pem"])) for m in IDS})
    runner.pending = {m: list(RENEWAL) for m in IDS}
    with pytest.raises(CommandExecutionError, match=r"still due after orch\.control_plane"):
        runner.renew()


@pytest.mark.parametrize(
    ("pending", "named"),
    [
        ([f"{ROOT}-controlplane-services-service-running-kube-apiserver: would change"], "no PKI"),
        ([*RENEWAL, f"{ROOT}-pki-file-managed-x: fails (no policy)"], "fails (no policy)"),
    ],
)
def test_a_renewal_that_would_not_re_issue_or_would_fail_runs_nothing(runner, pending, named):
    runner.answer({m: _ok(_expiry(["/var/lib/kubernetes/kubernetes.pem"])) for m in IDS})
    runner.pending = {m: pending for m in IDS}
    done = runner.renew()
    assert done["renewed"] is False and runner.orchestrated == []
    assert all(named in line for line in done["other_changes"][:1]), done["other_changes"]


def test_other_pending_changes_run_nothing_and_are_named(runner):
    runner.answer({m: _ok(_expiry(["/var/lib/kubernetes/kubernetes.pem"])) for m in IDS})
    edit = f"{ROOT}-loadbalancer-haproxy-file-managed-config: would change"
    runner.pending = {m: [*RENEWAL, edit] if m == "k8s-controller-2" else RENEWAL for m in IDS}
    done = runner.renew()
    assert done["renewed"] is False and runner.orchestrated == []
    assert done["other_changes"] == [f"k8s-controller-2: {edit}"]


def test_a_controller_without_an_answer_stops_it(runner):
    runner.answer({"k8s-controller-1": _ok(_expiry(["x"])), "k8s-controller-2": _ok(_expiry())})
    with pytest.raises(CommandExecutionError, match="k8s-controller-3: no answer"):
        runner.renew()
    assert runner.orchestrated == []


def test_check_names_what_is_due(runner):
    runner.answer({m: _ok(_expiry(["a.pem"] if m == IDS[0] else [])) for m in IDS})
    assert runner.check()["due"] == {IDS[0]: ["a.pem"]}
