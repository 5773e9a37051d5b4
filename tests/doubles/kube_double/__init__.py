"""Test doubles of kube-apiserver, kube-controller-manager and kube-scheduler.

Only for the minors that cannot be built here: tools/upstream_build.py builds the real binaries
from upstream's Go modules for its REAL_MINORS (1.34-1.37), and for those the binary is the
authority (tests/unit/test_version_contract_real.py); the double covers 1.18-1.33 and refuses a
real minor, naming its build. For those older minors the lab's release mirror serves one
executable (``tests/doubles/build.py`` makes it, a zipapp with the version stamped inside) under
the three official names. It is a test double, not Kubernetes: it says so in ``--version``, in
every log line and in ``/version``.

It keeps only what the project's states and tests can observe:

* flags.py, cli.py: the command line of the pretended version (pflag syntax, cobra's
  ``Error: unknown flag: --x`` and exit status 1, value errors, required flags);
* checks.py: the files the flags point at must exist and parse, certificate/key pairs must match,
  kubeconfigs must carry a client certificate, encryption and scheduler configs must be valid;
* serve.py: TLS health endpoints ``/healthz``, ``/livez``, ``/readyz`` (``?verbose``), the
  apiserver's failing while etcd is unreachable;
* store.py, apiserver.py: clusterroles and clusterrolebindings (GET, POST, PUT, DELETE,
  ``dryRun=All``) stored in etcd through its v3 JSON gateway, readable back;
* components.py: what the three share, and the controller-manager and scheduler.

Environment variables, for tests: ``KUBE_DOUBLE_VALIDATE_ONLY=1`` (check flags and files, exit 0
without serving) and ``KUBE_DOUBLE_ONLY_ADDRESS=<ip>`` (refuse to bind or connect elsewhere).

Runs on Debian 12's /usr/bin/python3 (3.11): the standard library, python3-yaml (the real
components read YAML files) and the ``openssl`` CLI.
"""

from __future__ import annotations

import datetime
import os
import sys
import threading

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The minors the double pretends: 1.18 (released 2020-03-25) up to the last one without a real
# build. The zipapp carries only this package (tests/doubles/build.py), so it cannot import
# tools/upstream_build.py: REAL_MINORS copies that module's range as (first, last), and
# tests/unit/test_kube_double.py checks both against it (SUPPORTED_MINORS[1] == REAL_MINORS[0] - 1).
SUPPORTED_MINORS = (18, 33)
REAL_MINORS = (34, 37)  # tools/upstream_build.py REAL_MINORS: built from upstream, never a double
MARK = "test double"


class Fatal(Exception):
    """A start-up error: the component exits with status 1."""


def go_err(exc: OSError) -> str:
    """Format an OSError the way Go prints it (lower case, no errno)."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one error alone, several in brackets."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


def address_allowed(host: str) -> bool:
    only = os.environ.get("KUBE_DOUBLE_ONLY_ADDRESS")
    return not only or host == only


class Log:
    """klog-like lines on stderr, each marked as coming from the test double."""

    def __init__(self, component: str, verbosity: int = 0):
        self.component = component
        self.verbosity = verbosity
        self._lock = threading.Lock()

    def _emit(self, severity: str, msg: str) -> None:
        now = datetime.datetime.now()
        line = (
            f"{severity}{now:%m%d %H:%M:%S.%f} {os.getpid():>7} {self.component}] [{MARK}] {msg}\n"
        )
        with self._lock:
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def info(self, msg: str) -> None:
        self._emit("I", msg)

    def warning(self, msg: str) -> None:
        self._emit("W", msg)

    def error(self, msg: str) -> None:
        self._emit("E", msg)

    def v(self, level: int, msg: str) -> None:
        if self.verbosity >= level:
            self._emit("I", msg)
