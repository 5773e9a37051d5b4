"""The etcd restart gate and the cluster's restart turn (_states/k8s_etcd.py), issue 20."""

import pytest
from salt.exceptions import CommandExecutionError


@pytest.fixture
def etcd_state(state_modules):
    def make(running=True, test=False, safe=None, take=None, give=None):
        calls = []

        def take_turn(name, timeout):
            calls.append(("take", name))
            if isinstance(take, Exception):
                raise take
            if take == "other CA":
                return {
                    "name": name,
                    "waited": 0.0,
                    "skipped": "etcd's members run with another CA",
                }
            return {"name": name, "waited": 1.5}

        def give_turn(name):
            calls.append(("give", name))
            return {"name": name, "given": give if give is not None else True}

        answers = iter(safe or [{"safe": True, "comment": "2 of the 2 other voting members"}])
        salt = {
            "service.status": lambda name: running,
            "k8s_etcd.take_turn": take_turn,
            "k8s_etcd.give_turn": give_turn,
            "k8s_etcd.restart_safe": lambda: next(answers),
        }
        module = state_modules("k8s_etcd", __salt__=salt, __opts__={"test": test})
        return module, calls

    return make


def test_a_service_not_running_needs_no_turn(etcd_state):
    module, calls = etcd_state(running=False)
    ret = module.turn_taken("kube-apiserver")
    assert ret["result"] is True and calls == []
    assert ret["comment"] == "kube-apiserver is not running: starting it needs no turn"


def test_the_turn_is_taken_before_a_restart_and_given_back(etcd_state):
    module, calls = etcd_state()
    ret = module.turn_taken("kube-apiserver")
    assert ret["result"] is True and ret["changes"] == {}
    assert ret["comment"] == "Took the cluster's turn to restart kube-apiserver after 1.5s"
    assert module.turn_given("kube-apiserver")["comment"] == "Gave the turn for kube-apiserver back"
    assert calls == [("take", "kube-apiserver"), ("give", "kube-apiserver")]


def test_no_turn_in_time_refuses_the_restart(etcd_state):
    module, _ = etcd_state(take=CommandExecutionError("k8s_etcd: no turn within 600s"))
    ret = module.turn_taken("kube-apiserver")
    assert ret["result"] is False
    assert ret["comment"] == "Not restarted: k8s_etcd: no turn within 600s"


def test_test_mode_takes_no_turn(etcd_state):
    module, calls = etcd_state(test=True)
    assert module.turn_taken("etcd")["result"] is None
    assert module.turn_given("etcd")["result"] is True
    assert calls == []


def test_the_restart_gate_waits_for_quorum_without_this_member(etcd_state):
    unsafe = {"safe": False, "comment": "1 of the 2 other voting members healthy, 2 needed"}
    safe = {"safe": True, "comment": "2 of the 2 other voting members healthy, 2 needed"}
    module, _ = etcd_state(safe=[unsafe, safe])
    ret = module.restart_safe("etcd", timeout=5, interval=0.01)
    assert ret["result"] is True and ret["comment"].startswith("Safe to restart: 2 of the 2")
    module, _ = etcd_state(safe=[unsafe] * 1000)
    ret = module.restart_safe("etcd", timeout=0.05, interval=0.01)
    assert ret["result"] is False
    assert (
        "Not restarted: etcd would lose quorum after 0.05s of waiting: 1 of the 2" in ret["comment"]
    )


def test_a_ca_change_restarts_without_a_turn(etcd_state):
    module, _ = etcd_state(take="other CA")
    ret = module.turn_taken("etcd")
    assert ret["result"] is True
    assert (
        ret["comment"]
        == "No turn to take for etcd: etcd's members run with another CA (a CA change)"
    )


@pytest.mark.parametrize("test", [False, True])
def test_a_member_on_another_ca_than_its_files_is_restarted(state_modules, test):
    changed = {"changed": True, "comment": "this member runs with another CA than the files"}
    same = {"changed": False, "comment": "verifies"}
    for running, answer, restart in (
        (True, changed, True),
        (True, same, False),
        (False, None, False),
    ):
        salt = {
            "service.status": lambda name, r=running: r,
            "k8s_etcd.trust_changed": lambda a=answer: a,
        }
        module = state_modules("k8s_etcd", __salt__=salt, __opts__={"test": test})
        ret = module.trust_current("etcd")
        assert bool(ret["changes"]) is restart
        assert ret["result"] is (None if restart and test else True)
