"""The rolling upgrade: the skew rule, its master-side states, and the orchestration's steps."""

import pytest

from tests.support.orchestration import REPO, cluster_pillar, fields, load, rules, step_ids

UPGRADE = REPO / "salt" / "orch" / "upgrade.sls"
IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]
ALL = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def _running(version, **overrides):
    return {m: dict(dict.fromkeys(ALL, version), **overrides.get(m, {})) for m in IDS}


@pytest.mark.parametrize(
    ("target", "running", "expected"),
    [
        ("1.37.1", _running("1.36.2"), []),
        ("1.37.1", _running("1.37.1"), []),  # nothing to do
        # A re-run after the first controller: mixed minors are fine.
        ("1.37.1", _running("1.36.2", **{"k8s-controller-1": dict.fromkeys(ALL, "1.37.1")}), []),
        # Not installed yet (a fresh controller): nothing to compare.
        ("1.37.1", {"k8s-controller-1": dict.fromkeys(ALL)}, []),
    ],
)
def test_skew_allows(target, running, expected):
    assert rules().skew_errors(target, running) == expected


def test_skew_refuses_a_two_minor_jump_naming_the_next_step():
    errors = rules().skew_errors("1.37.0", _running("1.35.4"))
    assert len(errors) == 9
    assert errors[0] == (
        "k8s-controller-1: kube-apiserver runs 1.35.4; 1.37.0 is more than one minor ahead: "
        "upgrade one minor at a time (next: 1.36.x)"
    )


def test_skew_refuses_a_downgrade():
    errors = rules().skew_errors("1.36.0", _running("1.37.1"))
    assert (
        "k8s-controller-2: kube-scheduler runs 1.37.1, newer than 1.36.0; a downgrade is not "
        in ("\n".join(errors) + " ")
    )


def test_skew_refuses_a_controller_manager_newer_than_its_apiserver():
    running = _running("1.36.2", **{"k8s-controller-3": {"kube-controller-manager": "1.37.0"}})
    assert rules().skew_errors("1.37.0", running) == [
        "k8s-controller-3: kube-controller-manager (1.37) is newer than its apiserver (1.36); "
        "upgrade the apiserver first"
    ]


def test_skew_refuses_garbage():
    assert rules().skew_errors("latest", {}) == ["target version 'latest' is not X.Y.Z"]


def _upgrade(holder="k8s-controller-1", version=None):
    module = load(
        {m: cluster_pillar("hardway", IDS) for m in IDS},
        wanted=None,
        orch=UPGRADE,
    )
    cmd = module.__salt__["saltutil.cmd"]

    def with_holder(tgt, fun, tgt_type="glob", **kwargs):
        if fun == "k8s_health.holds_vip":
            module.calls.append((tgt, fun, tgt_type))
            return {m: {"ret": m == holder, "retcode": 0} for m in tgt}
        return cmd(tgt, fun, tgt_type, **kwargs)

    module.__salt__["saltutil.cmd"] = with_holder
    if version:
        module.__pillar__["version"] = version
    return module


def test_one_controller_at_a_time_the_vip_holder_last():
    steps = _upgrade(holder="k8s-controller-1").run()
    order = step_ids(steps)
    assert order[:2] == ["upgrade-validate", "upgrade-skew"]
    away = [s for s in order if s.endswith("-vip-away")]
    assert away == [f"upgrade-{m}-vip-away" for m in ("k8s-controller-2", "k8s-controller-3")] + [
        "upgrade-k8s-controller-1-vip-away"
    ]
    assert order[2:6] == [
        "upgrade-k8s-controller-2-vip-away",
        "upgrade-k8s-controller-2-controlplane",
        "upgrade-k8s-controller-2-ready",
        "upgrade-k8s-controller-2-vip-back",
    ]
    assert order[-1] == "upgrade-verify"
    controlplane = fields(steps["upgrade-k8s-controller-2-controlplane"])
    assert (controlplane["tgt"], controlplane["sls"]) == (
        "k8s-controller-2",
        ["k8s_control_plane.controlplane"],
    )
    assert "pillar" not in controlplane


def test_a_version_on_the_command_line_reaches_every_state_as_pillar():
    steps = _upgrade(version="1.37.1").run()
    override = {"k8s_control_plane": {"kubernetes": {"version": "1.37.1"}}}
    assert fields(steps["upgrade-validate"])["pillar"] == override
    assert fields(steps["upgrade-k8s-controller-3-controlplane"])["pillar"] == override
    assert fields(steps["upgrade-skew"])["version"] == "1.37.1"


def test_only_the_clusters_controllers_are_touched():
    module = _upgrade()
    module.run()
    touched = {m for call in module.calls if isinstance(call, tuple) for m in call[0]}
    assert touched == set(IDS)


class Controllers:
    """Three controllers answering saltutil.cmd: who holds the VIP, versions, keepalived."""

    def __init__(self, holder="k8s-controller-1", version="1.36.2", pillar_version="1.37.1"):
        self.holder = holder
        self.keepalived = dict.fromkeys(IDS, True)
        self.installed = {m: dict.fromkeys(ALL, version) for m in IDS}
        self.pillar_version = pillar_version
        self.calls = []

    def __call__(self, tgt, fun, tgt_type="glob", kwarg=None, timeout=None):
        targets = tgt.split(",") if isinstance(tgt, str) else list(tgt)
        self.calls.append((fun, tuple(targets), dict(kwarg or {})))
        if fun == "service.stop":
            for m in targets:
                self.keepalived[m] = False
            if self.holder in targets:
                # keepalived's priority-0 advert: the next running controller takes the VIP.
                self.holder = next(m for m in IDS if self.keepalived[m])
        if fun == "service.start":
            for m in targets:
                self.keepalived[m] = True
            self.holder = next(m for m in IDS if self.keepalived[m])
        answers = {
            "k8s_health.holds_vip": lambda m: m == self.holder,
            "k8s_health.versions": lambda m: {"installed": self.installed[m], "serving": None},
            "k8s_cluster.config": lambda m: {"kubernetes": {"version": self.pillar_version}},
            "service.status": lambda m: self.keepalived[m],
            "keepalived_role.role": lambda m: {"state": "MASTER" if m == IDS[0] else "BACKUP"},
        }
        answer = answers.get(fun, lambda m: True)
        return {m: {"ret": answer(m), "retcode": 0} for m in targets}


@pytest.fixture
def upgrade_states(state_modules):
    def make(controllers, test=False):
        logic = rules()
        return state_modules(
            "k8s_upgrade",
            __salt__={"saltutil.cmd": controllers},
            __utils__={"k8s_orchestration.skew_errors": logic.skew_errors},
            __opts__={"test": test},
        )

    return make


EVERY = ",".join(IDS)


def test_skew_checked_refuses_before_anything_changes(upgrade_states):
    controllers = Controllers(version="1.35.0", pillar_version="1.37.1")
    ret = upgrade_states(controllers).skew_checked("hardway", EVERY)
    assert ret["result"] is False
    assert ret["comment"].startswith("Refused, nothing was changed:\n- k8s-controller-1: ")
    assert ret["changes"] == {}
    assert {fun for fun, _, _ in controllers.calls} <= {
        "k8s_cluster.config",
        "k8s_health.versions",
    }


def test_skew_checked_names_what_a_rerun_has_left(upgrade_states):
    controllers = Controllers()
    controllers.installed["k8s-controller-2"] = dict.fromkeys(ALL, "1.37.1")
    ret = upgrade_states(controllers).skew_checked("hardway", EVERY)
    assert ret["result"] is True
    assert ret["comment"] == (
        "Upgrade to 1.37.1 respects the skew policy; to upgrade: k8s-controller-1, "
        "k8s-controller-3; already at 1.37.1: k8s-controller-2"
    )


def test_skew_checked_refuses_controllers_that_disagree(upgrade_states):
    controllers = Controllers()
    original = controllers.__call__

    def split(tgt, fun, tgt_type="glob", kwarg=None, timeout=None):
        answers = original(tgt, fun, tgt_type, kwarg, timeout)
        if fun == "k8s_cluster.config":
            answers["k8s-controller-3"]["ret"] = {"kubernetes": {"version": "1.36.9"}}
        return answers

    ret = upgrade_states(split).skew_checked("hardway", EVERY)
    assert ret["result"] is False
    assert "The controllers' pillars disagree on the version" in ret["comment"]


@pytest.mark.parametrize("test", [True, False])
def test_vip_moved_away_from_the_holder(upgrade_states, test):
    controllers = Controllers(holder="k8s-controller-1")
    ret = upgrade_states(controllers, test=test).vip_moved_away("k8s-controller-1", EVERY)
    stops = [c for c in controllers.calls if c[0] == "service.stop"]
    if test:
        assert ret["result"] is None
        assert ret["changes"]["keepalived"] == {"k8s-controller-1": "would stop"}
        assert stops == []
    else:
        assert ret["result"] is True, ret
        assert ret["changes"]["vip"] == {"old": "k8s-controller-1", "new": "k8s-controller-2"}
        assert stops == [("service.stop", ("k8s-controller-1",), {"name": "keepalived"})]


def test_vip_stays_when_the_controller_does_not_hold_it_or_is_upgraded(upgrade_states):
    controllers = Controllers(holder="k8s-controller-1")
    ret = upgrade_states(controllers).vip_moved_away("k8s-controller-2", EVERY)
    assert (ret["result"], ret["changes"]) == (True, {})
    controllers.installed["k8s-controller-1"] = dict.fromkeys(ALL, "1.37.1")
    ret = upgrade_states(controllers).vip_moved_away("k8s-controller-1", EVERY)
    assert (ret["result"], ret["changes"]) == (True, {})
    assert ret["comment"] == "k8s-controller-1 is at 1.37.1 already: the VIP stays where it is"
    assert not [c for c in controllers.calls if c[0].startswith("service.")]


def test_vip_given_back_waits_for_the_master_to_preempt(upgrade_states):
    controllers = Controllers(holder="k8s-controller-2")
    controllers.keepalived["k8s-controller-1"] = False
    ret = upgrade_states(controllers).vip_given_back("k8s-controller-1", EVERY)
    assert ret["result"] is True, ret
    assert ret["changes"] == {
        "keepalived": {"k8s-controller-1": "started"},
        "vip": {"holder": "k8s-controller-1"},
    }
    again = upgrade_states(controllers).vip_given_back("k8s-controller-1", EVERY)
    assert (again["result"], again["changes"]) == (True, {})
