"""
A managed etcd's membership (issue 20): the controller list is the one truth, and
the cluster's members follow it one change at a time. Pure rules; the orchestration
state k8s_cluster.etcd_members asks the controllers (k8s_etcd.status) and applies
what these return, reading the members again after each change.

etcd's own rules, followed here (etcd's runtime reconfiguration guide, "Add a new
member as learner"; etcd-io/etcd Procfile.learner): a member is added before it first
starts (``member add``), as a learner that does not count for quorum, one learner at a
time, started with ``--initial-cluster-state existing`` and the members it joins, and
promoted once caught up; a replaced member (same name, empty disk) is removed first,
since two members cannot share a peer URL.
"""

from typing import Any

from .names import PILLAR_KEY

ENVIRONMENT_FILE = "initial-cluster.env"


def etcd_environment_file(cfg: dict[str, Any]) -> str:
    """The etcd unit's EnvironmentFile: the initial cluster it first starts with."""
    return f"{cfg['etcd']['config_dir']}/{ENVIRONMENT_FILE}"


def etcd_environment(initial_cluster: str, state: str) -> str:
    """That file's text. etcd reads both only on a member's first start (empty data)."""
    return (
        "# Managed by Salt (k8s_control_plane etcd, k8s_etcd.join): read by etcd on its\n"
        "# first start only; a member with data ignores it.\n"
        f"ETCD_INITIAL_CLUSTER={initial_cluster}\n"
        f"ETCD_INITIAL_CLUSTER_STATE={state}\n"
    )


def initial_cluster(cfg: dict[str, Any]) -> str:
    """Every controller's name=peer URL: a new cluster's --initial-cluster."""
    port = cfg["etcd"]["peer_port"]
    return ",".join(f"{c['id']}=https://{c['address']}:{port}" for c in cfg["controllers"])


def _quorum(voters: int) -> int:
    return voters // 2 + 1


def membership_plan(
    wanted: dict[str, str], statuses: dict[str, Any], order: list[str] | None = None
) -> dict[str, Any]:
    """
    What the members must become: ``wanted`` {controller id: its peer URL}, in list
    order; ``statuses`` {controller: k8s_etcd.status, or anything else when it did not
    answer}. Returns ``{"bootstrap": bool, "changes": [...], "errors": [...],
    "members": [...]}``: bootstrap when no controller holds etcd data (the members
    start together, as a new cluster); otherwise the changes, in the order they must
    happen, each ``{"action": remove|add|join|promote, "name", "peer_url", "id", "why"}``:
    stale members (a listed controller on an empty disk whose old member is still
    listed) removed first and added again, then each missing controller added as a
    learner (join: added, never started), learners promoted, then members no controller
    lists removed. Only the first change is safe to apply now: the caller reads the
    members again after it. Errors (refused, nothing changed): a controller that did not
    answer on a fresh cluster, no member answering, a removal that would leave etcd
    without a healthy quorum.
    """
    order = order or list(wanted)
    answered = {m: s for m, s in statuses.items() if isinstance(s, dict) and s.get("managed")}
    result: dict[str, Any] = {"bootstrap": False, "changes": [], "errors": [], "members": []}
    if not any(s.get("data") for s in answered.values()):
        silent = sorted(set(order) - set(answered))
        if silent:
            result["errors"].append(
                f"{', '.join(silent)} did not answer whether they hold etcd data; a new "
                "cluster starts only when every controller is known to be empty"
            )
        result["bootstrap"] = not silent
        return result
    listed = next(
        (s["members"] for m in order for s in [answered.get(m) or {}] if s.get("members")),
        None,
    )
    if listed is None:
        result["errors"].append(
            "no etcd member answered its member list ("
            + "; ".join(f"{m}: {(answered.get(m) or {}).get('error', 'no answer')}" for m in order)
            + "); membership is changed only through a healthy member"
        )
        return result
    result["members"] = listed
    by_url = {url: member for member in listed for url in member["peer_urls"]}
    changes = result["changes"]
    stale, later = [], []
    for name in order:
        url, status = wanted[name], answered.get(name)
        member = by_url.get(url)
        add = {"action": "add", "name": name, "peer_url": url, "id": None}
        add["why"] = f"{name} is listed in {PILLAR_KEY}:controllers, not an etcd member"
        if member is None:
            if status is None:
                result["errors"].append(
                    f"{name} is listed but did not answer; it can join etcd only once its "
                    "minion answers"
                )
                continue
            later.append(add)
        elif not member["name"]:  # added, never started
            if status is not None and not status.get("data"):
                later.append(_change("join", name, member, "added, never started"))
        elif status is not None and not status.get("data"):
            # its old member (it had started once) is still listed: the disk was replaced
            stale.append(_change("remove", name, member, f"{name} has no etcd data (new disk?)"))
            later.append(dict(add, why=f"{name} replaced: its member removed, added again"))
        elif member["learner"]:
            later.append(_change("promote", name, member, "a learner"))
    extra = [
        _change("remove", m["name"] or "(never started)", m, "not in the controller list")
        for m in listed
        if not set(m["peer_urls"]) & set(wanted.values())
    ]
    changes.extend(stale + later + extra)
    gone = {c["id"] for c in stale + extra}
    voters = [m for m in listed if not m["learner"] and m["id"] not in gone]
    # a voter counts as healthy when its own endpoint answered (k8s_etcd.status healthy)
    up = [m for m in voters if (answered.get(m["name"]) or {}).get("healthy")]
    if gone and len(up) < _quorum(len(voters)):
        names = ", ".join(c["name"] for c in stale + extra)
        result["errors"].append(
            f"removing {names} would leave {len(up)} healthy of {len(voters)} voting "
            f"members, under quorum ({_quorum(len(voters))}); refused, nothing changed"
        )
    return result


def _change(action: str, name: str, member: dict[str, Any], why: str) -> dict[str, Any]:
    peer = member["peer_urls"][0] if member["peer_urls"] else None
    return {"action": action, "name": name, "peer_url": peer, "id": member["id"], "why": why}


def describe_change(change: dict[str, Any]) -> str:
    """One change, as the orchestration names it (test mode included)."""
    if change["action"] == "join":
        return f"start {change['name']}'s etcd member ({change['id']}), added before"
    if change["action"] == "add":
        return (
            f"add {change['name']} ({change['peer_url']}) to etcd as a learner, start it "
            "with --initial-cluster-state existing, promote it once caught up"
        )
    return f"{change['action']} etcd member {change['name']} ({change['id']}): {change['why']}"


def cluster_membership(ids: list[str], statuses: dict[str, Any]) -> dict[str, Any] | None:
    """
    membership_plan for the controllers ``ids`` from their k8s_etcd.status answers
    (``statuses``; anything else for one that did not answer), the wanted members taken
    from the pillar as a controller that answered reads it (every controller's peer
    URL), never from who answered: a silent controller is not an extra member. None
    when etcd is not managed here.
    """
    answered = [s for s in statuses.values() if isinstance(s, dict) and s.get("managed")]
    if not answered:
        return None
    wanted: dict[str, str] = next(
        (s["wanted"] for s in answered if isinstance(s.get("wanted"), dict)), {}
    )
    order = [m for m in ids if m in wanted]
    return membership_plan({m: wanted[m] for m in order}, statuses, order)
