"""The lab's end-to-end fixtures: a fresh lab per module, always torn down.

The tests run only as root with systemd-nspawn (and without K8S_LAB_SKIP); otherwise they are
skipped with the reason (pytest -ra prints it). K8S_LAB_KEEP=1 leaves the lab running after the
tests, for a look with `make lab-exec` / `make lab-salt` (then `make lab-down`).
"""

import json
import os

import pytest

from tests.lab import lab

UNAVAILABLE = lab.unavailable()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/lab/" in item.nodeid:
            item.add_marker(pytest.mark.lab)
            if UNAVAILABLE:
                item.add_marker(pytest.mark.skip(reason=f"lab: {UNAVAILABLE}"))


MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module")
def measured():
    """Measured durations (seconds; counts where the name ends with "(count)") by name; printed
    in pytest's summary and written to the log."""
    yield MEASURED
    if MEASURED:
        lab.LOG_DIR.mkdir(parents=True, exist_ok=True)
        (lab.LOG_DIR / "measured.json").write_text(json.dumps(MEASURED, indent=1))


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("lab measurements")
        for name, value in MEASURED.items():
            if name.endswith("(count)"):  # a count, not a duration
                terminalreporter.write_line(f"{name:45} {value:7d}")
            else:
                terminalreporter.write_line(f"{name:45} {value:7.2f} s")


@pytest.fixture(scope="module")
def fresh_lab(request, measured):
    """
    A lab brought up from nothing (down first), keys accepted, not yet orchestrated, at
    K8S_LAB_VERSION when set, else the module's LAB_VERSION, else the lab's (the real 1.37.2).
    """
    version = os.environ.get("K8S_LAB_VERSION") or getattr(request.module, "LAB_VERSION", None)
    with lab.exclusive():
        yield from _fresh_lab(measured, version)


def _fresh_lab(measured, version=None):
    lab.down()
    try:
        lab.TIMINGS.clear()
        lab.bring_up(orchestration=False, version=version)
        for phase in ("image (cold build)", "image (cached)", "boot", "keys accepted", "up total"):
            if phase in lab.TIMINGS:
                measured[f"up: {phase}"] = lab.TIMINGS[phase]
        yield lab
    finally:
        if not os.environ.get("K8S_LAB_KEEP"):
            left = lab.down()
            measured["down"] = lab.TIMINGS.get("down", 0.0)
            assert not left, f"lab-down left things behind: {left}"
