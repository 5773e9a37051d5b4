"""
Each rule once in _utils/: minor-version parsing, the row of a per-minor
table and the component names live in k8s_control_plane.py; k8s_objects.py
and k8s_orchestration.py use them (loaded from their own directory, as Salt
syncs them side by side), and k8s_pki.py writes no list of them.
"""

import ast
import re

import pytest

from tests.support.cluster import REPO
from tests.support.orchestration import rules as orchestration_rules

UTILS = REPO / "_utils"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def _functions(name):
    tree = ast.parse((UTILS / f"{name}.py").read_text(encoding="utf-8"))
    return {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_the_component_names_are_written_once():
    written = {
        path.name: len(
            re.findall(r'"kube-apiserver",\s*"kube-controller-manager"', path.read_text())
        )
        for path in sorted(UTILS.glob("*.py"))
    }
    assert written == {
        "k8s_control_plane.py": 1,
        "k8s_objects.py": 0,
        "k8s_orchestration.py": 0,
        "k8s_pki.py": 0,
    }
    assert orchestration_rules().COMPONENTS == COMPONENTS


@pytest.mark.parametrize("name", ["k8s_objects", "k8s_orchestration", "k8s_pki"])
def test_no_version_parsing_outside_k8s_control_plane(name):
    """No ``.split(".")`` or ``.lstrip("v")`` of a version: parse_minor does that."""
    source = (UTILS / f"{name}.py").read_text(encoding="utf-8")
    assert not re.search(r"""\.(split|lstrip)\(["'](\.|v)["']\)""", source)
    assert not {"_minor", "_since", "parse_minor", "parse_version"} & set(_functions(name))


def test_one_row_picker(rules, objects):
    """k8s_objects.row_at is k8s_control_plane.row_at; _pick (the API versions) uses it too."""
    rows = [
        {"since": "1.25", "api": "c"},
        {"since": "v1.18", "api": "a"},
        {"since": "1.22", "api": "b"},
    ]
    for minor in [(1, 17), (1, 18), (1, 21), (1, 22), (1, 24), (1, 25), (1, 40)]:
        assert objects.row_at(rows, minor) == rules.row_at(rows, minor), minor
    assert rules.row_at(rows, (1, 24))["api"] == "b"
    assert rules.row_at(rows, (1, 17)) is None
    # unordered rows: the table's API versions come from the same picker
    assert rules._pick(rows, (1, 23), "test API") == "b"
    assert rules._pick(rows, (1, 26), "test API") == "c"
    with pytest.raises(Exception, match=r"no test API for Kubernetes 1\.17"):
        rules._pick(rows, (1, 17), "test API")


def test_the_skew_rule_reads_versions_as_parse_minor_does(rules):
    skew = orchestration_rules().skew_errors
    running = {"c1": {c: "v1.36.2" for c in COMPONENTS}}
    assert rules.parse_minor("v1.36.2") == (1, 36)
    assert skew("1.37.0", running) == []
    assert skew("1.36.2", {"c1": {"kube-apiserver": "1.36"}}) == []
    assert skew("1.37.0", {"c1": {"kube-apiserver": "1.36.x"}}) == [
        "c1: kube-apiserver reports '1.36.x', not a version"
    ]
