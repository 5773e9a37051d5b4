"""
The orchestrations' view from the master: which cluster a run is for and
which controllers it may touch, found by compiling each accepted minion's
pillar here on the master from the pillar files as they are now (as
``salt-run pillar.show_pillar`` does). Nothing is sent to a minion and
nothing compiled is returned but the cluster's name and controller ids.

Loads on the master only (the orchestrations' master minion); the rules are
in ``_utils/k8s_control_plane/orchestration.py``.
"""

import logging
from typing import Any

import salt.key
import salt.pillar
import salt.utils.minions

log = logging.getLogger(__name__)

__virtualname__ = "k8s_orchestration"


def __virtual__():
    # Shells out to nothing; it needs the master's keys and pillar roots.
    if __opts__.get("__role") != "master":
        return (False, "k8s_orchestration runs on the master only (salt-run salt.cmd ...)")
    return __virtualname__


def _pillars():
    accepted = salt.key.get_key(__opts__).list_status("accepted").get("minions", [])
    result = {}
    for minion in accepted:
        _, grains, _ = salt.utils.minions.get_minion_data(minion, __opts__)
        pillar = salt.pillar.Pillar(__opts__, grains or {"id": minion}, minion, "base")
        result[minion] = pillar.compile_pillar().get(__utils__["k8s_control_plane.pillar_key"]())
    return result


def cluster(name: str | None = None, command: str = "orch.control_plane") -> dict[str, Any]:
    """
    Return ``{"cluster": name, "controllers": [ids], "pillar_key": ...,
    "root": ...}`` for the cluster an orchestration runs on (with the pillar
    key and the formula's root folder on the master, which the orchestrations
    name nowhere else), after the checks: one cluster file defines it, its
    members are exactly the controllers it lists, and each listed controller
    gets its pillar. Raises with what to fix otherwise.

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
    clusters = __utils__[rules + "clusters_from"](_pillars())
    chosen = __utils__[rules + "choose_cluster"](clusters, name, command)
    ids = __utils__[rules + "controllers_of"](chosen, clusters[chosen])
    log.debug("k8s_orchestration: cluster %s, controllers %s", chosen, ids)
    return {
        "cluster": chosen,
        "controllers": ids,
        "pillar_key": __utils__[rules + "pillar_key"](),
        "root": __utils__[rules + "formula_root"](__salt__["config.get"]),
    }
