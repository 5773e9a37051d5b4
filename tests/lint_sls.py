#!/usr/bin/env python3
"""
Lint the state tree: `#!py` SLS files with ruff (check and format, as
Python), every other SLS file with salt-lint. Exit non-zero on findings.
"""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent


def main():
    failed = False
    python_sls, yaml_sls = [], []
    for path in sorted((REPO / "salt").rglob("*.sls")) + sorted((REPO / "pillar").glob("*.sls")):
        first = path.read_text().split("\n", 1)[0]
        (python_sls if first.startswith("#!py") else yaml_sls).append(path)
    for path in python_sls:
        source = path.read_text()
        for args in (["check", "--extend-ignore", "F821"], ["format", "--check"]):
            run = subprocess.run(
                [BIN / "ruff", *args, "--stdin-filename", f"{path.relative_to(REPO)}.py", "-"],
                input=source,
                capture_output=True,
                text=True,
            )
            if run.returncode:
                failed = True
                print(f"ruff {args[0]} {path.relative_to(REPO)}:\n{run.stdout}{run.stderr}")
    run = subprocess.run(
        [BIN / "salt-lint", *[str(p.relative_to(REPO)) for p in yaml_sls]],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if run.returncode:
        failed = True
        print(f"salt-lint:\n{run.stdout}{run.stderr}")
    print(f"lint_sls: {len(python_sls)} #!py SLS (ruff), {len(yaml_sls)} YAML SLS (salt-lint)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
