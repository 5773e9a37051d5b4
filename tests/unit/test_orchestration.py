"""The orchestration file's compile step: which cluster, which minions, which steps."""

import itertools

import pytest
from salt.exceptions import SaltRenderError

from tests.support.orchestration import (
    cluster_pillar,
    compile_steps,
    fields,
    identity,
    load,
    requires,
    running_etcd,
    step_ids,
)

IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]


def test_one_cluster_needs_no_argument():
    module = load({m: cluster_pillar("hardway", IDS) for m in IDS})
    steps = module.run()
    # Only this cluster's controllers are touched: the formula in test mode and their
    # identities (the plan job, one job of two functions; these controllers are current,
    # so nothing is synced to them), and they confirm their cluster.
    assert module.calls == [
        "saltutil.sync_all",  # to the master only, before it looks for the cluster
        (IDS, "k8s_cluster.plan", "list"),
    ]
    controlplane = fields(steps["orch-controlplane"])
    assert controlplane["batch"] == "1"
    assert (controlplane["tgt"], controlplane["tgt_type"]) == (",".join(IDS), "list")
    assert fields(steps["orch-rbac"])["tgt"] == "k8s-controller-1"


def test_another_cluster_on_the_master_is_not_touched():
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    pillars |= {f"prod-{i}": cluster_pillar("prod", ["prod-1", "prod-2"]) for i in (1, 2)}
    pillars["salt-master-itself"] = None
    module = load(pillars, wanted="prod")
    module.run()
    touched = {m for call in module.calls if isinstance(call, tuple) for m in call[0]}
    assert touched == {"prod-1", "prod-2"}


def test_one_cluster_name_in_two_cluster_files_is_refused():
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    pillars |= {f"prod-{i}": cluster_pillar("hardway", ["prod-1", "prod-2"]) for i in (1, 2)}
    module = load(pillars)
    with pytest.raises(SaltRenderError, match="cluster 'hardway' is defined more than once"):
        module.run()
    assert module.calls == ["saltutil.sync_all"], "refused before any minion was touched"


def test_one_cluster_name_with_two_vips_is_refused_before_any_change():
    # Issue 20: two cluster files, same cluster and controllers, differing in the VIP only,
    # the second matched to controller 3; refused while the master compiles the pillars.
    pillars = {m: dict(cluster_pillar("hardway", IDS), vip={"address": "10.240.0.10"}) for m in IDS}
    pillars[IDS[2]]["vip"] = {"address": "10.240.0.20"}
    pillars[IDS[2]]["secrets"] = {"encryption_key": "c2VjcmV0"}
    module = load(pillars)
    with pytest.raises(SaltRenderError) as caught:
        module.run()
    message = str(caught.value)
    assert "cluster 'hardway' is defined differently on its controllers" in message
    assert (
        "k8s_control_plane:vip:address: 10.240.0.10 on k8s-controller-1, k8s-controller-2; "
        "10.240.0.20 on k8s-controller-3"
    ) in message
    # a secret is named, never shown
    assert "k8s_control_plane:secrets:encryption_key: <unset> on k8s-controller-1" in message
    assert "c2VjcmV0" not in message and "<secret> on k8s-controller-3" in message
    assert module.calls == ["saltutil.sync_all"], "refused before any minion was touched"


def test_disagreements_name_every_differing_key():
    from tests.support.orchestration import rules

    same = {"cluster": "a", "vip": {"address": "1", "interface": "eth0"}, "ports": [1, 2]}
    assert rules().disagreements({"m1": same, "m2": dict(same)}) == []
    other = {"cluster": "a", "vip": {"address": "1", "interface": "eth1"}, "ports": [1]}
    assert rules().disagreements({"m1": same, "m2": other}) == [
        "ports: [1, 2] on m1; [1] on m2",
        "vip:interface: eth0 on m1; eth1 on m2",
    ]


def test_a_minion_that_gets_a_cluster_not_listing_it_is_refused():
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    pillars["k8s-controller-9"] = cluster_pillar("hardway", IDS)
    module = load(pillars)
    with pytest.raises(
        SaltRenderError,
        match=r"k8s-controller-9 get cluster 'hardway' from pillar but are not in its "
        r"k8s_control_plane:controllers \(k8s-controller-1, k8s-controller-2, "
        r"k8s-controller-3\) nor members of its etcd",
    ):
        module.run()
    # refused after the read-only plan job (whether it is an etcd member), before any step
    assert module.calls == ["saltutil.sync_all", (IDS, "k8s_cluster.plan", "list")]


def test_a_controller_removed_from_the_list_is_drained_first_and_cleaned_after_etcd():
    # issue 20: the list dropped k8s-controller-4, still an etcd member and answering
    four = [*IDS, "k8s-controller-4"]
    pillars = {m: cluster_pillar("hardway", IDS) for m in four}
    module = load(pillars, etcd=running_etcd(IDS, four))
    steps = module.run()
    order = list(steps)
    assert order.index("orch-leave-drain") < order.index("orch-loadbalancer")
    assert order.index("orch-etcd-members") < order.index("orch-leave-clean")
    assert order.index("orch-leave-clean") < order.index("orch-etcd")
    drain, clean = fields(steps["orch-leave-drain"]), fields(steps["orch-leave-clean"])
    assert drain["tgt"] == clean["tgt"] == "k8s-controller-4"
    assert drain["sls"] == ["k8s_control_plane.loadbalancer.clean"]
    assert clean["sls"] == ["k8s_control_plane.clean"]
    assert fields(steps["orch-loadbalancer"])["tgt"] == ",".join(IDS)
    assert fields(steps["orch-etcd"])["batch"] == "1"


def test_a_removal_that_would_leave_no_healthy_quorum_is_refused_before_any_step():
    four = [*IDS, "k8s-controller-4"]
    pillars = {m: cluster_pillar("hardway", IDS) for m in four}
    etcd = running_etcd(IDS, four, healthy=["k8s-controller-1"])
    module = load(pillars, etcd=etcd)
    with pytest.raises(SaltRenderError, match=r"removing k8s-controller-4 would leave 1 healthy"):
        module.run()
    assert module.calls == ["saltutil.sync_all", (IDS, "k8s_cluster.plan", "list")]


def test_a_controller_answering_for_another_cluster_is_refused():
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    answers = {m: identity("hardway", IDS) for m in IDS}
    answers["k8s-controller-2"] = identity("stale", IDS)
    with pytest.raises(SaltRenderError, match="k8s-controller-2 did not answer for cluster"):
        load(pillars, answers=answers).run()


def test_no_usable_controller_list_leaves_it_to_validation():
    pillars = {m: {"cluster": "hardway", "controllers": "k8s-controller-1"} for m in IDS}
    answers = {m: identity("hardway", []) for m in IDS}
    steps = load(pillars, answers=answers).run()
    assert fields(steps["orch-validate"])["tgt"] == ",".join(IDS)


def test_the_steps_form_one_chain_in_the_designed_order():
    """The design (docs/installing.md, "The orchestration"): each step requires the one before."""
    steps = compile_steps()
    order = step_ids(steps)
    for before, after in itertools.pairwise(order):
        assert requires(steps[after]) == [before], after
    position = {step: order.index(step) for step in order}
    # Validation first; the load balancer and one VIP holder before the control
    # plane; every apiserver ready before the RBAC; the verification last.
    assert order[:2] == ["orch-validate", "orch-skew"]
    assert position["orch-loadbalancer"] < position["orch-vip-single-holder"]
    assert position["orch-vip-single-holder"] < position["orch-controlplane"]
    assert position["orch-etcd"] < position["orch-controlplane"] < position["orch-wait-ready"]
    # etcd quorum is checked before any apiserver restarts
    assert position["orch-etcd"] < position["orch-etcd-quorum"] < position["orch-controlplane"]
    assert position["orch-wait-ready"] < position["orch-rbac"]
    assert order[-1] == "orch-verify"


def test_states_come_from_the_formula_root():
    sls = {s: fields(d).get("sls") for s, d in compile_steps().items() if "salt.state" in d}
    assert sls["orch-validate"] == ["k8s_control_plane.cluster.validate"]
    assert sls["orch-controlplane"] == ["k8s_control_plane.controlplane"]
    moved = compile_steps(options={"k8s_control_plane_root": "formulas_k8s"})
    assert fields(moved["orch-rbac"])["sls"] == ["formulas_k8s.rbac"]


def test_rbac_controller_comes_from_apply_from():
    module = load({m: cluster_pillar("hardway", IDS, "k8s-controller-3") for m in IDS})
    assert fields(module.run()["orch-rbac"])["tgt"] == "k8s-controller-3"


def test_two_clusters_without_an_argument_say_how_to_pick():
    answers = {m: cluster_pillar("hardway", IDS) for m in IDS}
    answers |= {f"prod-{i}": cluster_pillar("prod", ["prod-1", "prod-2"]) for i in (1, 2)}
    with pytest.raises(SaltRenderError) as err:
        load(answers).run()
    assert "2 clusters on this master (hardway, prod)" in str(err.value)
    assert 'pillar=\'{"cluster": "hardway"}\'' in str(err.value)
    steps = load(answers, wanted="prod").run()
    assert fields(steps["orch-validate"])["tgt"] == "prod-1,prod-2"


def test_an_unknown_cluster_lists_the_known_ones():
    with pytest.raises(
        SaltRenderError, match="no minion has cluster 'nope' in its pillar; valid: hardway"
    ):
        load({m: cluster_pillar("hardway", IDS) for m in IDS}, wanted="nope").run()


def test_no_minion_at_all():
    with pytest.raises(SaltRenderError, match="no minion has pillar k8s_control_plane:cluster"):
        load({}).run()


def test_a_listed_controller_that_does_not_answer_is_named():
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS[:2]}
    with pytest.raises(
        SaltRenderError, match="lists k8s-controller-3 in k8s_control_plane:controllers"
    ):
        load(pillars).run()


def test_the_batched_control_plane_step_stops_at_the_first_failed_controller():
    """
    orch-controlplane applies one controller at a time; with failhard a
    controller whose state fails ends the batch there, so the next controller
    keeps its running control plane. The step's own arguments are handed to
    Salt's salt.state (the orchestration's view of a minion call) to show that
    the failhard reaches the batched call.
    """
    import salt.states.saltmod as saltmod

    step = fields(compile_steps()["orch-controlplane"])
    assert step["batch"] == "1"
    assert step["failhard"] is True
    sent = {}

    class Sent(Exception):
        """Stops salt.state once the minion call is made: only its arguments matter here."""

    def cmd(tgt, fun, **kwargs):
        sent.update(kwargs, tgt=tgt, fun=fun)
        raise Sent

    args = {k: v for k, v in step.items() if k != "require"}
    dunders = {
        "__salt__": {"saltutil.cmd": cmd},
        "__opts__": {"__role": "master", "file_client": "remote", "test": False},
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dunders.items():
            patch.setattr(saltmod, name, value, raising=False)
        with pytest.raises(Sent):
            saltmod.state("orch-controlplane", **args)
    assert (sent["fun"], sent["batch"], sent.get("failhard")) == ("state.sls", "1", True)


def _state(sid, result=True, changes=None, run=0):
    key = f"file_|-{sid}_|-/x_|-managed"
    return key, {"__id__": sid, "result": result, "changes": changes or {}, "__run_num__": run}


def _plan(states_of):
    """Each controller's test-mode state results in the plan job."""
    return {m: dict(s) for m, s in states_of.items()}


CONVERGED = [_state("a", run=0), _state("b", run=1)]


def _view(healthy=3, quorum=True):
    return {"quorum": quorum, "healthy": healthy, "total": 3, "comment": f"{healthy} of 3"}


def _checks(holder="k8s-controller-1", quorum=True, ok=True):
    """The checks job's answers: {minion: {function: return}}."""
    return {
        m: {
            "k8s_health.etcd": _view(3 if quorum else 1, quorum),
            "k8s_health.summary": {
                "ok": ok,
                "holds_vip": m == holder,
                "vip": {"ok": ok},
                "certificates": {
                    "due": [],
                    "soonest": {"file": "/var/lib/kubernetes/admin.kubeconfig", "days_left": d},
                },
            },
        }
        for m, d in zip(IDS, (364.2, 363.6, 364.9), strict=True)
    }


def test_a_converged_cluster_gets_one_step_that_reports_the_checks():
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    module = load(pillars, plan=_plan({m: CONVERGED for m in IDS}), checks=_checks())
    steps = module.run()
    assert list(steps) == ["orch-converged"]
    assert fields(steps["orch-converged"]) == {
        "name": "hardway",
        "findings": [
            "Nothing to change: k8s-controller-1 (2 states), k8s-controller-2 (2 states), "
            "k8s-controller-3 (2 states)",
            "k8s-controller-1 holds the VIP",
            "etcd quorum: k8s-controller-1 sees 3 of 3, k8s-controller-2 sees 3 of 3, "
            "k8s-controller-3 sees 3 of 3",
            "Verified (k8s_health.summary): k8s-controller-1 ok, k8s-controller-2 ok, "
            "k8s-controller-3 ok",
            "Certificates: the first to expire is /var/lib/kubernetes/admin.kubeconfig on "
            "k8s-controller-2, in 364 days",
        ],
    }
    # one job on the controllers: identities, states, checks (k8s_cluster.plan)
    assert module.calls[1:] == [(IDS, "k8s_cluster.plan", "list")]


@pytest.mark.parametrize(
    "checks",
    [
        {"holder": None},
        {"holder": "k8s-controller-2", "quorum": False},
        {"ok": False},
        "silent",
        "none",
    ],
    ids=["no holder", "no quorum", "summary failed", "one silent", "no answers"],
)
def test_a_check_that_does_not_pass_at_once_gets_the_full_run(checks):
    """Unchanged states but a check failing: the full run, whose steps wait and refuse as
    they always did (the same steps, the same messages)."""
    answers = None if checks == "none" else _checks(**(checks if isinstance(checks, dict) else {}))
    if checks == "silent":
        del answers["k8s-controller-2"]
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    steps = load(pillars, plan=_plan({m: CONVERGED for m in IDS}), checks=answers).run()
    assert step_ids(steps) == step_ids()


@pytest.mark.parametrize(
    "case",
    ["would change", "has changes", "fails", "render error", "silent", "no states"],
)
def test_anything_short_of_converged_gets_the_full_run(case):
    """One controller not known converged is enough for every step (the full run)."""
    states = {m: list(CONVERGED) for m in IDS}
    odd = {
        "would change": [_state("a"), _state("b", result=None)],
        "has changes": [_state("a"), _state("b", changes={"diff": "x"})],
        "fails": [_state("a"), _state("b", result=False)],
        "render error": ["Rendering SLS 'base:k8s_control_plane' failed"],
        "no states": [],
    }
    plan = _plan(states)
    if case == "silent":
        del plan["k8s-controller-3"]
    elif case == "render error":
        plan["k8s-controller-3"] = odd[case]
    else:
        plan["k8s-controller-3"] = dict(odd[case])
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    steps = load(pillars, plan=plan).run()
    assert step_ids(steps) == step_ids(), case


def test_pending_changes_name_each_state_in_run_order():
    from tests.support.orchestration import rules

    answers = {
        "c1": {
            "ret": {"states": dict([_state("late", None, run=5), _state("early", False, run=1)])}
        },
        "c2": {"ret": {"states": dict(CONVERGED)}},
    }
    found = rules().pending_changes(answers, ["c1", "c2", "c3"])
    assert found["c1"][0].startswith("early: fails")
    assert found["c1"][1] == "late: would change"
    assert found["c2"] == []
    assert found["c3"] == ["no answer to the plan job (minion down?)"]


def test_check_findings_name_what_failed():
    from tests.support.orchestration import rules

    answers = {
        m: {"ret": {"checks": v}} for m, v in _checks(holder=None, quorum=False, ok=False).items()
    }
    answers["k8s-controller-3"] = {"ret": "Minion did not return"}
    passed, lines = rules().check_findings(answers, IDS)
    assert passed is False
    assert lines == [
        "0 controllers hold the VIP (expected exactly 1): []",
        "etcd quorum: k8s-controller-1: 1 of 3, k8s-controller-2: 1 of 3, "
        "k8s-controller-3: no answer",
        "Verified (k8s_health.summary): k8s-controller-1 FAILED vip, "
        "k8s-controller-2 FAILED vip, k8s-controller-3 FAILED None",
        "Certificates: the first to expire is /var/lib/kubernetes/admin.kubeconfig on "
        "k8s-controller-2, in 364 days",
    ]


def test_certificates_within_the_margin_are_warned_about():
    from tests.support.orchestration import rules

    due = ["/var/lib/kubernetes/kubernetes.pem", "/etc/etcd/etcd.pem"]
    summary = {
        "k8s-controller-1": {"certificates": {"due": [], "soonest": None}},
        "k8s-controller-2": {
            "certificates": {"due": due, "soonest": {"file": due[0], "days_left": 12.4}}
        },
        "k8s-controller-3": "Minion did not return",
    }
    assert rules().certificate_findings(summary) == [
        "Certificates: the first to expire is /var/lib/kubernetes/kubernetes.pem on "
        "k8s-controller-2, in 12 days",
        "WARNING certificates on k8s-controller-2 within the renewal margin: "
        "/var/lib/kubernetes/kubernetes.pem, /etc/etcd/etcd.pem",
    ]
    assert rules().certificate_findings({"k8s-controller-1": {}}) == []
    unread = {"k8s-controller-1": {"certificates": {"due": [], "comment": "not read: boom"}}}
    assert rules().certificate_findings(unread) == [
        "WARNING certificates on k8s-controller-1: not read: boom"
    ]


def _identity_with(modules="m1", pillar="p1"):
    return {"ret": {"identity": {"modules_digest": modules, "pillar_digest": pillar}}}


def test_stale_names_each_controller_not_current():
    from tests.support.orchestration import rules

    expected = {"modules_digest": "m1", "pillar_digests": {m: "p1" for m in IDS}}
    current = {m: _identity_with() for m in IDS}
    assert rules().stale(current, expected) == {}
    answers = {
        "k8s-controller-1": _identity_with(modules="m0"),
        "k8s-controller-2": _identity_with(pillar="p0"),
        "k8s-controller-3": {"ret": {"identity": {"cluster": "hardway"}}},
    }
    assert rules().stale(answers, expected) == {
        "k8s-controller-1": "its synced modules differ from the master's",
        "k8s-controller-2": "its in-memory pillar differs from the master's compile",
        "k8s-controller-3": "no identity with digests (modules not synced yet?)",
    }
    assert set(rules().stale({}, expected)) == set(IDS)


def test_the_plan_job_carries_the_masters_digests():
    from tests.support.orchestration import rules

    expected = {"modules_digest": "m1", "pillar_digests": {m: "p1" for m in IDS}}
    assert rules().plan_job("k8s_control_plane") == ("k8s_cluster.plan", ["k8s_control_plane"])
    fun, args = rules().plan_job("k8s_control_plane", expected)
    assert fun == "k8s_cluster.plan"
    assert args == ["k8s_control_plane", {"expected": expected, "__kwarg__": True}]
    # each controller reads its own digest: what stale() says of it, behind() says alone
    assert rules().behind({"modules_digest": "m1", "pillar_digest": "p1"}, expected, IDS[0]) is None
    why = rules().behind({"modules_digest": "m1", "pillar_digest": "p1"}, expected, "k8s-other")
    assert why == "its in-memory pillar differs from the master's compile"


def test_the_pillar_digest_covers_what_the_formula_reads_only():
    from tests.support.orchestration import rules

    digest = rules().pillar_digest
    base = {"k8s_control_plane": {"cluster": "hardway"}, "x509_signing_policies": {"a": 1}}
    assert digest(base) == digest({**base, "schedule": {}, "other": 1})
    assert digest(base) != digest({**base, "k8s_control_plane": {"cluster": "prod"}})
    assert digest(base) != digest({**base, "x509_signing_policies": {"a": 2}})


def test_a_running_cluster_rolls_only_the_changed_control_planes_each_drained_first():
    # issue 20: etcd has members, so the cluster runs; controller 2's apiserver unit and
    # controller 3's etcd unit would change (etcd's own step restarts that one)
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    changed = {"result": None, "changes": {}, "__id__": "", "__run_num__": 1}
    unchanged = {"result": True, "changes": {}, "__id__": "x", "__run_num__": 0}
    plan = {m: {"u": unchanged} for m in IDS}  # controller 1: nothing would change
    plan["k8s-controller-2"] = {
        "a": dict(changed, __id__="k8s_control_plane-controlplane-services-file-managed-unit")
    }
    plan["k8s-controller-3"] = {
        "b": dict(changed, __id__="k8s_control_plane-etcd-file-managed-unit")
    }
    module = load(pillars, plan=plan, etcd=running_etcd(IDS, IDS))
    steps = module.run()
    rolling = [s for s in steps if s.startswith("orch-controlplane")]
    assert rolling == [
        "orch-controlplane-k8s-controller-2-drain",
        "orch-controlplane-k8s-controller-2",
        "orch-controlplane-k8s-controller-2-restore",
        "orch-controlplane",
    ]
    drain = fields(steps["orch-controlplane-k8s-controller-2-drain"])
    assert drain["name"] == "k8s-controller-2" and drain["always"] is True
    assert drain["tgt"] == ",".join(IDS)  # out of every controller's haproxy
    state = fields(steps["orch-controlplane-k8s-controller-2"])
    assert state["tgt"] == "k8s-controller-2" and state["sls"] == ["k8s_control_plane.controlplane"]
    assert fields(steps["orch-controlplane"])["require"] == [
        {"k8s_upgrade": "orch-controlplane-k8s-controller-2-restore"}
    ]
    assert fields(steps["orch-wait-ready"])["require"] == [{"k8s_upgrade": "orch-controlplane"}]
    assert fields(steps["orch-controlplane"])["tgt"] == ",".join(IDS)  # all back in rotation


def test_a_ca_change_restarts_etcds_members_together():
    # one member on a new CA and the others on the old one refuse each other: a running
    # cluster's etcd step is batched (one member at a time) unless etcd's CA file changes
    pillars = {m: cluster_pillar("hardway", IDS) for m in IDS}
    changed = {"result": None, "changes": {}, "__run_num__": 1}
    unit = dict(changed, __id__="k8s_control_plane-etcd-file-managed-unit")
    ca = dict(changed, __id__="k8s_control_plane-pki-etcd-file-managed-ca.pem")
    key = dict(changed, __id__="k8s_control_plane-pki-etcd-file-managed-ca-key.pem")
    for plan, batched in (
        ({m: {"u": unit} for m in IDS}, True),
        ({m: {"u": unit, "k": key} for m in IDS}, True),
        ({m: {"u": unit, "c": ca} for m in IDS}, False),
        ({**{m: {"u": unit} for m in IDS}, "k8s-controller-3": {"c": ca}}, False),
    ):
        step = fields(load(pillars, plan=plan, etcd=running_etcd(IDS, IDS)).run()["orch-etcd"])
        assert step["failhard"] is True
        assert ("batch" in step) is batched, plan
        assert step.get("batch", "1") == "1"


def test_a_nested_run_that_failed_names_each_failed_step_with_its_comment():
    """What a runner's error says when the orch.control_plane it ran failed: the step and the
    end of its comment (a nested orch-verify names the check that failed where), not only
    the step's ID; an orchestration without steps (a render error) fails too."""
    from salt.exceptions import CommandExecutionError

    from tests.support.cluster import utils_mapping

    nested_run = utils_mapping()["k8s_control_plane.nested_run"]
    ok = {"a": {"__id__": "orch-etcd", "result": True, "comment": "fine"}}
    assert nested_run({"data": {"master": ok}}, "k8s_ca: sign: orch.control_plane") == 1
    failed = {
        **ok,
        "b": {
            "__id__": "orch-verify",
            "result": False,
            "comment": "k8s-controller-2: FAILED components\nk8s-controller-1: ok",
        },
    }
    with pytest.raises(CommandExecutionError) as caught:
        nested_run({"data": {"master": failed}}, "k8s_ca: sign: orch.control_plane")
    assert str(caught.value) == (
        "k8s_ca: sign: orch.control_plane failed at orch-verify: "
        "k8s-controller-2: FAILED components\nk8s-controller-1: ok"
    )
    with pytest.raises(CommandExecutionError, match="failed: it returned no steps"):
        nested_run({"data": ["Rendering SLS failed"]}, "k8s_certs: orch.control_plane")
