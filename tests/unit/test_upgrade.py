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
    assert order[:4] == [
        "upgrade-validate",
        "upgrade-skew",
        "upgrade-etcd-quorum",
        "upgrade-snapshot",
    ]
    assert fields(steps["upgrade-snapshot"]) == {
        "name": "k8s_snapshot.take",
        "cluster": "hardway",
        "reason": "upgrade",
        "require": [{"k8s_cluster": "upgrade-etcd-quorum"}],
    }
    drains = [s for s in order if s.endswith("-drain")]
    assert drains == [f"upgrade-{m}-drain" for m in ("k8s-controller-2", "k8s-controller-3")] + [
        "upgrade-k8s-controller-1-drain"
    ]
    assert order[4:8] == [
        "upgrade-k8s-controller-2-drain",
        "upgrade-k8s-controller-2-controlplane",
        "upgrade-k8s-controller-2-restore",
        "upgrade-k8s-controller-2-ready",
    ]
    assert not [s for s in order if "-vip-" in s]  # the VIP stays by default
    assert order[-1] == "upgrade-verify"
    controlplane = fields(steps["upgrade-k8s-controller-2-controlplane"])
    assert (controlplane["tgt"], controlplane["sls"]) == (
        "k8s-controller-2",
        ["k8s_control_plane.controlplane"],
    )
    assert "pillar" not in controlplane  # step_ids: one chain, a failure stops it there


def test_move_vip_wraps_each_controller_in_a_vip_move():
    module = _upgrade(holder="k8s-controller-1")
    module.__pillar__["move_vip"] = True
    order = step_ids(module.run())
    assert order[4:10] == [
        "upgrade-k8s-controller-2-vip-away",
        "upgrade-k8s-controller-2-drain",
        "upgrade-k8s-controller-2-controlplane",
        "upgrade-k8s-controller-2-restore",
        "upgrade-k8s-controller-2-ready",
        "upgrade-k8s-controller-2-vip-back",
    ]
    assert order[-2:] == ["upgrade-k8s-controller-1-vip-back", "upgrade-verify"]


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
    """Three controllers answering saltutil.cmd: who holds the VIP, versions, keepalived, and
    each one's haproxy (the administrative state and sessions of every server)."""

    def __init__(self, holder="k8s-controller-1", version="1.36.2", pillar_version="1.37.1"):
        self.holder = holder
        self.keepalived = dict.fromkeys(IDS, True)
        self.installed = {m: dict.fromkeys(ALL, version) for m in IDS}
        self.pillar_version = pillar_version
        self.admin = {m: dict.fromkeys(IDS, "ready") for m in IDS}  # haproxy on m: server -> admin
        self.sessions = {m: dict.fromkeys(IDS, 0) for m in IDS}
        self.status = "UP"
        self.silent = set()
        self.haproxy_stopped = set()
        self.calls = []

    def _haproxy(self, m, kwarg):
        server = kwarg["server"]
        if kwarg.get("state"):
            self.admin[m][server] = kwarg["state"]
        return [
            {
                "proxy": proxy,
                "server": server,
                "status": "DRAIN" if self.admin[m][server] == "drain" else self.status,
                "admin": self.admin[m][server],
                "sessions": self.sessions[m][server],
            }
            for proxy in ("k8s-controller", "k8s-controller-tls")
        ]

    def __call__(self, tgt, fun, tgt_type="glob", kwarg=None, timeout=None):
        targets = tgt.split(",") if isinstance(tgt, str) else list(tgt)
        targets = [m for m in targets if m and m not in self.silent]
        kwarg = dict(kwarg or {})
        self.calls.append((fun, tuple(targets), kwarg))
        if fun == "service.stop":
            for m in targets:
                self.keepalived[m] = False
            if self.holder in targets:
                # keepalived's priority-0 advert: the next running controller takes the VIP.
                self.holder = next((m for m in IDS if self.keepalived[m]), None)
        if fun == "service.start":
            for m in targets:
                self.keepalived[m] = True
            self.holder = next(m for m in IDS if self.keepalived[m])
        answers = {
            "k8s_health.holds_vip": lambda m: m == self.holder,
            "k8s_health.versions": lambda m: {
                "installed": self.installed[m],
                "serving": None,
                "pillar": self.pillar_version,
            },
            "k8s_health.haproxy_server": lambda m: self._haproxy(m, kwarg),
            "service.status": lambda m: self.keepalived[m],
            "k8s_keepalived.role": lambda m: {"state": "MASTER" if m == IDS[0] else "BACKUP"},
        }
        answer = answers.get(fun, lambda m: True)
        if fun == "k8s_health.haproxy_server":
            stopped = [m for m in targets if m in self.haproxy_stopped]
            return {m: {"ret": answer(m), "retcode": 0} for m in targets if m not in stopped} | {
                m: {
                    "ret": "ERROR: haproxy stats socket /run/haproxy/admin.sock: "
                    "[Errno 2] No such file or directory",
                    "retcode": 1,
                }
                for m in stopped
            }
        return {m: {"ret": answer(m), "retcode": 0} for m in targets}


@pytest.fixture
def upgrade_states(state_modules):
    def make(controllers, test=False):
        logic = rules()
        return state_modules(
            "k8s_upgrade",
            __salt__={"saltutil.cmd": controllers},
            __utils__={"k8s_control_plane.skew_errors": logic.skew_errors},
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
    assert [fun for fun, _, _ in controllers.calls] == ["k8s_health.versions"]  # one trip


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
        if fun == "k8s_health.versions":
            answers["k8s-controller-3"]["ret"]["pillar"] = "1.36.9"
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


def test_vip_move_refused_when_no_other_controller_runs_keepalived(upgrade_states):
    controllers = Controllers(holder="k8s-controller-1")
    controllers.keepalived.update({"k8s-controller-2": False, "k8s-controller-3": False})
    ret = upgrade_states(controllers).vip_moved_away("k8s-controller-1", EVERY)
    assert (ret["result"], ret["changes"]) == (False, {})
    assert "the VIP would have nowhere to go; nothing was changed" in ret["comment"]
    assert not [c for c in controllers.calls if c[0] == "service.stop"]


def test_vip_move_refused_when_a_controller_is_silent(upgrade_states):
    controllers = Controllers(holder="k8s-controller-1")
    controllers.silent = {"k8s-controller-3"}
    ret = upgrade_states(controllers).vip_moved_away("k8s-controller-1", EVERY)
    assert (ret["result"], ret["changes"]) == (False, {})
    assert ret["comment"] == "No answer from k8s-controller-3: nothing was changed"


def test_vip_move_that_does_not_settle_starts_keepalived_again(upgrade_states):
    class Stuck(Controllers):
        def __call__(self, tgt, fun, tgt_type="glob", kwarg=None, timeout=None):
            answers = super().__call__(tgt, fun, tgt_type, kwarg, timeout)
            if fun == "k8s_health.holds_vip":  # the VIP never shows up anywhere
                answers = {m: {"ret": False, "retcode": 0} for m in answers}
            return answers

    controllers = Stuck(holder="k8s-controller-1")
    states = upgrade_states(controllers)
    states._census = lambda tgt, tgt_type: (["k8s-controller-1"], [])  # holds it before the stop
    ret = states.vip_moved_away("k8s-controller-1", EVERY, timeout=0.3, interval=0.05)
    assert ret["result"] is False
    assert "keepalived started on k8s-controller-1 again" in ret["comment"]
    services = [(c[0], c[1]) for c in controllers.calls if c[0].startswith("service.s")]
    assert services[-2:] == [
        ("service.stop", ("k8s-controller-1",)),
        ("service.start", ("k8s-controller-1",)),
    ]


@pytest.mark.parametrize("test", [True, False])
def test_backend_drained_on_every_haproxy(upgrade_states, test):
    controllers = Controllers()
    ret = upgrade_states(controllers, test=test).backend_drained("k8s-controller-2", EVERY)
    admins = {m: controllers.admin[m]["k8s-controller-2"] for m in IDS}
    if test:
        assert ret["result"] is None
        assert ret["changes"] == {"haproxy": dict.fromkeys(IDS, "would drain")}
        assert set(admins.values()) == {"ready"}
    else:
        assert ret["result"] is True, ret
        assert ret["changes"] == {"haproxy": dict.fromkeys(IDS, "drain")}
        assert set(admins.values()) == {"drain"}
        assert "its sessions ended after" in ret["comment"]
    assert {controllers.admin[m]["k8s-controller-1"] for m in IDS} == {"ready"}


def test_backend_drained_waits_for_sessions_then_goes_on(upgrade_states):
    controllers = Controllers()
    controllers.sessions["k8s-controller-3"]["k8s-controller-2"] = 4  # a long watch
    ret = upgrade_states(controllers).backend_drained(
        "k8s-controller-2", EVERY, timeout=0.3, interval=0.05
    )
    assert ret["result"] is True, ret
    assert "8 session(s) still open after 0.3s, left to the apiserver's shutdown" in ret["comment"]
    polls = [c for c in controllers.calls if c[0] == "k8s_health.haproxy_server"]
    assert len(polls) > 3  # it polled until the timeout


def test_backend_drain_skipped_at_target_and_refused_when_silent(upgrade_states):
    controllers = Controllers()
    controllers.installed["k8s-controller-2"] = dict.fromkeys(ALL, "1.37.1")
    ret = upgrade_states(controllers).backend_drained("k8s-controller-2", EVERY)
    assert (ret["result"], ret["changes"]) == (True, {})
    assert ret["comment"] == "k8s-controller-2 is at 1.37.1 already: it stays in haproxy's rotation"
    controllers = Controllers()
    controllers.silent = {"k8s-controller-1"}
    ret = upgrade_states(controllers).backend_drained("k8s-controller-2", EVERY)
    assert (ret["result"], ret["changes"]) == (False, {})
    assert ret["comment"] == "No answer from k8s-controller-1's haproxy: nothing was changed"
    assert {controllers.admin[m]["k8s-controller-2"] for m in IDS} == {"ready"}


def test_backend_restored_waits_until_up_everywhere(upgrade_states):
    controllers = Controllers()
    for m in IDS:
        controllers.admin[m]["k8s-controller-2"] = "drain"
    ret = upgrade_states(controllers).backend_restored("k8s-controller-2", EVERY)
    assert ret["result"] is True, ret
    assert ret["changes"] == {"haproxy": dict.fromkeys(IDS, "ready")}
    assert {controllers.admin[m]["k8s-controller-2"] for m in IDS} == {"ready"}
    again = upgrade_states(controllers).backend_restored("k8s-controller-2", EVERY)
    assert (again["result"], again["changes"]) == (True, {})


def test_backend_restored_fails_when_a_haproxy_keeps_it_down(upgrade_states):
    controllers = Controllers()
    controllers.admin["k8s-controller-1"]["k8s-controller-2"] = "drain"
    controllers.status = "DOWN"
    ret = upgrade_states(controllers).backend_restored(
        "k8s-controller-2", EVERY, timeout=0.2, interval=0.05
    )
    assert ret["result"] is False
    assert ret["comment"].startswith("k8s-controller-2 not UP in every haproxy after 0.2s: ")
    assert "k8s-controller-3: k8s-controller-tls DOWN" in ret["comment"]


def test_backend_restore_predicted_in_test_mode_for_a_pending_controller(upgrade_states):
    controllers = Controllers()
    ret = upgrade_states(controllers, test=True).backend_restored("k8s-controller-2", EVERY)
    assert ret["result"] is None
    assert ret["changes"] == {"haproxy": dict.fromkeys(IDS, "would set ready")}
    controllers.installed["k8s-controller-2"] = dict.fromkeys(ALL, "1.37.1")
    ret = upgrade_states(controllers, test=True).backend_restored("k8s-controller-2", EVERY)
    assert (ret["result"], ret["changes"]) == (True, {})


@pytest.mark.parametrize(
    ("installed", "version", "refused"),
    [
        (None, "1.37.1", None),  # a fresh controller
        ("1.36.2", "1.37.1", None),
        ("1.37.1", "1.37.1", None),
        ("1.37.1", "1.36.2", "runs 1.37.1, newer than 1.36.2; a downgrade is not supported"),
        ("1.35.0", "1.37.1", "1.37.1 is more than one minor ahead"),
    ],
)
def test_installable_guards_every_state_run(state_modules, installed, version, refused):
    states = state_modules(
        "k8s_upgrade",
        __salt__={"k8s_health.versions": lambda: {"installed": dict.fromkeys(ALL, installed)}},
        __utils__={"k8s_control_plane.skew_errors": rules().skew_errors},
        __grains__={"id": "k8s-controller-1"},
    )
    ret = states.installable(version)
    assert ret["changes"] == {}
    if refused:
        assert ret["result"] is False
        assert ret["comment"].startswith(f"Refused to install {version} ")
        assert refused in ret["comment"]
    else:
        assert ret["result"] is True, ret


@pytest.mark.parametrize("test", [True, False])
def test_a_controller_whose_haproxy_is_not_running_is_skipped(upgrade_states, test):
    controllers = Controllers()
    controllers.haproxy_stopped = {"k8s-controller-3"}
    states = upgrade_states(controllers, test=test)
    drained = states.backend_drained("k8s-controller-2", EVERY)
    restored = states.backend_restored("k8s-controller-2", EVERY)
    for ret in (drained, restored):
        assert ret["result"] is (None if test else True), ret
        assert set(ret["changes"]["haproxy"]) == {"k8s-controller-1", "k8s-controller-2"}
        assert ret["comment"].endswith(
            "; haproxy not running on k8s-controller-3: nothing to do there"
        )
