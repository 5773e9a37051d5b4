"""
Fail when a public function of an execution module lacks a ``CLI Example:``.

Public: a top-level ``def`` (or ``async def``) of ``_modules/*.py`` or ``_runners/*.py``
(``salt-run mod.func``) whose name
does not start with ``_``. Those are what ``salt '*' mod.func`` can call, so
each documents how. Salt's loader exposes no name starting with ``_``, so
``__virtual__`` and private helpers are not checked; a function nested in
another is not checked either. Pure helpers belong in ``_utils/`` or are
private.

Usage: tests/lint_cli.py [FILE.py ...]   (default: every _modules/*.py and _runners/*.py)
"""

import ast
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def missing(path):
    """The public functions of one module file without a CLI Example, as module:function."""
    path = pathlib.Path(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_"):
            continue
        if "CLI Example:" not in (ast.get_docstring(node) or ""):
            found.append(f"{path.stem}:{node.name}")
    return found


def main(argv):
    paths = argv or sorted(
        str(p) for folder in ("_modules", "_runners") for p in (REPO / folder).glob("*.py")
    )
    problems = [name for path in paths for name in missing(path)]
    for name in problems:
        print(f"lint_cli: {name}: public function without a 'CLI Example:' in its docstring")
    if problems:
        print(f"lint_cli: {len(problems)} function(s); document them or make them private (_name)")
        return 1
    print(f"lint_cli: {len(paths)} module(s), every public function has a CLI Example")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
