"""What the lab checks on a running cluster: the VIP holders, the apiserver's API as the admin
sees it, the RBAC controller, and the seed's checks printed after `up` (verify).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import re
import threading
import time
from pathlib import Path

from .common import HEALTHZ_HOST, LOG_DIR, LabError, controllers, say, vip, write_file
from .containers import cexec, container_init
from .master import parse_json, salt_cmd, salt_json
from .pillar import admin_credentials


def vip_holders() -> list[str]:
    """
    The running controllers that have the VIP as a local address, read from each one's
    /proc/<PID 1>/net/fib_trie (its network namespace's local table) without entering it:
    about 50 us a controller, so a poll every few milliseconds is cheap. A controller that
    does not run (a killed host) holds nothing.
    """
    local = re.compile(rf"\|-- {re.escape(vip())}\n\s+/32 host LOCAL")
    holders = []
    for name in controllers():
        pid1 = container_init(name)
        try:
            trie = Path(f"/proc/{pid1}/net/fib_trie").read_text() if pid1 else ""
        except OSError:  # it died between the two reads
            trie = ""
        if local.search(trie):
            holders.append(name)
    return holders


class HolderTimeline:
    """
    The VIP holders each time they change, polled in a thread every `interval` seconds while
    the `with` block runs (and once more at its end): `points` [[monotonic time, holders]],
    `seen` the holder lists in order, `most` the most holders at one poll, `census` how many
    polls saw how many holders ({0: n, 1: n, 2: n}). `relative()` gives the times from `zero`
    (set it when the event under test starts).
    """

    def __init__(self, interval: float = 0.01):
        self.interval, self.points, self.zero = interval, [], time.monotonic()
        self.census: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _record(self, holders: list[str]) -> None:
        self.census[len(holders)] += 1
        if not self.points or self.points[-1][1] != holders:
            self.points.append([time.monotonic(), holders])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._record(vip_holders())
            self._stop.wait(self.interval)

    def __enter__(self) -> HolderTimeline:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)
        self._record(vip_holders())

    @property
    def seen(self) -> list[list[str]]:
        return [holders for _, holders in self.points]

    @property
    def most(self) -> int:
        return max((len(holders) for holders in self.seen), default=0)

    def seconds(self, test) -> float:
        """Seconds from the first change to the last during which test(holders) was true."""
        pairs = itertools.pairwise(self.points)
        return round(float(sum(t2 - t1 for (t1, holders), (t2, _) in pairs if test(holders))), 3)

    def relative(self) -> list:
        return [[round(t - self.zero, 3), holders] for t, holders in self.points]


def wait_for_holders(expected: list[str], timeout: float) -> tuple[float, int]:
    """
    Poll (every 10 ms, bounded) until exactly `expected` hold the VIP.
    Returns (seconds it took, the most holders seen at once).
    """
    start, most = time.monotonic(), 0
    while True:
        holders = vip_holders()
        most = max(most, len(holders))
        if holders == expected:
            return time.monotonic() - start, most
        if time.monotonic() - start > timeout:
            raise LabError(f"VIP holders {holders} after {timeout}s, expected {expected}")
        time.sleep(0.01)


def rbac_controller() -> str:
    """The controller the orchestration applies RBAC from (k8s_cluster.identity's apply_from)."""
    first = next(iter(controllers()))
    data, proc = salt_json(["salt", "--static", first, "k8s_cluster.identity"], timeout=60)
    if not isinstance(data, dict) or not isinstance(data.get(first), dict):
        raise LabError(f"k8s_cluster.identity on {first}: {(proc.stdout + proc.stderr)[-1000:]}")
    return data[first]["apply_from"]


def kube_api(name: str, path: str) -> tuple[int, str]:
    """GET an apiserver path from inside a controller with the admin client certificate.

    Returns (HTTP status, body); the certificate and key are written to /tmp (0600) only for
    the request.
    """
    pems = admin_credentials()
    tmp = "/tmp/.lab-kube-api"
    cexec(name, f"umask 077; mkdir -p {tmp}", check=True)
    try:
        for pem, text in pems.items():
            cexec(name, f"umask 077; cat > {tmp}/{pem}", input=text, check=True)
        curl = (
            f"curl -s -m 5 --cacert {tmp}/ca.pem --cert {tmp}/admin.pem --key {tmp}/admin-key.pem"
            f" -w '\\n%{{http_code}}' https://127.0.0.1:6443{path}"
        )
        out = cexec(name, curl).stdout
    finally:
        cexec(name, f"rm -rf {tmp}")
    body, _, code = out.rpartition("\n")
    return (int(code) if code.isdigit() else 0), body


def verify() -> None:
    """The seed's checks: the VIP holder, haproxy's /healthz on every controller, health summary."""
    say("verification (the seed's checks):")
    holders = vip_holders()
    say(f"  VIP {vip()} is on: {', '.join(holders) if holders else 'no controller'}")
    for name in controllers():
        out = cexec(
            name, f"curl -s -m 5 -H 'Host: {HEALTHZ_HOST}' -i http://127.0.0.1/healthz"
        ).stdout
        status = out.splitlines()[0].strip() if out else "no answer"
        say(f"  {name}: curl -i http://127.0.0.1/healthz -> {status}")
    seed_kubectl_checks()
    proc = salt_cmd(["salt", "--static", "--out=json", "*", "k8s_health.summary"], timeout=120)
    data = parse_json(proc.stdout)
    full = LOG_DIR / "health-summary.json"
    write_file(full, proc.stdout)
    say(f"  salt '*' k8s_health.summary (full: {full}):")
    if not isinstance(data, dict):
        say(f"    no summary: {(proc.stdout or proc.stderr).strip()[-500:]}")
        return
    for name in sorted(data):
        summary = data[name]
        if not isinstance(summary, dict):
            say(f"    {name}: {summary}")
            continue
        checks = {
            "haproxy 127.0.0.1/healthz": summary["haproxy_local_healthz"]["ok"],
            "apiserver healthz/livez/readyz": summary["apiserver"]["ok"],
            "VIP http+tls": summary["vip"]["ok"],
            "haproxy backends UP": summary["haproxy_backends"]["ok"],
            **{f"{c} healthz": v["ok"] for c, v in summary["components"].items()},
        }
        failed = [k for k, ok in checks.items() if not ok]
        status = "ok" if summary.get("ok") else "FAILED: " + ", ".join(failed)
        vip_note = ", holds the VIP" if summary.get("holds_vip") else ""
        say(f"    {name}: {status} ({len(checks)} checks{vip_note})")


ADMIN_KUBECONFIG = "/var/lib/kubernetes/admin.kubeconfig"
# The seed's verification, verbatim, and the kubelet RBAC it applies asked both ways: the user
# `kubernetes` (the apiserver's kubelet client) may reach the kubelet API, and may do nothing else.
COMPONENTSTATUSES = "kubectl get componentstatuses --kubeconfig admin.kubeconfig"
# (`nodes/proxy` would be read as the node named "proxy": a subresource is --subresource=...)
CAN_I = {
    "get nodes --subresource=proxy": "yes",
    "get nodes --subresource=stats": "yes",
    "get nodes --subresource=log": "yes",
    "delete nodes": "no",
    "get secrets": "no",
}


def componentstatuses(name: str) -> tuple[int, str, dict[str, str]]:
    """The seed's `kubectl get componentstatuses` on a controller, run in the seed's directory
    (/var/lib/kubernetes, where admin.kubeconfig is): (exit code, its output, {NAME: STATUS})."""
    proc = cexec(name, f"cd /var/lib/kubernetes && {COMPONENTSTATUSES}", timeout=60)
    rows = {}
    for line in proc.stdout.splitlines()[1:]:
        words = line.split()
        if len(words) >= 2:
            rows[words[0]] = words[1]
    return proc.returncode, proc.stdout + proc.stderr, rows


def can_i(name: str, verb_resource: str, as_user: str = "kubernetes") -> str:
    """`kubectl auth can-i <verb> <resource> --as=<user>` on a controller: "yes" or "no"."""
    proc = kubectl(name, f"auth can-i {verb_resource} --all-namespaces --as={as_user}")
    return proc.stdout.strip() or proc.stderr.strip()


def seed_kubectl_checks() -> None:
    """Print the seed's componentstatuses table (first controller verbatim, then each one's
    summary) and the kubelet RBAC asked both ways."""
    for i, name in enumerate(controllers()):
        code, out, rows = componentstatuses(name)
        if i == 0:
            say(f"  {name}: {COMPONENTSTATUSES} (exit {code})")
            for line in out.rstrip().splitlines():
                say(f"    {line}")
        else:
            summary = ", ".join(f"{k} {v}" for k, v in rows.items()) or out.strip()[-300:]
            say(f"  {name}: componentstatuses (exit {code}): {summary}")
    name = next(iter(controllers()))
    asked = ", ".join(f"{q} -> {can_i(name, q)}" for q in CAN_I)
    say(f"  {name}: kubectl auth can-i ... --as=kubernetes: {asked}")


def kubectl(name: str, args: str, timeout: float = 60, input: str | None = None):
    """Run the installed kubectl inside a controller with the admin kubeconfig (its 127.0.0.1
    apiserver, or the --server given in args); returns the CompletedProcess."""
    return cexec(
        name, f"kubectl --kubeconfig {ADMIN_KUBECONFIG} {args}", timeout=timeout, input=input
    )


def kubectl_get_json(name: str, kind: str, obj: str) -> dict:
    """An object read back with the real kubectl inside a controller (`get -o json`)."""
    proc = kubectl(name, f"get {kind} {obj} -o json")
    if proc.returncode != 0 or proc.stderr.strip():
        raise LabError(f"kubectl get {kind} {obj} on {name}: {proc.stderr[-2000:]}")
    return parse_json(proc.stdout) or {}


def kubectl_client_version(name: str) -> str:
    """The gitVersion of the kubectl installed on a controller."""
    out = cexec(name, "kubectl version --client -o json", check=True).stdout
    return (parse_json(out) or {}).get("clientVersion", {}).get("gitVersion", "?")


def unit_restarts(unit: str) -> dict[str, str]:
    """{controller: systemd's NRestarts of the unit}: restarts by Restart=on-failure after the
    service exited on its own (a `systemctl restart` by Salt does not count)."""
    return {
        name: cexec(name, f"systemctl show -P NRestarts {unit}", check=True).stdout.strip()
        for name in controllers()
    }


def unit_pids(unit: str) -> dict[str, str]:
    """{controller: the unit's MainPID} (0 when not running): a restart changes it."""
    return {
        name: cexec(name, f"systemctl show -P MainPID {unit}", check=True).stdout.strip()
        for name in controllers()
    }


# The units whose state a failed lab test's report shows (diagnose).
DIAGNOSED_UNITS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "haproxy",
    "keepalived",
)


def diagnose(lines_per_unit: int = 12) -> str:
    """
    What a failed lab test's report shows, for a failure seen only in CI's output: each
    controller's failed k8s_health.summary checks, each unit's state, restarts on its own
    (NRestarts) and start time, and the last journal lines of the units not active or
    restarted on their own. Also written to LOG_DIR/diagnose-<time>.txt; never raises.
    """
    out: list[str] = []
    try:
        proc = salt_cmd(["salt", "--static", "--out=json", "*", "k8s_health.summary"], timeout=60)
        data = parse_json(proc.stdout)
        for name, summary in sorted((data or {}).items()):
            if not isinstance(summary, dict):
                out.append(f"{name}: k8s_health.summary: {str(summary)[:300]}")
                continue
            bad = [
                f"{k}: {str(v)[:300]}"
                for k, v in summary.items()
                if isinstance(v, dict) and v.get("ok") is False
            ]
            bad += [
                f"components.{c}: {str(v)[:300]}"
                for c, v in (summary.get("components") or {}).items()
                if not v.get("ok")
            ]
            out.append(f"{name}: k8s_health.summary " + ("ok" if not bad else "FAILED"))
            out += [f"  {line}" for line in bad]
        units = " ".join(DIAGNOSED_UNITS)
        show = "ActiveState,SubState,NRestarts,ExecMainStartTimestamp"
        for name in controllers():
            text = cexec(
                name,
                f'for u in {units}; do echo "$u $(systemctl show -P ActiveState $u) '
                f"$(systemctl show -P NRestarts $u) $(systemctl show -P "
                f'ExecMainStartTimestamp $u)"; done',
                timeout=30,
            ).stdout
            out.append(f"{name}: unit ActiveState NRestarts started ({show})")
            for row in text.splitlines():
                out.append(f"  {row}")
                unit, _, rest = row.partition(" ")
                state, _, restarts = rest.partition(" ")
                if state != "active" or not restarts.startswith("0"):
                    journal = cexec(
                        name,
                        f"journalctl -u {unit} -n {lines_per_unit} --no-pager -o short-precise",
                        timeout=30,
                    ).stdout
                    out += [f"    {line[:300]}" for line in journal.splitlines()]
    except Exception as exc:  # a diagnosis must not hide the failure it explains
        out.append(f"(diagnosis stopped: {exc!r})")
    text = "\n".join(out)
    with contextlib.suppress(OSError):
        write_file(LOG_DIR / f"diagnose-{int(time.time())}.txt", text + "\n")
    return text
