"""
The orchestrations' pure rules, once for orch.control_plane and orch.upgrade:
which cluster a run is for and which minions it may touch, and whether an
upgrade respects Kubernetes' version-skew policy.

The execution module k8s_orchestration (master side), the k8s_upgrade state
and the unit tests share these functions; none of them belongs on the CLI.
"""

import hashlib
import json
import os
from typing import Any

from salt.exceptions import CommandExecutionError

from .facts import parse_minor
from .membership import cluster_membership
from .names import COMPONENT_BINARIES, PILLAR_KEY
from .validate import redact

# The control plane's components, apiserver first (the skew rules rely on it).
COMPONENTS = COMPONENT_BINARIES


def clusters_from(pillars: dict[str, Any] | None) -> dict[str, dict[str, list[str]]]:
    """
    {cluster: {minion: [controller ids its pillar lists]}} from {minion:
    its k8s_control_plane pillar}; minions of no cluster are left out.
    """
    clusters: dict[str, dict[str, list[str]]] = {}
    for minion, data in sorted((pillars or {}).items()):
        if not isinstance(data, dict) or not isinstance(data.get("cluster"), str):
            continue
        listed = data.get("controllers")
        entries = listed if isinstance(listed, list) else []
        ids = [c["id"] for c in entries if isinstance(c, dict) and isinstance(c.get("id"), str)]
        clusters.setdefault(data["cluster"], {})[minion] = ids
    return clusters


def choose_cluster(clusters: dict[str, Any], wanted: str | None, command: str) -> str:
    """The cluster to run for: ``wanted``, or the only one; errors say how to pick."""
    if wanted:
        if wanted not in clusters:
            raise CommandExecutionError(
                f"no minion has cluster {wanted!r} in its pillar; "
                f"valid: {', '.join(sorted(clusters)) or 'none (check the pillar top file)'}"
            )
        return wanted
    if len(clusters) == 1:
        return next(iter(clusters))
    if not clusters:
        raise CommandExecutionError(
            f"no minion has pillar {PILLAR_KEY}:cluster "
            "(are the minions' keys accepted, and are they listed in pillar/top.sls?)"
        )
    raise CommandExecutionError(
        f"{len(clusters)} clusters on this master ({', '.join(sorted(clusters))}); pick one: "
        f'salt-run state.orchestrate {command} pillar=\'{{"cluster": "{sorted(clusters)[0]}"}}\''
    )


def controllers_of(name: str, members: dict[str, list[str]]) -> list[str]:
    """
    The cluster's controller ids, once the checks pass: one cluster file
    defines it, and every controller it lists gets it (a minion that gets it
    unlisted is leaving_of's).
    """
    if not any(members.values()):
        # No usable controller list: the members, and validation (the first
        # step) reports what is wrong with the list.
        return sorted(members)
    lists = {tuple(ids) for ids in members.values()}
    if len(lists) > 1:
        seen = "; ".join(f"{m} lists {', '.join(ids)}" for m, ids in sorted(members.items()))
        raise CommandExecutionError(
            f"cluster {name!r} is defined more than once, with different controllers "
            f"({seen}); give each cluster file its own {PILLAR_KEY}:cluster value"
        )
    (ids,) = lists
    silent = sorted(set(ids) - set(members))
    if silent:
        raise CommandExecutionError(
            f"cluster {name!r} lists {', '.join(silent)} in {PILLAR_KEY}:controllers, but "
            "they do not get this cluster's pillar (key not accepted, or not matched in "
            "pillar/top.sls)"
        )
    return list(ids)


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    """{key path: value} of a mapping's leaves (a list is one leaf)."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {"": data}
    found: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}:{key}" if prefix else str(key)
        found.update(_leaves(value, path) if isinstance(value, dict) and value else {path: value})
    return found


UNSET = "<unset>"


def disagreements(pillars: dict[str, Any]) -> list[str]:
    """
    Where one cluster's controllers ({controller: its k8s_control_plane pillar}) do not get
    the same pillar: per key path that differs, each value with the controllers that get
    it. Values under ``secrets`` and of password-like keys are not shown (redact). Empty
    when they all agree.
    """
    raw = {m: _leaves(p) for m, p in sorted(pillars.items())}
    shown = {m: _leaves(redact(p)) for m, p in sorted(pillars.items())}
    paths = sorted({path for leaves in raw.values() for path in leaves})
    lines = []
    for path in paths:
        groups: dict[str, list[str]] = {}
        display: dict[str, str] = {}
        for minion, leaves in raw.items():
            value = json.dumps(leaves.get(path, UNSET), sort_keys=True, default=str)
            groups.setdefault(value, []).append(minion)
            display.setdefault(value, str(shown[minion].get(path, UNSET)))
        if len(groups) > 1:
            seen = "; ".join(
                f"{display[value]} on {', '.join(minions)}" for value, minions in groups.items()
            )
            lines.append(f"{path}: {seen}")
    return lines


def agreed(name: str, pillars: dict[str, Any], limit: int = 12) -> None:
    """
    Refuse, with every key path that differs, a cluster whose controllers get different
    k8s_control_plane pillars (two cluster files with one ``cluster:`` value, a
    controller matched by another file): they must agree on the whole definition
    before anything changes.
    """
    lines = disagreements(pillars)
    if lines:
        more = f"; and {len(lines) - limit} more" if len(lines) > limit else ""
        raise CommandExecutionError(
            f"cluster {name!r} is defined differently on its controllers, nothing was changed: "
            + "; ".join(f"{PILLAR_KEY}:{line}" for line in lines[:limit])
            + more
            + "; every controller of one cluster must get the same cluster file "
            "(pillar/top.sls), and each cluster file its own cluster: value"
        )


def leaving_of(members: dict[str, list[str]]) -> list[str]:
    """
    The minions that get the cluster's pillar but are not in its controller list: removed
    from the list (the orchestration drains and cleans each one that is still an etcd
    member, leaving_errors refuses the others).
    """
    lists = [ids for ids in members.values() if ids]
    return sorted(set(members) - set(lists[0])) if lists else []


def leaving_errors(
    name: str, leaving: list[str], ids: list[str], membership: dict[str, Any] | None
) -> list[str]:
    """
    Why minions that get cluster ``name``'s pillar but are not in its list cannot be
    treated as controllers removed from it: only an etcd member of the cluster
    (``membership``: cluster_membership's) is one; any other is a minion matched by
    mistake.
    """
    members = {m["name"] for m in (membership or {}).get("members") or []}
    strays = [m for m in leaving if m not in members]
    if not strays:
        return []
    return [
        f"{', '.join(strays)} get cluster {name!r} from pillar but are not in its "
        f"{PILLAR_KEY}:controllers ({', '.join(ids)}) nor members of its etcd; fix "
        "pillar/top.sls or the list (a controller already removed: delete its key, "
        "salt-key -d, or stop matching it in pillar/top.sls)"
    ]


def skew_errors(target: str, running: dict[str, dict[str, str | None]] | None) -> list[str]:
    """
    Kubernetes' version-skew policy for a rolling upgrade to ``target``,
    given ``running`` = {controller: {component: version or None}} (None:
    not installed yet). Returns the errors; none means the upgrade may go on.

    - one minor at a time: every installed component is at the target's
      minor or the one before (a re-run after a partial upgrade passes);
    - never a downgrade of a minor;
    - the apiservers within one minor of each other;
    - a controller-manager or scheduler never newer than the apiserver on
      its controller (they talk to it through 127.0.0.1).
    """
    errors = []
    want = parse_minor(target)
    if want is None:
        return [f"target version {target!r} is not X.Y.Z"]
    apiservers = {}
    for controller, components in sorted((running or {}).items()):
        for component in COMPONENTS:
            version = (components or {}).get(component)
            have = parse_minor(version)
            if version is None:
                continue
            if have is None:
                errors.append(f"{controller}: {component} reports {version!r}, not a version")
                continue
            if have > want:
                errors.append(
                    f"{controller}: {component} runs {version}, newer than {target}; "
                    "a downgrade is not supported"
                )
            elif have[0] != want[0] or want[1] - have[1] > 1:
                errors.append(
                    f"{controller}: {component} runs {version}; {target} is more than one "
                    f"minor ahead: upgrade one minor at a time "
                    f"(next: {have[0]}.{have[1] + 1}.x)"
                )
            if component == "kube-apiserver":
                apiservers[controller] = have
        api = apiservers.get(controller)
        for component in COMPONENTS[1:]:
            have = parse_minor((components or {}).get(component))
            if api and have and have > api:
                errors.append(
                    f"{controller}: {component} ({have[0]}.{have[1]}) is newer than its "
                    f"apiserver ({api[0]}.{api[1]}); upgrade the apiserver first"
                )
    minors = sorted(set(apiservers.values()))
    if len(minors) > 1 and minors[-1][1] - minors[0][1] > 1:
        spread = ", ".join(f"{c} {m[0]}.{m[1]}" for c, m in sorted(apiservers.items()))
        errors.append(f"the apiservers are more than one minor apart ({spread})")
    return errors


# The plan job (k8s_orchestration.pending): k8s_cluster.plan on every controller at once,
# one function in one process: the controller's identity with the digests of its synced
# modules and in-memory pillar, the whole formula in test mode, and, when no state would
# change, the full run's checks (read-only): etcd quorum and k8s_health.summary (this
# apiserver, the VIP, haproxy and its backends, the controller-manager and the scheduler,
# who holds the VIP). When a digest differs from the master's, the sync job (the project's
# utils, modules and states, without sync_all's other types, each a round trip to the
# master's file server; then the pillar refresh, which reloads the modules) runs first and
# the plan job again.
PLAN_FUNCTION = "k8s_cluster.plan"
CHECK_FUNCTIONS = ("k8s_health.etcd", "k8s_health.summary")
SYNC_FUNCTIONS = (
    "saltutil.sync_utils",
    "saltutil.sync_modules",
    "saltutil.sync_states",
    "saltutil.refresh_pillar",
)


def plan_job(root: str, expected: dict[str, Any] | None = None) -> tuple[str, list[Any]]:
    """
    The plan job's function and its arguments: the formula's folder ``root`` and the
    master's digests (``expected``: ``modules_digest`` and ``pillar_digests``
    {controller: digest}), with which a controller that is behind skips its test run.
    """
    if expected is None:
        return PLAN_FUNCTION, [root]
    return PLAN_FUNCTION, [root, {"expected": expected, "__kwarg__": True}]


def check_functions() -> list[str]:
    """The checks k8s_cluster.plan runs where nothing would change (check_findings reads them)."""
    return list(CHECK_FUNCTIONS)


def sync_job() -> tuple[list[str], list[list[Any]]]:
    """The sync job's functions and arguments (one pillar refresh, at the end, waited for)."""
    args: list[list[Any]] = [[{"refresh": False, "__kwarg__": True}] for _ in SYNC_FUNCTIONS]
    args[-1] = [{"wait": True, "__kwarg__": True}]
    return list(SYNC_FUNCTIONS), args


def _plan_of(answers, minion):
    """A controller's answer to the plan job ({identity, states, checks}), or {}."""
    answer = (answers or {}).get(minion)
    ret = answer.get("ret") if isinstance(answer, dict) else None
    return ret if isinstance(ret, dict) else {}


def stale(answers: dict[str, Any] | None, expected: dict[str, Any]) -> dict[str, str]:
    """
    {controller: why} for each controller whose plan-job answer cannot be trusted as it is:
    no identity (an old or missing k8s_cluster.plan), or synced modules or an in-memory
    pillar that differ from the master's (``expected``: ``modules_digest`` and
    ``pillar_digests`` {controller: digest}).
    """
    found = {}
    for minion in expected["pillar_digests"]:
        why = behind(_plan_of(answers, minion).get("identity"), expected, minion)
        if why:
            found[minion] = why
    return found


def behind(identity: Any, expected: dict[str, Any], minion: str) -> str | None:
    """
    Why controller ``minion``'s identity (k8s_cluster.identity) shows it behind the master
    (``expected`` as in stale), or None when its modules and pillar are the master's.
    """
    if not isinstance(identity, dict) or "modules_digest" not in identity:
        return "no identity with digests (modules not synced yet?)"
    if identity["modules_digest"] != expected.get("modules_digest"):
        return "its synced modules differ from the master's"
    if identity.get("pillar_digest") != (expected.get("pillar_digests") or {}).get(minion):
        return "its in-memory pillar differs from the master's compile"
    return None


def _run_order(item):
    state = item[1]
    return state.get("__run_num__", 0) if isinstance(state, dict) else 0


def _why(key, state):
    """Why a state's test-mode result is not "converged" (None when it is)."""
    if not isinstance(state, dict):
        return f"{key}: {str(state)[:300]}"
    name = state.get("__id__", key)
    if state.get("result") is False:
        return f"{name}: fails ({str(state.get('comment', ''))[:300]})"
    if state.get("result") is not True or state.get("changes"):
        return f"{name}: would change"
    return None


def state_changes(states: Any) -> list[str]:
    """
    What keeps one controller's test-mode state results from "converged": each state a
    real run would change (result None, or changes) or that fails, a render error, no
    results. Empty when every state would pass unchanged.
    """
    if states is None:
        return ["no answer to the plan job (minion down?)"]
    if not isinstance(states, dict) or not states:
        return [f"no state results: {str(states)[:500]}"]
    ordered = sorted(states.items(), key=_run_order)
    return [why for why in (_why(key, state) for key, state in ordered) if why]


def pending_changes(answers: dict[str, Any] | None, ids: list[str]) -> dict[str, list[str]]:
    """
    From the plan job's ``answers`` ({minion: saltutil.cmd's return}), what keeps each of
    the controllers ``ids`` from being known converged (state_changes). A controller with
    an empty list is converged. Anything unknown counts as a change, so that the full
    orchestration runs (and reports it).
    """
    return {m: state_changes(_plan_of(answers, m).get("states")) for m in ids}


# What the formula reads from a minion's pillar: a controller whose in-memory pillar has the
# same digest as the master's fresh compile needs no refresh.
FORMULA_PILLAR = (PILLAR_KEY, "x509_signing_policies")
# The project's synced modules: the files named k8s_* in these folders of a minion's (or the
# master's) extension_modules; Python's bytecode caches are not compared.
EXTMODS_FOLDERS = ("modules", "states", "utils")


def _sha(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def pillar_digest(pillar: Any) -> str:
    """A digest of the part of ``pillar`` the formula reads (FORMULA_PILLAR); no secret in it."""
    pillar = pillar if isinstance(pillar, dict) else {}
    return _sha({key: pillar.get(key) for key in FORMULA_PILLAR})


def extmods_digest(extmods: str) -> str:
    """
    A digest of the project's synced modules under ``extmods`` (a minion's or the master's
    ``extension_modules``): every file under a ``k8s_*`` entry of EXTMODS_FOLDERS, by path
    and content, ``__pycache__`` left out. Equal on a minion and the master when the
    minion's sync is current.
    """
    sums = {}
    for folder in EXTMODS_FOLDERS:
        base = os.path.join(extmods, folder)
        entries = sorted(os.listdir(base)) if os.path.isdir(base) else []
        for entry in (e for e in entries if e.startswith("k8s_")):
            top = os.path.join(base, entry)
            walked = [(base, [], [entry])] if os.path.isfile(top) else os.walk(top)
            for path, dirs, files in walked:
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(f for f in files if not f.endswith(".pyc")):
                    full = os.path.join(path, name)
                    with open(full, "rb") as handle:
                        digest = hashlib.sha256(handle.read()).hexdigest()
                    sums[os.path.relpath(full, extmods)] = digest
    return _sha(sums)


def check_findings(
    answers: dict[str, Any] | None, ids: list[str], states: dict[str, int] | None = None
) -> tuple[bool, list[str]]:
    """
    From the plan job's ``answers``: whether every check passed on every controller ``ids``
    (exactly one VIP holder, etcd quorum seen by each, k8s_health.summary ok on each), and
    the lines that say what each found, after one naming the unchanged ``states``
    {controller: how many}.
    """
    views = {}
    for minion in ids:
        checks = _plan_of(answers, minion).get("checks")
        views[minion] = checks if isinstance(checks, dict) else {}
    etcd = {m: v.get("k8s_health.etcd") for m, v in views.items()}
    summary = {m: v.get("k8s_health.summary") for m, v in views.items()}
    holders = sorted(m for m, s in summary.items() if isinstance(s, dict) and s.get("holds_vip"))
    lines, passed = [], True
    if states is not None:
        lines.append(
            "Nothing to change: " + ", ".join(f"{m} ({n} states)" for m, n in states.items())
        )
    if len(holders) == 1:
        lines.append(f"{holders[0]} holds the VIP")
    else:
        passed = False
        lines.append(f"{len(holders)} controllers hold the VIP (expected exactly 1): {holders}")
    seen = []
    for minion, view in etcd.items():
        if not isinstance(view, dict) or view.get("quorum") is False:
            passed = False
            comment = view.get("comment") if isinstance(view, dict) else view
            seen.append(f"{minion}: {comment or 'no answer'}")
        elif view.get("quorum"):
            seen.append(f"{minion} sees {view['healthy']} of {view['total']}")
        else:
            seen.append(f"{minion} not checked (no client certificate yet)")
    lines.append("etcd quorum: " + ", ".join(seen))
    verdicts = []
    for minion, view in summary.items():
        ok = isinstance(view, dict) and view.get("ok") is True
        passed = passed and ok
        failed = [
            k for k, v in (view or {}).items() if isinstance(v, dict) and v.get("ok") is False
        ]
        verdicts.append(f"{minion} ok" if ok else f"{minion} FAILED {', '.join(failed) or view}")
    lines.append("Verified (k8s_health.summary): " + ", ".join(verdicts))
    lines += certificate_findings(summary)
    return passed, lines


def certificate_findings(summary: dict[str, Any]) -> list[str]:
    """
    From each controller's k8s_health.summary: one line naming the certificate that expires
    first anywhere, and a WARNING line per controller holding any within the renewal
    margin (the next full orchestration renews them). None when no controller says.
    """
    soonest, warnings = None, []
    for minion, view in summary.items():
        found = view.get("certificates") if isinstance(view, dict) else None
        if not isinstance(found, dict):
            continue
        if str(found.get("comment", "")).startswith("not read"):
            warnings.append(f"WARNING certificates on {minion}: {found['comment']}")
        first = found.get("soonest")
        if isinstance(first, dict) and (soonest is None or first["days_left"] < soonest[1]):
            soonest = (minion, first["days_left"], first["file"])
        if found.get("due"):
            warnings.append(
                f"WARNING certificates on {minion} within the renewal margin: "
                + ", ".join(found["due"])
            )
    if soonest is None:
        return warnings
    minion, days, path = soonest
    first = f"Certificates: the first to expire is {path} on {minion}, in {days:.0f} days"
    return [first, *warnings]


def plan_summary(
    answers: dict[str, Any] | None, ids: list[str], still: dict[str, str] | None = None
) -> dict[str, Any]:
    """
    What k8s_orchestration.pending returns, from the plan job's ``answers`` for the
    controllers ``ids`` and ``still`` {controller: why its answer is not current}:
    ``converged`` (no state would change anywhere and every check passed), ``pending``
    {controller: what keeps it from converged}, ``findings`` (the checks' lines, when nothing
    would change), ``states`` {controller: how many states it ran}, ``identities`` and
    ``etcd`` {controller: its k8s_etcd.status} and ``membership`` (cluster_membership: what
    etcd's members must become; None when etcd is not managed).
    """
    found = pending_changes(answers, ids)
    for minion, why in (still or {}).items():
        found[minion] = [*found.get(minion, []), f"not current after a sync: {why}"]
    plans = {m: _plan_of(answers, m) for m in ids}
    counts = {
        m: len(p["states"]) if isinstance(p.get("states"), dict) else 0 for m, p in plans.items()
    }
    unchanged = not any(found.values())
    passed, findings = check_findings(answers, ids, counts)
    return {
        "converged": unchanged and passed,
        "pending": {m: found[m] for m in ids if found[m]},
        "findings": findings if unchanged else [],
        "states": counts,
        "identities": {m: p.get("identity") for m, p in plans.items()},
        "etcd": {m: p.get("etcd") for m, p in plans.items()},
        "membership": cluster_membership(ids, {m: p.get("etcd") for m, p in plans.items()}),
    }


def ask_minions(
    opts: dict[str, Any], ids: list[str], fun: str, timeout: int = 30, **kwarg: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    One execution function on each minion of ``ids`` from the master (a runner's
    LocalClient): ({minion: its answer}, {minion: why not}). An answer counts when it
    returned with retcode 0; a minion silent ``timeout`` seconds after the job's last
    return is asked whether it still runs the job (Salt's find_job) and then given up on.
    """
    import salt.client

    with salt.client.get_local_client(mopts=opts) as client:
        answers = client.cmd(
            ids, fun, kwarg=kwarg, tgt_type="list", timeout=timeout, full_return=True
        )
    found, errors = {}, {}
    for minion in ids:
        answer = answers.get(minion)
        ret = answer.get("ret") if isinstance(answer, dict) else None
        if isinstance(answer, dict) and answer.get("retcode", 0) == 0 and ret is not None:
            found[minion] = ret
        else:
            errors[minion] = ret if ret is not None else "no answer (minion down?)"
    return found, errors


def nested_run(result: Any, who: str) -> int:
    """
    How an orchestration a runner ran itself (``__salt__["state.orchestrate"]``) went: its
    number of steps, or CommandExecutionError naming ``who`` and each failed step with the
    end of its comment (a nested orch-verify says which check failed on which controller).
    No steps at all is a failure too (a render error returns a list of messages, not steps).
    """
    data = result.get("data", result) if isinstance(result, dict) else {}
    steps = [
        s
        for m in (data if isinstance(data, dict) else {}).values()
        if isinstance(m, dict)
        for s in m.values()
    ]
    failed = [s for s in steps if isinstance(s, dict) and s.get("result") is False]
    if steps and not failed:
        return len(steps)
    if not steps:
        raise CommandExecutionError(f"{who} failed: it returned no steps: {result}")
    lines = []
    for step in failed:
        comment = str(step.get("comment", "")).strip()
        lines.append(f"{step.get('__id__')}: {comment[-1500:]}")
    raise CommandExecutionError(f"{who} failed at " + "\n".join(lines))
