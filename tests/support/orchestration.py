"""
The orchestration (salt/orch/control_plane.sls) compiled outside Salt, so
that tests take its steps from the file instead of keeping a copy.

``compile_steps()`` runs the file's ``run()`` with the master's view of the
minions' pillars and a stand-in ``__salt__`` whose minions answer
``k8s_cluster.identity`` for one cluster, and returns the step data;
``step_ids()`` orders the steps by their requisites (each step requires the
one before it), which is the order Salt runs them in.
"""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]
ORCH = REPO / "salt" / "orch" / "control_plane.sls"
SEED_IDS = ("k8s-controller-1", "k8s-controller-2", "k8s-controller-3")


def identity(cluster="hardway", ids=SEED_IDS, apply_from=None):
    """What k8s_cluster.identity answers on a member of ``cluster``."""
    first = ids[0] if ids else None
    return {"cluster": cluster, "controllers": list(ids), "apply_from": apply_from or first}


def cluster_pillar(cluster="hardway", ids=SEED_IDS, apply_from=None):
    """The part of a member's compiled pillar the orchestration reads to find its cluster."""
    data = {"cluster": cluster, "controllers": [{"id": i, "address": "x"} for i in ids]}
    if apply_from:
        data["rbac"] = {"apply_from": apply_from}
    return data


def _package():
    from tests.support.cluster import utils_package

    return utils_package()


def rules():
    """_utils/k8s_control_plane/orchestration.py as a plain module."""
    return _package().orchestration


def load(
    pillars, wanted=None, options=None, answers=None, orch=ORCH, plan=None, checks=None, etcd=None
):
    """
    The orchestration SLS as a module. ``pillars`` maps minion id -> its
    compiled k8s_control_plane pillar (what the master compiles); ``answers``
    maps minion id -> what k8s_cluster.identity answers (default: derived
    from its pillar); ``plan`` maps minion id -> its test-mode state
    results in the plan job (k8s_cluster.plan; default: none, so the full
    run) and ``checks`` -> its checks there {function: return} (default:
    none), ``etcd`` -> its k8s_etcd.status there (default: none, etcd not managed);
    ``options`` answers config.get; every minion answers test.ping. The module's
    ``calls`` lists what it asked of Salt, in order, with the targets.
    """
    spec = importlib.util.spec_from_loader("orch_control_plane", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(orch.read_text(), str(orch), "exec"), module.__dict__)
    calls = []
    if answers is None:
        answers = {
            m: identity(
                p["cluster"],
                [c["id"] for c in p["controllers"]],
                (p.get("rbac") or {}).get("apply_from"),
            )
            for m, p in pillars.items()
            if isinstance(p, dict)
        }

    def cmd(tgt, fun, tgt_type="glob", **kwargs):
        calls.append((tgt, fun, tgt_type))
        if fun == "k8s_cluster.plan":  # the plan job: identity, states, checks
            found = {}
            for m in tgt:
                ret = {"identity": answers.get(m), "states": (plan or {}).get(m)}
                ret["checks"] = (checks or {}).get(m, {})
                ret["etcd"] = (etcd or {}).get(m)
                if ret["identity"] is not None or ret["states"] is not None:
                    found[m] = {"ret": ret}
            return found
        if fun == "test.ping":
            return {m: {"ret": True} for m in tgt}
        return {}

    def config_get(key, default=None):
        return (options or {}).get(key, default)

    logic = rules()
    package = _package()

    def cluster(name=None, command="orch.control_plane"):
        # k8s_orchestration.cluster, with the master's compiled pillars given.
        clusters = logic.clusters_from(pillars)
        chosen = logic.choose_cluster(clusters, name, command)
        ids = logic.controllers_of(chosen, clusters[chosen])
        leaving = logic.leaving_of(clusters[chosen])
        logic.agreed(chosen, {m: pillars[m] for m in ids})
        return {
            "cluster": chosen,
            "controllers": ids,
            "leaving": leaving,
            "pillar_key": package.pillar_key(),
            "root": package.formula_root(config_get),
        }

    def pending(ids, root=None, timeout=120, expected=None):
        # k8s_orchestration.pending with current controllers (no sync): the plan job's
        # state results are ``plan``, its checks ``checks``, its identities ``answers``.
        fun, args = package.plan_job(root or package.formula_root(config_get))
        got = cmd(ids, fun, tgt_type="list", arg=args)
        return package.plan_summary(got, ids)

    module.__salt__ = {
        "k8s_orchestration.pending": pending,
        "saltutil.cmd": cmd,
        "saltutil.runner": lambda fun: calls.append(fun),
        "config.get": config_get,
        "k8s_orchestration.cluster": cluster,
        "k8s_orchestration.leaving_errors": logic.leaving_errors,
    }
    module.__pillar__ = {"cluster": wanted} if wanted else {}
    module.calls = calls
    return module


def running_etcd(ids=SEED_IDS, members=None, healthy=None):
    """
    k8s_etcd.status of each of ``ids`` for a running managed etcd: data on each, the
    ``members`` (default: the controllers, all voters), each healthy unless ``healthy``
    names the ones that are. Peer URLs in the seed's pattern (10.240.0.11, ...).
    """
    members = list(members or ids)
    url = {m: f"https://10.240.0.{10 + int(m.rsplit('-', 1)[1])}:2380" for m in {*ids, *members}}
    listed = [
        {"id": f"{n:x}", "name": m, "peer_urls": [url[m]], "client_urls": [], "learner": False}
        for n, m in enumerate(members, 1)
    ]
    return {
        m: {
            "managed": True,
            "name": m,
            "peer_url": url[m],
            "wanted": {c: url[c] for c in ids},
            "data": True,
            "members": listed,
            "healthy": m in (healthy if healthy is not None else ids),
        }
        for m in ids
    }


def compile_steps(cluster="hardway", ids=SEED_IDS, options=None, running=False):
    """
    {step id: state data} for one cluster whose members all answer: a new one, or with
    ``running`` one whose managed etcd runs (its members the controllers) and where
    nothing but the load balancer would change.
    """
    etcd = running_etcd(ids) if running else None
    plan = None
    if running:  # haproxy's configuration would change, nothing else
        sid = f"{_package().DEFAULT_ROOT}-loadbalancer-haproxy-file-managed"
        change = {"result": None, "changes": {}, "__id__": sid, "__run_num__": 0}
        plan = {m: {"file_|-haproxy": change} for m in ids}
    pillars = {m: cluster_pillar(cluster, ids) for m in ids}
    return load(pillars, options=options, etcd=etcd, plan=plan).run()


def fields(step):
    """A step's arguments as one dict (the SLS data is a list of one-key dicts)."""
    (args,) = step.values()
    return {key: value for item in args for key, value in item.items()}


def requires(step):
    """The step ids this step requires."""
    return [next(iter(r.values())) for r in fields(step).get("require", [])]


def step_ids(steps=None):
    """The steps in the order their requisites impose (a chain: one order only)."""
    steps = steps if steps is not None else compile_steps()
    ordered, remaining = [], dict(steps)
    while remaining:
        ready = [s for s, data in remaining.items() if set(requires(data)) <= set(ordered)]
        if len(ready) != 1:
            raise AssertionError(f"the steps do not form one chain: next could be {ready}")
        ordered.append(ready[0])
        del remaining[ready[0]]
    return ordered


def steps_reported_after_a_failed_validation(steps=None, test=False):
    """
    The steps a run reports when its first step (validation) fails: each later
    one fails on its requisite, up to and including the first ``failhard`` step,
    where Salt stops a real run (the later steps are not reported). In test
    mode Salt does not stop: every step is reported.
    """
    steps = steps if steps is not None else compile_steps()
    ordered = step_ids(steps)
    for index, sid in enumerate(ordered if not test else []):
        if fields(steps[sid]).get("failhard"):
            return ordered[: index + 1]
    return ordered
