"""tests/lint_cli.py: each public function of _modules/ and _runners/ has a CLI Example; the
lint can fail."""

import ast
import subprocess
import sys

from tests.support.cluster import REPO

LINT = REPO / "tests" / "lint_cli.py"

BAD = '''
def __virtual__():
    return "bad"


def _helper():
    return 1


def documented():
    """
    Documented.

    CLI Example:

    .. code-block:: bash

        salt '*' bad.documented
    """


def undocumented():
    """A docstring, but no example."""


def bare():
    pass
'''


def run(*args):
    return subprocess.run(
        [sys.executable, str(LINT), *map(str, args)], capture_output=True, text=True, check=False
    )


def test_the_modules_pass():
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_module_without_examples_fails(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(BAD, encoding="utf-8")
    result = run(bad)
    assert result.returncode == 1
    named = [line.split(": ")[1] for line in result.stdout.splitlines() if line.count(": ") >= 2]
    assert named == ["bad:undocumented", "bad:bare"]
    assert "__virtual__" not in result.stdout and "_helper" not in result.stdout


def test_nested_and_private_functions_are_not_public(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(
        "def _outer():\n    def inner():\n        pass\n    return inner\n", encoding="utf-8"
    )
    assert run(good).returncode == 0


def test_the_lint_says_what_it_checks(tmp_path):
    """Its docstring names the rule it applies: __virtual__ and private names are exempt."""
    doc = ast.get_docstring(ast.parse(LINT.read_text(encoding="utf-8")))
    assert "(``__virtual__`` included)" not in doc
    assert "``__virtual__`` and private helpers are not checked" in doc
    module = tmp_path / "dunders.py"
    module.write_text("def __virtual__():\n    return True\n\n\nasync def fetch():\n    pass\n")
    result = run(module)
    assert result.returncode == 1
    assert "dunders:fetch" in result.stdout and "__virtual__" not in result.stdout
    # The default is every _modules/*.py and _runners/*.py, as the usage line says.
    count = sum(len(list((REPO / folder).glob("*.py"))) for folder in ("_modules", "_runners"))
    assert f"{count} module(s)" in run().stdout
