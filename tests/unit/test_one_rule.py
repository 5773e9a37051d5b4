"""
Each rule and each name once in the product: the component names in
_utils/k8s_control_plane/names.py, minor-version parsing in facts.py (every
other module of the package imports it), the row of a per-minor table once;
the pillar key and the formula's root folder written once in all the code
Salt runs (modules, states, ext_pillar, utils, #!py SLS, orchestrations).
"""

import ast
import re

import pytest

from tests.support.cluster import REPO
from tests.support.orchestration import rules as orchestration_rules

UTILS = REPO / "_utils" / "k8s_control_plane"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# Everything Salt loads or renders from this repository.
PRODUCT = [
    *sorted((REPO / "_modules").glob("*.py")),
    *sorted((REPO / "_states").glob("*.py")),
    *sorted((REPO / "_pillar").glob("*.py")),
    *sorted(UTILS.glob("*.py")),
    *sorted(p for p in (REPO / "salt").rglob("*.sls") if not p.name.startswith("_")),
]


def _functions(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_the_component_names_are_written_once():
    written = {
        path.name: len(
            re.findall(r'"kube-apiserver",\s*"kube-controller-manager"', path.read_text())
        )
        for path in sorted(UTILS.glob("*.py"))
    }
    assert {name for name, count in written.items() if count} == {"names.py"}
    assert written["names.py"] == 1
    assert orchestration_rules().COMPONENTS == COMPONENTS


@pytest.mark.parametrize("literal", ['"k8s_control_plane"', '"k8s_control_plane_root"'])
def test_the_pillar_key_and_the_formula_root_are_written_once(literal):
    """The pillar key (and the default root folder, the same word) and the option that moves
    the root: one assignment each in names.py; everything else asks the utils (modules,
    ext_pillar) or k8s_orchestration.cluster (the orchestrations)."""
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for path in PRODUCT
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal in line
    ]
    expected = 2 if literal == '"k8s_control_plane"' else 1
    assert len(found) == expected, found
    assert all(f.startswith("_utils/k8s_control_plane/names.py:") for f in found), found


@pytest.mark.parametrize("name", ["objects", "orchestration", "pki", "flags", "checks", "schema"])
def test_no_version_parsing_outside_facts(name):
    """No ``.split(".")`` or ``.lstrip("v")`` of a version: facts.parse_minor does that."""
    path = UTILS / f"{name}.py"
    source = path.read_text(encoding="utf-8")
    # a version is never split by hand (a DNS name's labels are, in schema.py)
    found = re.findall(r"""(\w+)\.(?:split|lstrip)\(["'](?:\.|v)["']\)""", source)
    assert not [name for name in found if "version" in name or "minor" in name], found
    assert not {"minor_of", "_since", "parse_minor", "parse_version"} & set(_functions(path))


def test_one_row_picker(rules, objects):
    """row_at lives in facts.py only; the API versions (flags._pick) use it too."""
    rows = [
        {"since": "1.25", "api": "c"},
        {"since": "v1.18", "api": "a"},
        {"since": "1.22", "api": "b"},
    ]
    assert not hasattr(objects, "row_at")
    assert rules.row_at is rules.facts.row_at
    assert rules.row_at(rows, (1, 24))["api"] == "b"
    assert rules.row_at(rows, (1, 17)) is None
    # unordered rows: the table's API versions come from the same picker
    assert rules.flags._pick(rows, (1, 23), "test API") == "b"
    assert rules.flags._pick(rows, (1, 26), "test API") == "c"
    with pytest.raises(Exception, match=r"no test API for Kubernetes 1\.17"):
        rules.flags._pick(rows, (1, 17), "test API")


def test_the_skew_rule_reads_versions_as_parse_minor_does(rules):
    skew = orchestration_rules().skew_errors
    running = {"c1": {c: "v1.36.2" for c in COMPONENTS}}
    assert rules.parse_minor("v1.36.2") == (1, 36)
    assert skew("1.37.0", running) == []
    assert skew("1.36.2", {"c1": {"kube-apiserver": "1.36"}}) == []
    assert skew("1.37.0", {"c1": {"kube-apiserver": "1.36.x"}}) == [
        "c1: kube-apiserver reports '1.36.x', not a version"
    ]
