"""The lab's network namespace `k8slab` and its bridge; the root namespace never gets a route.

The bridge k8sbr0 (10.240.0.1/24) lives only inside the namespace; the salt-master and the
mirror listen there; nothing in it has a way out. check_root_namespace() refuses to go on
when the root namespace has an address or route in the lab subnet.
"""

from __future__ import annotations

import ipaddress
import re
import sys

from .common import BRIDGE, LAB_NET, MASTER_IP, NETNS, NETNS_PATH, LabError, run


def in_netns(argv: list) -> list:
    """argv run in the lab's network namespace only (no other namespace changes)."""
    return ["nsenter", f"--net={NETNS_PATH}", "--", *argv]


def netns_exists() -> bool:
    return NETNS_PATH.exists() and NETNS in run(["ip", "netns", "list"]).stdout.split()


def ensure_netns() -> None:
    if not netns_exists():
        run(["ip", "netns", "add", NETNS])
    ns = ["ip", "-n", NETNS]
    run([*ns, "link", "set", "lo", "up"])
    if run([*ns, "link", "show", BRIDGE], check=False).returncode != 0:
        run([*ns, "link", "add", BRIDGE, "type", "bridge"])
    addrs = run([*ns, "-4", "-o", "addr", "show", "dev", BRIDGE]).stdout
    if f"{MASTER_IP}/{LAB_NET.prefixlen}" not in addrs:
        run([*ns, "addr", "add", f"{MASTER_IP}/{LAB_NET.prefixlen}", "dev", BRIDGE])
    run([*ns, "link", "set", BRIDGE, "up"])
    check_root_namespace()


def root_namespace_leaks() -> list[str]:
    """Lines of the root namespace's addresses and routes that touch the lab subnet."""
    leaks = []
    for argv in (["ip", "-4", "-o", "addr"], ["ip", "-4", "route", "show", "table", "all"]):
        for line in run(argv).stdout.splitlines():
            for word in re.findall(r"\d+\.\d+\.\d+\.\d+(?:/\d+)?", line):
                net = ipaddress.ip_network(word, strict=False)
                if net.overlaps(LAB_NET) and net.prefixlen > 0:
                    leaks.append(line.strip())
    return leaks


def check_root_namespace() -> None:
    leaks = root_namespace_leaks()
    if leaks:
        raise LabError("the root namespace has lab addresses/routes: " + "; ".join(leaks))


def tcp_open_in_netns(port: int) -> bool:
    code = f"import socket; socket.create_connection(('{MASTER_IP}', {port}), 1).close()"
    return run(in_netns([sys.executable, "-c", code]), check=False).returncode == 0
