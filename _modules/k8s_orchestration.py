"""
The orchestrations' view from the master: which cluster a run is for and
which controllers it may touch, found by compiling each accepted minion's
pillar here on the master from the pillar files as they are now (as
``salt-run pillar.show_pillar`` does). Nothing is sent to a minion and
nothing compiled is returned but the cluster's name and controller ids.

:func:`pending` asks the controllers themselves, in one job: it syncs the project to them and
runs the whole formula there in test mode, which changes nothing.

Loads on the master only (the orchestrations' master minion); the rules are
in ``_utils/k8s_control_plane/orchestration.py``.
"""

import logging
import time
from typing import Any

import salt.cli.batch  # imported early on purpose; see below
import salt.key
import salt.pillar
import salt.utils.minions

# Why salt.cli.batch is imported here, when every orchestration first loads this module:
# a batched salt.state step imports it the first time it runs (LocalClient.cmd_batch). On
# Python 3.11 an import that a garbage collection interrupts, and whose collected garbage
# imports in turn, fails with KeyError in importlib's _ModuleLock.acquire (python/cpython
# #91351, fixed in 3.12 only). Salt 3008.4's orchestrate process holds such garbage: a
# MasterMinion never destroyed, whose __del__ loads every returner module (measured here
# with an import audit hook). CI failed once on exactly that import, mid-orchestration.
# Imported at render time, before any such garbage exists, it never runs mid-run. Other
# first-time imports mid-run stay exposed to the same interpreter bug; this one is the import
# every batched run makes, and the one CI met.

log = logging.getLogger(__name__)

__virtualname__ = "k8s_orchestration"


def __virtual__():
    # Shells out to nothing; it needs the master's keys and pillar roots.
    if __opts__.get("__role") != "master":
        return (False, "k8s_orchestration runs on the master only (salt-run salt.cmd ...)")
    return __virtualname__


def _compiled():
    """{accepted minion: its whole pillar, compiled here from the pillar files as they are now}."""
    accepted = salt.key.get_key(__opts__).list_status("accepted").get("minions", [])
    result = {}
    for minion in accepted:
        _, grains, _ = salt.utils.minions.get_minion_data(minion, __opts__)
        pillar = salt.pillar.Pillar(__opts__, grains or {"id": minion}, minion, "base")
        result[minion] = pillar.compile_pillar()
    return result


def _expected(compiled, ids):
    """The digests a current controller's identity shows: the master's synced modules, and
    each controller's pillar as the master compiles it."""
    digest = __utils__["k8s_control_plane.pillar_digest"]
    return {
        "modules_digest": __utils__["k8s_control_plane.extmods_digest"](
            __opts__["extension_modules"]
        ),
        "pillar_digests": {m: digest(compiled.get(m)) for m in ids},
    }


def cluster(name: str | None = None, command: str = "orch.control_plane") -> dict[str, Any]:
    """
    Return ``{"cluster": name, "controllers": [ids], "leaving": [minions that get
    the cluster's pillar but are not listed], "pillar_key": ...,
    "root": ..., "pillar_digests": {id: ...}, "modules_digest": ...}`` for the
    cluster an orchestration runs on (with the pillar key and the formula's
    root folder on the master, which the orchestrations name nowhere else,
    and the digests a current controller's identity shows), after the
    checks: one cluster file defines it, its members are exactly the
    controllers it lists, each listed controller gets its pillar, and they all
    get the same one (the whole definition, not only the list). Raises with
    what to fix otherwise.

    name
        The cluster (``k8s_control_plane:cluster``); optional when the master
        has one cluster.

    command
        The orchestration, named in the error that says how to pick a cluster.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd k8s_orchestration.cluster hardway
    """
    rules = "k8s_control_plane."
    key = __utils__[rules + "pillar_key"]()
    compiled = _compiled()
    clusters = __utils__[rules + "clusters_from"]({m: p.get(key) for m, p in compiled.items()})
    chosen = __utils__[rules + "choose_cluster"](clusters, name, command)
    ids = __utils__[rules + "controllers_of"](chosen, clusters[chosen])
    leaving = __utils__[rules + "leaving_of"](clusters[chosen])
    # the listed controllers only: one being removed no longer gets the CA (the ext_pillar
    # gives it to listed controllers only)
    __utils__[rules + "agreed"](chosen, {m: compiled[m].get(key) for m in ids})
    log.debug("k8s_orchestration: cluster %s, controllers %s", chosen, ids)
    return {
        "cluster": chosen,
        "controllers": ids,
        "leaving": leaving,
        "pillar_key": key,
        "root": __utils__[rules + "formula_root"](__salt__["config.get"]),
        **_expected(compiled, ids),
    }


def pending(
    ids: str | list[str],
    root: str | None = None,
    timeout: float = 120,
    expected: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Ask the controllers ``ids`` for their plan (k8s_cluster.plan), all at once in one job:
    their identities, the whole formula in test mode (nothing changes) and, where nothing
    would change, the full run's checks, read-only. Return whether the cluster is
    converged (every state would pass unchanged on every controller, and exactly one VIP
    holder, etcd quorum and k8s_health.summary ok on each), per controller what a real run
    would change, what fails, or why it is unknown, what the checks found (``findings``),
    and the identities. A controller whose synced modules or in-memory pillar differ from
    the master's (the digests its identity shows) gets the project synced and its pillar
    refreshed first, and is asked again. orch.control_plane runs this
    first: a converged cluster gets one step that reports the findings
    (k8s_cluster.converged), anything else the full run.

    ids
        The controllers (a list, or ids joined by commas).

    root
        The formula's folder (default: the master's ``k8s_control_plane_root`` option).

    timeout
        Seconds Salt waits for a job before asking whether it still runs.

    expected
        k8s_orchestration.cluster's return (its digests); default: found here.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd k8s_orchestration.pending k8s-controller-1,k8s-controller-2
    """
    rules = "k8s_control_plane."
    minions = [i for i in (ids.split(",") if isinstance(ids, str) else ids) if i]
    root = root or __utils__[rules + "formula_root"](__salt__["config.get"])
    expected = expected or _expected(_compiled(), minions)
    expected = {
        "modules_digest": expected["modules_digest"],
        "pillar_digests": {m: expected["pillar_digests"].get(m) for m in minions},
    }
    fun, args = __utils__[rules + "plan_job"](root, expected)
    start = time.monotonic()

    def ask(targets):
        return __salt__["saltutil.cmd"](targets, fun, arg=args, tgt_type="list", timeout=timeout)

    answers = ask(minions)
    behind = __utils__[rules + "stale"](answers, expected)
    if behind:
        log.info("k8s_orchestration: syncing %s", behind)
        sync, sync_args = __utils__[rules + "sync_job"]()
        targets = sorted(behind)
        __salt__["saltutil.cmd"](targets, sync, arg=sync_args, tgt_type="list", timeout=timeout)
        answers.update(ask(targets))
    still = __utils__[rules + "stale"](answers, expected)
    result = __utils__[rules + "plan_summary"](answers, minions, still)
    result["synced"] = sorted(behind)
    result["seconds"] = round(time.monotonic() - start, 2)
    log.debug("k8s_orchestration.pending: %s", result)
    return result


def leaving_errors(
    name: str, leaving: list[str], ids: list[str], membership: dict[str, Any] | None = None
) -> list[str]:
    """
    Why minions that get cluster ``name``'s pillar but are not in its controller list
    (``leaving``) cannot be removed as controllers: only an etcd member of the cluster
    (``membership``: what k8s_orchestration.pending returns under that key) is one.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd k8s_orchestration.leaving_errors hardway k8s-controller-9 \
            k8s-controller-1,k8s-controller-2,k8s-controller-3
    """
    leaving = leaving.split(",") if isinstance(leaving, str) else leaving
    ids = ids.split(",") if isinstance(ids, str) else ids
    return __utils__["k8s_control_plane.leaving_errors"](name, leaving, ids, membership)
