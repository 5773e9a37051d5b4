"""The orchestration's master-side checks, with the controllers' answers mocked."""

import pytest

TGT = "I@k8s_control_plane:cluster:hardway"


@pytest.fixture
def orch(state_modules):
    def make(answers, test=False):
        calls = []

        def cmd(tgt, fun, tgt_type=None, kwarg=None, timeout=None, arg=None):
            calls.append((tgt, fun, kwarg))
            return answers(fun) if callable(answers) else answers

        module = state_modules(
            "k8s_cluster", __salt__={"saltutil.cmd": cmd}, __opts__={"test": test}
        )
        module.calls = calls
        return module

    return make


def _ok(ret):
    return {"ret": ret, "retcode": 0}


def test_vip_single_holder_waits_for_exactly_one(orch):
    polls = iter(
        [
            {"c1": _ok(True), "c2": _ok(True), "c3": _ok(False)},  # two holders: keep polling
            {"c1": _ok(True), "c2": _ok(False), "c3": _ok(False)},
        ]
    )
    module = orch(lambda fun: next(polls))
    ret = module.vip_single_holder("vip", TGT, timeout=5, interval=0)
    assert ret["result"] is True and ret["changes"] == {}
    assert ret["comment"] == "c1 holds the VIP"


def test_vip_single_holder_fails_naming_the_holders(orch):
    module = orch({"c1": _ok(True), "c2": _ok(True), "c3": {"ret": "Minion did not return"}})
    ret = module.vip_single_holder("vip", TGT, timeout=0, interval=0)
    assert ret["result"] is False
    assert "2 controllers hold the VIP (expected exactly 1): ['c1', 'c2']" in ret["comment"]
    assert "no answer from ['c3']" in ret["comment"]


def test_apiservers_ready_reports_in_the_comment_not_as_changes(orch):
    module = orch(
        {"c1": _ok({"ready": True, "seconds": 1.5}), "c2": _ok({"ready": True, "seconds": 0})}
    )
    ret = module.apiservers_ready("apiservers", TGT, timeout=30)
    assert ret == {
        "name": "apiservers",
        "changes": {},
        "result": True,
        "comment": "Ready: c1 after 1.5s, c2 after 0s",
    }
    assert module.calls == [(TGT, "k8s_health.wait_ready", {"timeout": 30})]


def test_apiservers_ready_fails_with_the_minion_and_its_error(orch):
    module = orch(
        {
            "c1": _ok({"ready": True, "seconds": 1}),
            "c2": {"ret": "not ready after 30s", "retcode": 1},
        }
    )
    ret = module.apiservers_ready("apiservers", TGT, timeout=30)
    assert ret["result"] is False
    assert ret["comment"] == "Not ready: c2: not ready after 30s"


def test_verified_lists_each_failed_check(orch):
    good = {"ok": True, "holds_vip": True, "apiserver": {"ok": True}}
    bad = {"ok": False, "holds_vip": False, "apiserver": {"ok": False}, "vip": {"ok": True}}
    module = orch({"c1": _ok(good), "c2": {"ret": bad, "retcode": 1}})
    ret = module.verified("hardway", TGT)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == "c1: ok (holds the VIP)\nc2: FAILED apiserver"


def _view(healthy, total, quorum):
    servers = {
        f"https://10.240.0.1{i + 1}:2379": {"healthy": i < healthy, "answer": "x"}
        for i in range(total)
    }
    comment = f"{healthy} of {total} etcd servers healthy" + ("" if quorum else ": no quorum")
    return {
        "quorum": quorum,
        "healthy": healthy,
        "total": total,
        "servers": servers,
        "comment": comment,
    }


def test_etcd_quorum_waits_for_every_controller_to_see_it(orch):
    polls = iter(
        [
            {"c1": _ok(_view(1, 3, False)), "c2": _ok(_view(2, 3, True))},  # electing: poll again
            {"c1": _ok(_view(3, 3, True)), "c2": _ok(_view(2, 3, True))},
        ]
    )
    module = orch(lambda fun: next(polls))
    ret = module.etcd_quorum("etcd", TGT, timeout=5, interval=0)
    assert ret["result"] is True and ret["changes"] == {}
    assert ret["comment"] == "etcd quorum: c1 sees 3 of 3, c2 sees 2 of 3"
    assert [call[1] for call in module.calls] == ["k8s_health.etcd"] * 2


def test_etcd_quorum_refuses_naming_each_server_and_what_to_do(orch):
    module = orch({"c1": _ok(_view(1, 3, False)), "c2": {"ret": "Minion did not return"}})
    ret = module.etcd_quorum("etcd", TGT, timeout=0, interval=0)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith(
        "etcd has no quorum after 0s, so the control plane was left as it is"
    )
    assert (
        "c1 sees 1 of 3 etcd servers healthy: no quorum (https://10.240.0.11:2379: x;"
        in (ret["comment"])
    )
    assert "c2: no answer (Minion did not return)" in ret["comment"]


def test_etcd_quorum_passes_unchecked_without_client_certificates(orch):
    unchecked = {"quorum": None, "healthy": 0, "total": 3, "servers": {}, "comment": "not checked"}
    module = orch({"c1": _ok(unchecked), "c2": _ok(_view(3, 3, True))})
    ret = module.etcd_quorum("etcd", TGT, timeout=5, interval=0)
    assert ret["result"] is True
    assert ret["comment"] == (
        "etcd quorum: c2 sees 3 of 3; not checked on c1 (no client certificate yet)"
    )


@pytest.mark.parametrize(
    "fun", ["vip_single_holder", "etcd_quorum", "apiservers_ready", "verified"]
)
def test_test_mode_predicts_without_asking(orch, fun):
    module = orch({}, test=True)
    ret = getattr(module, fun)("x", TGT)
    assert ret["result"] is None and ret["changes"] == {}
    assert module.calls == []


def test_no_minion_is_a_failure(orch):
    ret = orch({}).verified("hardway", TGT)
    assert ret["result"] is False
    assert f"no minion matched {TGT}" in ret["comment"]


def test_a_listed_controller_that_does_not_answer_fails_the_check(orch):
    """A minion stopped mid-orchestration: its checks must fail, not pass on the others."""
    summary = {"ok": True, "failed": [], "holds_vip": False}
    module = orch({"c1": _ok(summary), "c3": _ok(summary)})
    ret = module.verified("hardway", "c1,c2,c3", tgt_type="list")
    assert ret["result"] is False
    assert "c2" in ret["comment"] and "no answer (minion down?)" in ret["comment"]
    ready = orch({"c1": _ok({"ready": True, "seconds": 0})})
    ret = ready.apiservers_ready("apiservers", "c1,c2", tgt_type="list", timeout=5)
    assert ret["result"] is False
    assert ret["comment"] == "Not ready: c2: no answer (minion down?)"


def test_converged_reports_the_findings_and_changes_nothing(orch):
    module = orch({})
    ret = module.converged("hardway", findings=["Nothing to change: c1 (59 states)", "c1 ok"])
    assert ret == {
        "name": "hardway",
        "changes": {},
        "result": True,
        "comment": "Nothing to change: c1 (59 states)\nc1 ok",
    }
    assert module.calls == []


def test_verified_says_the_first_certificate_to_expire_and_warns_of_any_due(orch):
    due = ["/etc/etcd/etcd.pem"]
    summary = {"ok": True, "holds_vip": False}
    c1 = {**summary, "certificates": {"due": [], "soonest": {"file": "a.pem", "days_left": 300}}}
    c2 = {**summary, "certificates": {"due": due, "soonest": {"file": due[0], "days_left": 9}}}
    ret = orch({"c1": _ok(c1), "c2": _ok(c2)}).verified("hardway", TGT)
    assert ret["result"] is True
    assert ret["comment"].splitlines() == [
        "c1: ok",
        "c2: ok",
        "Certificates: the first to expire is /etc/etcd/etcd.pem on c2, in 9 days",
        "WARNING certificates on c2 within the renewal margin: /etc/etcd/etcd.pem",
    ]
