"""
The corpus of invalid cluster pillars (invalid.yaml): loading the cases and
building each one's pillar (the cluster file with the case's changes, and its
secrets) and merged configuration, as k8s_cluster.config would.
"""

import copy
import functools
import pathlib

import yaml

from tests.support import pki
from tests.support.cluster import REPO, merged_config

CORPUS = pathlib.Path(__file__).with_name("invalid.yaml")
DELETE = "<delete>"


@functools.cache
def _cases():
    return yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def cases(yaml_faults=True):
    """Every case, a fresh copy; without the YAML-text cases unless yaml_faults."""
    return [copy.deepcopy(c) for c in _cases() if yaml_faults or "text" not in c]


def cluster_file(cluster):
    text = (REPO / "pillar" / f"{cluster}.sls").read_text(encoding="utf-8")
    return yaml.safe_load(text)["k8s_control_plane"]


def apply_changes(pillar, changes):
    """Set each colon path of ``changes`` (list indexes as numbers), making mappings on the way."""
    for path, value in (changes or {}).items():
        parts = [int(p) if p.isdigit() else p for p in path.split(":")]
        node = pillar
        for part in parts[:-1]:
            if isinstance(node, dict) and not isinstance(node.get(part), dict | list):
                node[part] = {}
            node = node[part]
        if value == DELETE:
            node.pop(parts[-1], None) if isinstance(node, dict) else node.pop(parts[-1])
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return pillar


@functools.cache
def _secrets(name):
    case = next(c for c in _cases() if c["name"] == name)
    fault = case.get("pki")
    if fault is not None and fault not in pki.FAULTS:
        # the secrets of another shipped cluster, pasted into this one's
        return pki.secrets_for_cluster(cluster_file(fault))
    # made for the case's own cluster file, as `make render` makes a throwaway PKI
    return pki.secrets_for_cluster(case_cluster_pillar(case), fault)


def case_secrets(case):
    """The secrets the case starts from (before its `set` changes)."""
    return copy.deepcopy(_secrets(case["name"]))


def case_cluster_pillar(case):
    """The case's cluster file (k8s_control_plane, without secrets)."""
    return apply_changes(cluster_file(case.get("cluster", "hardway")), case.get("set"))


def case_pillar(case):
    """
    The case's k8s_control_plane pillar: the cluster file, its secrets, the
    changes. The secrets carry every certificate (the throwaway PKI), so the
    pillar says ``pki:source: pillar``, as tests/support/pki.write_secrets_sls
    does; a case may change it.
    """
    pillar = cluster_file(case.get("cluster", "hardway"))
    pillar["pki"] = {"source": "pillar"}
    pillar["secrets"] = case_secrets(case)
    return apply_changes(pillar, case.get("set"))


def case_files(case):
    """
    The case as make render reads it: (cluster file text, secrets mapping or None).
    The cluster file is the case's pillar without its secrets.
    """
    if "text" in case:
        return case["text"], None
    pillar = case_pillar(case)
    secrets = pillar.pop("secrets")
    return yaml.safe_dump({"k8s_control_plane": pillar}, sort_keys=False), secrets


def case_config(case, os_family="Debian"):
    return merged_config(case_pillar(case), os_family)
