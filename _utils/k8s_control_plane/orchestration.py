"""
The orchestrations' pure rules, once for orch.control_plane and orch.upgrade:
which cluster a run is for and which minions it may touch, and whether an
upgrade respects Kubernetes' version-skew policy.

The execution module k8s_orchestration (master side), the k8s_upgrade state
and the unit tests share these functions; none of them belongs on the CLI.
"""

from typing import Any

from salt.exceptions import CommandExecutionError

from .facts import parse_minor
from .names import COMPONENT_BINARIES, PILLAR_KEY

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
    defines it, and its members are exactly the controllers it lists.
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
    strays = sorted(set(members) - set(ids))
    if strays:
        raise CommandExecutionError(
            f"{', '.join(strays)} get cluster {name!r} from pillar but are not in its "
            f"{PILLAR_KEY}:controllers ({', '.join(ids)}); fix pillar/top.sls or the list"
        )
    silent = sorted(set(ids) - set(members))
    if silent:
        raise CommandExecutionError(
            f"cluster {name!r} lists {', '.join(silent)} in {PILLAR_KEY}:controllers, but "
            "they do not get this cluster's pillar (key not accepted, or not matched in "
            "pillar/top.sls)"
        )
    return list(ids)


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
