"""
The orchestrations' master module imports salt.cli.batch when it loads, so that a batched
step never imports it mid-run (python/cpython#91351 on 3.11; _modules/k8s_orchestration.py).
"""

import subprocess
import sys
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "_modules" / "k8s_orchestration.py"

PROBE = """
import importlib.util, sys
before = "salt.cli.batch" in sys.modules
spec = importlib.util.spec_from_file_location("k8s_orchestration", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(before, "salt.cli.batch" in sys.modules)
"""


def test_loading_the_module_imports_salt_cli_batch():
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(MODULE)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "True"]
