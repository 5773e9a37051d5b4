"""The lab's end-to-end fixtures: a fresh lab for the modules that need one, a converged lab
handed from one module to the next where they allow it, always torn down at the end.

A module that needs a lab from nothing (before any orchestration) takes ``fresh_lab``. One that
needs a converged lab takes ``converged_lab``: the lab the module before it handed over
(``hand_over()``: converged at that version, the override pillar unset, its last orchestration
a success), else a fresh one orchestrated here. A lab nobody hands over comes down with its
module. The modules run in ORDER so that the hand-overs line up (each saves a boot and a
first orchestration: 2-3 minutes on the real binaries).

The tests run only as root with systemd-nspawn (and without K8S_LAB_SKIP); otherwise they are
skipped with the reason (pytest -ra prints it). K8S_LAB_KEEP=1 leaves the lab running after the
tests, for a look with `make lab-exec` / `make lab-salt` (then `make lab-down`);
K8S_LAB_LEAVE_LAST=1 (.ci/run) leaves only the session's last lab running, converged at the
lab's release, for `make bench-quick` to take instead of a fresh lab and its first
orchestration (every other lab still comes down, checked to leave nothing behind).
"""

import json
import os
import time

import pytest

from tests.lab.fresh import FRESH
from tests.lab.handover import HANDOVER
from tools.lab import lab
from tools.lab.common import DEFAULT_VERSION

UNAVAILABLE = lab.unavailable()


# The lab modules in the order they run: test_lab hands its lab to test_clean (with the
# snapshots it took before its first orchestration, tests/lab/fresh.py), that to
# test_refused_input, that to test_secrets, that to test_snapshots, that to test_renewal, that
# to test_encryption, that to test_ca and that to test_membership (the real default release);
# test_pki hands its lab to test_faults (the doubles at the seed's 1.18.6).
# test_upgrade needs a lab of its own.
ORDER = (
    "test_lab.py",
    "test_clean.py",
    "test_refused_input.py",
    "test_secrets.py",
    "test_snapshots.py",
    "test_renewal.py",
    "test_encryption.py",
    "test_ca.py",
    "test_membership.py",
    "test_pki.py",
    "test_faults.py",
    "test_upgrade.py",
)


def _rank(item) -> int:
    name = item.path.name if "tests/lab/" in item.nodeid else ""
    return ORDER.index(name) if name in ORDER else (-1 if not name else len(ORDER))


# The last lab module of the session (K8S_LAB_LEAVE_LAST leaves its lab running).
LAST: dict = {}


def pytest_collection_modifyitems(config, items):
    items.sort(key=_rank)  # stable: the order within a module, and outside the lab, is kept
    labs = [item.path.name for item in items if "tests/lab/" in item.nodeid]
    LAST["module"] = labs[-1] if labs else None
    for item in items:
        if "tests/lab/" in item.nodeid:
            item.add_marker(pytest.mark.lab)
            if UNAVAILABLE:
                item.add_marker(pytest.mark.skip(reason=f"lab: {UNAVAILABLE}"))


# The modules whose first failure printed the lab's diagnosis (once each: a module fixture's
# error repeats for every test of the module).
DIAGNOSED: set[str] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed lab test's report carries the lab's state (tools/lab/checks.py diagnose):
    which checks failed where, the units that restarted, their last journal lines. CI keeps
    only its printed output, so that is where a failure seen only there is explained."""
    outcome = yield
    report = outcome.get_result()
    module = item.path.name
    if (
        report.failed
        and "tests/lab/" in item.nodeid
        and module not in DIAGNOSED
        and lab.running_containers()
    ):
        DIAGNOSED.add(module)
        report.sections.append(("lab diagnosis", lab.diagnose()))


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


def _version(request) -> str | None:
    return os.environ.get("K8S_LAB_VERSION") or getattr(request.module, "LAB_VERSION", None)


@pytest.fixture(scope="module")
def fresh_lab(request, measured):
    """
    A lab brought up from nothing (down first), keys accepted, not yet orchestrated, at
    K8S_LAB_VERSION when set, else the module's LAB_VERSION, else the lab's (the real 1.37.2).
    """
    HANDOVER.clear()
    with lab.exclusive():
        yield from _fresh_lab(measured, _version(request), request.path.name)


@pytest.fixture(scope="module")
def converged_lab(request, measured):
    """
    A converged lab with the override pillar unset, at the version fresh_lab would use: the one
    the previous module handed over (all its controllers running), else a fresh lab and its
    first orchestration.
    """
    wanted = _version(request) or DEFAULT_VERSION
    handed = HANDOVER.pop("version", None)
    if handed == wanted and lab.running_containers() == list(lab.controllers()):
        lab.say(f"taking over the converged lab at {handed} from the module before")
        key = "up: converged lab taken over (count)"
        measured[key] = measured.get(key, 0) + 1
        with lab.exclusive():
            try:
                yield lab
            finally:
                _down_unless_handed_over(measured, request.path.name)
        return
    HANDOVER.clear()
    with lab.exclusive():
        fresh = _fresh_lab(measured, _version(request), request.path.name)
        next(fresh)
        try:
            start = time.monotonic()
            report, _ = lab.orchestrate()
            measured["up: first orchestration"] = time.monotonic() - start
            assert report["ok"], "orchestration failed:\n" + "\n".join(report["errors"])[-6000:]
            lab.wait_for_holders([next(iter(lab.controllers()))], timeout=60)
            yield lab
        finally:
            fresh.close()  # its finally: down, unless this module handed the lab over


def _down_unless_handed_over(measured, module):
    if os.environ.get("K8S_LAB_KEEP") or HANDOVER:
        return
    if os.environ.get("K8S_LAB_LEAVE_LAST") and module == LAST.get("module"):
        lab.say(f"{module}'s lab left running (K8S_LAB_LEAVE_LAST): `make lab-down` removes it")
        return
    left = lab.down()
    measured["down"] = lab.TIMINGS.get("down", 0.0)
    assert not left, f"lab-down left things behind: {left}"


@pytest.fixture(scope="session", autouse=True)
def _last_lab_down():
    """A lab handed over to no module comes down at the end of the session."""
    yield
    if HANDOVER and not os.environ.get("K8S_LAB_KEEP"):
        HANDOVER.clear()
        with lab.exclusive():
            lab.down()


def _fresh_lab(measured, version=None, module=None):
    FRESH.clear()  # snapshots of the lab that goes down
    lab.down()
    try:
        lab.TIMINGS.clear()
        lab.bring_up(orchestration=False, version=version)
        for phase in ("image (cold build)", "image (cached)", "boot", "keys accepted", "up total"):
            if phase in lab.TIMINGS:
                measured[f"up: {phase}"] = lab.TIMINGS[phase]
        yield lab
    finally:
        _down_unless_handed_over(measured, module)
