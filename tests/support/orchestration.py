"""
The orchestration (salt/orch/control_plane.sls) compiled outside Salt, so
that tests take its steps from the file instead of keeping a copy.

``compile_steps()`` runs the file's ``run()`` with a stand-in ``__salt__``
whose minions all answer ``k8s_cluster.identity`` for one cluster, and
returns the step data; ``step_ids()`` orders the steps by their requisites
(each step requires the one before it), which is the order Salt runs them in.
"""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]
ORCH = REPO / "salt" / "orch" / "control_plane.sls"
SEED_IDS = ("k8s-controller-1", "k8s-controller-2", "k8s-controller-3")


def identity(cluster="hardway", ids=SEED_IDS, apply_from=None):
    """What k8s_cluster.identity answers on a member of ``cluster``."""
    return {"cluster": cluster, "controllers": list(ids), "apply_from": apply_from or ids[0]}


def load(answers, wanted=None, options=None):
    """
    The orchestration SLS as a module. ``answers`` maps minion id ->
    identity; ``options`` answers config.get. The module's ``calls`` lists
    what it asked of Salt, in order.
    """
    spec = importlib.util.spec_from_loader("orch_control_plane", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(ORCH.read_text(), str(ORCH), "exec"), module.__dict__)
    calls = []

    def cmd(tgt, fun, **kwargs):
        calls.append((tgt, fun))
        if fun == "k8s_cluster.identity":
            return {m: {"ret": ident, "retcode": 0} for m, ident in answers.items()}
        return {}

    def config_get(key, default=None):
        return (options or {}).get(key, default)

    module.__salt__ = {
        "saltutil.cmd": cmd,
        "saltutil.runner": lambda fun: calls.append(fun),
        "config.get": config_get,
    }
    module.__pillar__ = {"cluster": wanted} if wanted else {}
    module.calls = calls
    return module


def compile_steps(cluster="hardway", ids=SEED_IDS, options=None):
    """{step id: state data} for one cluster whose members all answer."""
    return load({m: identity(cluster, ids) for m in ids}, options=options).run()


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
