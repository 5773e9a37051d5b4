"""FORMULA and CHANGELOG.md agree: the version lives in FORMULA, the history in the changelog."""

import pathlib
import re

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
# The fields of saltstack-formulas/template-formula's FORMULA.
FIELDS = {
    "name",
    "os",
    "os_family",
    "version",
    "release",
    "minimum_version",
    "summary",
    "description",
    "top_level_dir",
}
# Keep a Changelog headings: "## [Unreleased]", "## [1.2.3] - 2026-12-06".
HEADING = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$", re.M)


def _formula():
    return yaml.safe_load((REPO / "FORMULA").read_text(encoding="utf-8"))


def _headings():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    return [(m["name"], m["date"]) for m in HEADING.finditer(text)]


def test_formula_has_template_formula_fields():
    formula = _formula()
    assert set(formula) >= FIELDS, f"missing: {sorted(FIELDS - set(formula))}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(formula["version"]))
    assert (REPO / "salt" / formula["top_level_dir"] / "init.sls").is_file()


def test_changelog_has_unreleased_first():
    assert _headings()[0] == ("Unreleased", None)


def test_formula_version_is_newest_release():
    releases = [(name, date) for name, date in _headings() if name != "Unreleased"]
    assert releases, "CHANGELOG.md has no released version"
    assert all(date for _, date in releases), "a release heading without its date"
    assert _formula()["version"] == releases[0][0]
    versions = [tuple(int(n) for n in name.split(".")) for name, _ in releases]
    assert versions == sorted(versions, reverse=True), "releases not newest first"


def test_pyproject_carries_the_formula_version():
    """pyproject.toml's [project] needs a version: the same as FORMULA's, never another."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == str(_formula()["version"])
