"""Faults the lab can inflict on a controller, and how each one ends (bench/, the fault tests).

Each fault is a pair: `inflict(name)` breaks one thing on one controller at once (no waiting
for the outcome) and `recover(name)` undoes it the way an operator or the host would; None
when the system recovers by itself (systemd restarts the unit, keepalived respawns its child).

    FAULTS["keepalived-stop"].inflict("k8s-controller-1")
    ...                                        # watch the VIP move
    FAULTS["keepalived-stop"].recover("k8s-controller-1")
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable

from .common import IFACE
from .containers import cexec, container_init, kill_container


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    what: str  # one line for the report
    inflict: Callable[[str], None]
    recover: Callable[[str], None] | None  # None: it heals by itself


def _sh(cmd: str) -> Callable[[str], None]:
    def run_it(name: str) -> None:
        cexec(name, cmd, check=True, timeout=60)

    return run_it


def _restart_host(name: str) -> None:
    from .lab import restart_container  # the facade boots it (image, addresses)

    restart_container(name)


# A network split: everything in and out of the lab link dropped inside the controller's own
# network namespace (the host's nft; the link stays up, so keepalived sees no interface fault).
SPLIT_TABLE = "k8s_lab_split"
SPLIT_RULES = f"""table inet {SPLIT_TABLE} {{
  chain in {{ type filter hook input priority -300; policy accept; iifname "{IFACE}" drop; }}
  chain out {{ type filter hook output priority -300; policy accept; oifname "{IFACE}" drop; }}
}}
"""


def _nft(name: str, *args: str, rules: str | None = None) -> None:
    argv = ["nsenter", "-t", str(container_init(name)), "-n", "nft", *args]
    subprocess.run(argv, input=rules, text=True, check=True, capture_output=True, timeout=30)


def split_network(name: str) -> None:
    """Cut `name` off from the other controllers (and the master): no packet in or out."""
    _nft(name, "-f", "-", rules=SPLIT_RULES)


def heal_network(name: str) -> None:
    _nft(name, "delete", "table", "inet", SPLIT_TABLE)


# keepalived's VRRP child: /run/vrrp.pid (keepalived's default vrrp_pid_file).
VRRP_CHILD = "kill -KILL $(cat /run/vrrp.pid)"

FAULTS = {
    fault.name: fault
    for fault in (
        Fault(
            "haproxy-stop",
            "haproxy stopped on the holder (systemctl stop), started again",
            _sh("systemctl stop haproxy"),
            _sh("systemctl start haproxy"),
        ),
        Fault(
            "haproxy-kill",
            "haproxy SIGKILLed on the holder (every process of the unit); systemd restarts it",
            _sh("systemctl kill --signal=KILL haproxy"),
            None,
        ),
        Fault(
            "keepalived-stop",
            "keepalived stopped on the holder (systemctl stop), started again",
            _sh("systemctl stop keepalived"),
            _sh("systemctl start keepalived"),
        ),
        Fault(
            "vrrp-kill",
            "keepalived's VRRP process SIGKILLed on the holder; keepalived respawns it",
            _sh(VRRP_CHILD),
            None,
        ),
        Fault(
            "host-death",
            "the holder's container killed (SIGKILL to all its processes), booted again",
            kill_container,
            _restart_host,
        ),
    )
}
