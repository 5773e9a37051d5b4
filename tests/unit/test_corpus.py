"""
Every invalid pillar of the corpus (tests/corpus/invalid.yaml) gives exactly
its errors, all of them and in order, through the validation; and no error
repeats a secret value.
"""

import pytest

from tests.corpus import case_config, case_pillar, cases
from tests.support.cluster import PREFIX, versions_table
from tools.render import load_cluster_text

CASES = cases()


def _expected(case, table):
    supported = f"{table['supported']['min']}.x - {table['supported']['max']}.x"
    return [e.replace("{supported}", supported) for e in case["errors"]]


def test_the_corpus_is_large_and_distinct():
    names = [c["name"] for c in CASES]
    assert len(names) >= 70
    assert len(set(names)) == len(names)
    assert all(c.get("description") and c.get("errors") for c in CASES)
    # distinct pillars, not one pillar under many names
    keys = [repr((c.get("cluster"), c.get("set"), c.get("pki"), c.get("text"))) for c in CASES]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("case", [c for c in CASES if "text" not in c], ids=lambda c: c["name"])
def test_case(rules, case):
    table = versions_table()
    errors = rules.validate_config(case_config(case), table, case.get("minion"))
    assert [e.removeprefix(PREFIX) for e in errors] == _expected(case, table)
    shown = "\n".join(errors)
    secrets = case_pillar(case).get("secrets")
    values = secrets.values() if isinstance(secrets, dict) else [secrets]
    for value in values:
        if isinstance(value, str) and len(value) > 3:
            assert max(value.splitlines(), key=len) not in shown
    assert "k8s-pass" not in shown  # the seed-style auth_pass's value


@pytest.mark.parametrize("case", [c for c in CASES if "text" in c], ids=lambda c: c["name"])
def test_yaml_case(case):
    """YAML faults in a cluster file: one line naming the file and the line."""
    with pytest.raises(SystemExit) as failed:
        load_cluster_text(case["text"], "pillar/corpus.sls")
    assert [str(failed.value)] == [e.replace("<file>", "corpus.sls") for e in case["errors"]]
