"""The parameter files a newcomer reads: profiles complete, every key explained."""

import pathlib

import pytest
import yaml

from tools import pillar_reference

ROOT = pathlib.Path(__file__).resolve().parents[2] / "salt" / "k8s_control_plane"


def _leaves(node, prefix=()):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*prefix, key))
    else:
        yield ":".join(prefix)


def _load(path):
    return yaml.safe_load(path.read_text())["k8s_control_plane"]


@pytest.mark.parametrize(
    "folder", sorted(ROOT.glob("*/parameters/profile")), ids=lambda p: p.parts[-3]
)
def test_every_profile_sets_the_same_keys(folder):
    keys = {p.stem: set(_leaves(_load(p))) for p in folder.glob("*.yaml")}
    assert set(keys) == {"tuned", "seed"}
    assert keys["tuned"] == keys["seed"]
    defaults = set(_leaves(_load(folder.parent / "defaults.yaml")))
    assert not keys["tuned"] & defaults, "a profile key also in defaults.yaml hides which wins"


def test_the_docs_pillar_reference_is_current():
    assert pillar_reference.main(["--check"]) == 0


def test_a_key_without_a_comment_is_refused(tmp_path):
    path = tmp_path / "defaults.yaml"
    path.write_text("k8s_control_plane:\n  thing:\n    explained: 1   # it is\n    bare: 2\n")
    assert pillar_reference.documented_keys(path) == [
        ("thing:explained", "it is", False),
        ("thing:bare", "", False),
    ]


def test_a_commented_mapping_is_one_entry(tmp_path):
    path = tmp_path / "defaults.yaml"
    path.write_text(
        "k8s_control_plane:\n  # the whole role\n  role:\n    name: x\n    rules: []\n"
        "  url: 'http://h/#x'   # quoted values may hold a hash\n"
    )
    assert pillar_reference.documented_keys(path) == [
        ("role", "the whole role", True),
        ("url", "quoted values may hold a hash", False),
    ]


def test_drift_is_detected(tmp_path):
    doc = tmp_path / "pillar.md"
    doc.write_text(f"x\n{pillar_reference.BEGIN}\n| stale |\n{pillar_reference.END}\n")
    assert pillar_reference.main(["--check", "--doc", str(doc)]) == 1
    assert pillar_reference.main(["--write", "--doc", str(doc)]) == 0
    assert pillar_reference.main(["--check", "--doc", str(doc)]) == 0
