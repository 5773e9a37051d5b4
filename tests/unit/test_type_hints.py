"""
Every public function of the product is annotated: each parameter and the return.

mypy (make lint) checks the annotated functions' bodies and, with disallow_incomplete_defs,
refuses a partly annotated function; it cannot require annotations of public functions only
(disallow_untyped_defs would take the private helpers too, which stay untyped). This test
does: public is a top-level ``def`` (or ``async def``) whose name does not start with ``_``,
and a public method of a public top-level class (``self`` or ``cls`` needs none); a function
nested in another is not checked, as in tests/lint_cli.py. ``*args`` and ``**kwargs`` are
parameters too.
"""

import ast
import tomllib

from tests.support.cluster import REPO

# The folders mypy checks (pyproject.toml's [tool.mypy] files).
FOLDERS = ("_utils/k8s_control_plane", "_modules", "_states", "_pillar", "_runners")

BAD = """
def __virtual__():
    return "bad"


def _helper(value):
    return value


def typed(name: str, *args: int, flag: bool = False, **kwargs: str) -> None:
    def nested(value):
        return value


def no_return(name: str):
    pass


def one_untyped(name: str, other) -> None:
    pass


def untyped_kwargs(name: str, **kwargs) -> None:
    pass


class Errors(list):
    def add(self, key: str, message) -> None:
        pass

    def _private(self, key):
        pass


class _Hidden:
    def add(self, key):
        pass
"""


def public_functions(tree):
    """(name, node, parameters that need an annotation) of the public functions of a module."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not node.name.startswith("_"):
                found.append((node.name, node, _parameters(node.args)))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for method in node.body:
                if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                    if method.name.startswith("_"):
                        continue
                    params = _parameters(method.args)
                    static = any(
                        isinstance(d, ast.Name) and d.id == "staticmethod"
                        for d in method.decorator_list
                    )
                    if params and not static and params[0].arg in ("self", "cls"):
                        params = params[1:]
                    found.append((f"{node.name}.{method.name}", method, params))
    return found


def _parameters(args):
    return [
        *args.posonlyargs,
        *args.args,
        *([args.vararg] if args.vararg else []),
        *args.kwonlyargs,
        *([args.kwarg] if args.kwarg else []),
    ]


def missing(source, label):
    """``label:function: what lacks an annotation`` for each public function of ``source``."""
    problems = []
    for name, node, params in public_functions(ast.parse(source)):
        lacking = [p.arg for p in params if p.annotation is None]
        if lacking:
            problems.append(f"{label}:{name}: parameters {', '.join(lacking)}")
        if node.returns is None:
            problems.append(f"{label}:{name}: return")
    return problems


def product_files():
    return [path for folder in FOLDERS for path in sorted((REPO / folder).glob("*.py"))]


def test_every_public_function_is_annotated():
    problems = []
    for path in product_files():
        label = str(path.relative_to(REPO))
        problems += missing(path.read_text(encoding="utf-8"), label)
    assert problems == [], "public functions without type hints:\n" + "\n".join(problems)


def test_it_sees_the_public_functions():
    counts = {
        folder: sum(
            len(public_functions(ast.parse(path.read_text(encoding="utf-8"))))
            for path in (REPO / folder).glob("*.py")
        )
        for folder in FOLDERS
    }
    assert all(counts.values()), counts
    assert sum(counts.values()) > 100, counts


def test_the_check_can_fail():
    assert missing(BAD, "bad") == [
        "bad:no_return: return",
        "bad:one_untyped: parameters other",
        "bad:untyped_kwargs: parameters kwargs",
        "bad:Errors.add: parameters message",
    ]


def test_mypy_checks_the_same_folders():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert tuple(config["tool"]["mypy"]["files"]) == FOLDERS
    assert all((REPO / folder).is_dir() for folder in FOLDERS)
