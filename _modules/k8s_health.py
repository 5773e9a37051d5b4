"""
Health checks of the HA control plane: the apiservers' ``/healthz``,
``/livez`` and ``/readyz`` on a node and through the VIP (TLS, verified with
the cluster CA), haproxy's backends (stats socket), who holds the VIP, and
one machine-readable summary of the seed's verification steps.
"""

import csv
import io
import logging
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import salt.utils.path
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_health"

SEED_HOST_HEADER = "kubernetes.default.svc.cluster.local"


def __virtual__():
    # holds_vip shells out to `ip` (iproute2); haproxy is read through its
    # stats socket and the apiservers over HTTPS, no binary for those.
    if not salt.utils.path.which("ip"):
        return (False, "k8s_health: the ip command (iproute2) is not installed")
    return __virtualname__


def _cfg():
    return __salt__["k8s_cluster.config"]()


def _ca_file(cfg):
    return f"{cfg['controlplane']['pki_dir']}/ca.pem"


def _get(url, ca_file=None, verify=True, host=None, timeout=3.0, cert=None):
    """GET url (``cert``: a client (certificate, key)); return {'url', 'status', 'body', 'ok'}
    and never raise."""
    context = None
    result = {"url": url, "status": None, "body": "", "ok": False}
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        if url.startswith("https://"):
            if verify:
                context = ssl.create_default_context(cafile=ca_file)
            else:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if cert:
                context.load_cert_chain(*cert)
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            result["status"] = resp.status
            result["body"] = resp.read(4096).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        result["status"] = exc.code
        result["body"] = exc.read(4096).decode("utf-8", "replace").strip()
    except (OSError, ssl.SSLError) as exc:
        result["error"] = str(getattr(exc, "reason", exc))
    result["ok"] = result["status"] == 200
    return result


def endpoint(
    url: str,
    ca_file: str | None = None,
    verify: bool = True,
    host: str | None = None,
    timeout: float = 3,
) -> dict[str, Any]:
    """
    GET one URL and report its status and body.

    url
        http:// or https:// URL

    ca_file
        CA bundle to verify the server's certificate with (https)

    verify
        False skips certificate verification (self-signed component ports)

    host
        Host header to send (the seed's check sends kubernetes.default.svc.cluster.local)

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_health.endpoint https://127.0.0.1:6443/readyz \
            ca_file=/var/lib/kubernetes/ca.pem
    """
    return _get(url, ca_file=ca_file, verify=verify, host=host, timeout=float(timeout))


def apiserver(address: str | None = None, timeout: float = 3) -> dict[str, Any]:
    """
    Check one apiserver's ``/healthz``, ``/livez`` and ``/readyz`` over TLS,
    verified with the cluster CA.

    address
        The apiserver's address; default: this controller's address.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_health.apiserver
        salt k8s-controller-1 k8s_health.apiserver 10.240.0.12
    """
    cfg = _cfg()
    address = address or __salt__["k8s_cluster.controller"]()["address"]
    port = cfg["controlplane"]["apiserver_port"]
    checks = {
        path: _get(f"https://{address}:{port}/{path}", _ca_file(cfg), timeout=float(timeout))
        for path in ("healthz", "livez", "readyz")
    }
    return {"address": address, "ok": all(c["ok"] for c in checks.values()), "checks": checks}


def etcd(timeout: float = 2) -> dict[str, Any]:
    """
    Ask every etcd server the apiservers use (their ``--etcd-servers``) for
    its ``/health``, with the apiserver's etcd client certificate (etcd's own
    copy when etcd:managed, there before the control plane's). A member says
    ``"health": "true"`` only while its cluster has a leader, so quorum is a
    majority of the servers healthy. Read-only; never raises.

    timeout
        Seconds per server.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_health.etcd
    """
    cfg = _cfg()
    # a managed etcd's own client files, else the apiserver's (_utils/k8s_control_plane/pki.py)
    ca_file, *cert = __utils__["k8s_control_plane.etcd_check_files"](cfg)
    servers = __utils__["k8s_control_plane.etcd_servers"](cfg)
    missing = [path for path in (ca_file, *cert) if not os.path.exists(path)]
    if missing:
        return {
            "quorum": None,
            "healthy": 0,
            "total": len(servers),
            "servers": {},
            "comment": f"not checked: no etcd client certificate yet ({', '.join(missing)})",
        }
    answers = {}
    for server in servers:
        answer = _get(f"{server.rstrip('/')}/health", ca_file, timeout=float(timeout), cert=cert)
        healthy = answer["ok"] and '"health":"true"' in answer["body"].replace(" ", "")
        answers[server] = {
            "healthy": healthy,
            "answer": answer.get("error") or f"{answer['status']} {answer['body'][:200]}",
        }
    healthy = sum(a["healthy"] for a in answers.values())
    quorum = healthy * 2 > len(servers)
    return {
        "quorum": quorum,
        "healthy": healthy,
        "total": len(servers),
        "servers": answers,
        "comment": f"{healthy} of {len(servers)} etcd servers healthy"
        + ("" if quorum else ": no quorum"),
    }


_VERSION_RE = re.compile(r"\bv(\d+\.\d+\.\d+)\b")
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def _binary_version(path):
    """``path --version`` -> '1.36.2'; None when it is missing or does not answer."""
    if not os.path.exists(path):
        return None
    try:
        run = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_RE.search(run.stdout) if run.returncode == 0 else None
    return match.group(1) if match else None


def versions() -> dict[str, Any]:
    """
    Return the version of each control plane binary installed on this
    controller (``<bin_dir>/<component> --version``; None when it is not
    installed or does not answer) and the version the local apiserver serves
    (``/version`` on 127.0.0.1; None when none is installed or it does not
    answer), and the version this controller's pillar asks for (``pillar``).
    The orchestrations check Kubernetes' version-skew policy against these,
    in one round trip per controller.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_health.versions
    """
    cfg = _cfg()
    bin_dir = cfg["controlplane"]["bin_dir"]
    installed = {c: _binary_version(f"{bin_dir}/{c}") for c in COMPONENTS}
    wanted = str(cfg["kubernetes"]["version"]).lstrip("v")
    serving = None
    if installed["kube-apiserver"]:
        port = cfg["controlplane"]["apiserver_port"]
        answer = _get(f"https://127.0.0.1:{port}/version", _ca_file(cfg), timeout=3.0)
        match = _VERSION_RE.search(answer["body"] or "") if answer["ok"] else None
        serving = match.group(1) if match else None
    result = {"installed": installed, "serving": serving, "pillar": wanted}
    log.debug("k8s_health: versions %s", result)
    return result


def vip(timeout: float = 3) -> dict[str, Any]:
    """
    Check the apiservers through the VIP: the seed's plain-HTTP frontend
    (``/healthz`` with the seed's Host header) and the TLS passthrough
    frontend (``/readyz``, verified with the cluster CA).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_health.vip
    """
    cfg = _cfg()
    haproxy = cfg["loadbalancer"]["haproxy"]
    address = cfg["vip"]["address"]
    checks = {
        "http": _get(
            f"http://{address}:{haproxy['http_port']}/healthz",
            host=SEED_HOST_HEADER,
            timeout=float(timeout),
        ),
        "tls": _get(
            f"https://{address}:{haproxy['tls_port']}/readyz", _ca_file(cfg), timeout=float(timeout)
        ),
    }
    return {"address": address, "ok": all(c["ok"] for c in checks.values()), "checks": checks}


def _parse_show_stat(text):
    """haproxy's ``show stat`` CSV -> [{proxy, server, status, check, sessions}]."""
    lines = text.lstrip("# ").splitlines()
    rows = []
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if row.get("svname") in ("FRONTEND", "BACKEND", None):
            continue
        rows.append(
            {
                "proxy": row["pxname"],
                "server": row["svname"],
                "status": row.get("status", ""),
                "check": row.get("check_status", ""),
                "sessions": int(row.get("scur") or 0),
            }
        )
    return rows


def _stats(command, socket_path):
    """Send one command to haproxy's stats socket (level admin); return its answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(socket_path)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise CommandExecutionError(f"haproxy stats socket {socket_path}: {exc}") from exc
    return b"".join(chunks).decode("utf-8", "replace")


def haproxy_backends(socket_path: str | None = None) -> list[dict[str, Any]]:
    """
    Return the status of every haproxy server (UP, DOWN, DRAIN, MAINT, ...)
    and its current sessions, from the stats socket.

    socket_path
        Default: loadbalancer:haproxy:stats_socket

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_health.haproxy_backends
    """
    socket_path = socket_path or _cfg()["loadbalancer"]["haproxy"]["stats_socket"]
    return _parse_show_stat(_stats("show stat", socket_path))


SERVER_STATES = ("ready", "drain", "maint")
# srv_admin_state bits of `show servers state` (haproxy's include/haproxy/server-t.h):
# forced, inherited, configured, resolution and hostname maintenance; forced and
# inherited drain. `show stat` cannot tell: a drained server that fails its check says DOWN.
_ADMIN_MAINT, _ADMIN_DRAIN = 0x01 | 0x02 | 0x04 | 0x20 | 0x40, 0x08 | 0x10


def _admin_states(socket_path):
    """{(backend, server): 'maint' | 'drain' | 'ready'} from ``show servers state``."""
    found = {}
    for line in _stats("show servers state", socket_path).splitlines():
        fields = line.split()
        if len(fields) < 7 or line.startswith("#") or not fields[6].isdigit():
            continue
        bits = int(fields[6])
        admin = "maint" if bits & _ADMIN_MAINT else "drain" if bits & _ADMIN_DRAIN else "ready"
        found[(fields[1], fields[3])] = admin
    return found


def haproxy_server(
    server: str, state: str | None = None, socket_path: str | None = None
) -> list[dict[str, Any]]:
    """
    Return controller ``server``'s rows in every backend of this controller's
    haproxy (status, administrative state and current sessions); with ``state``, first set its
    administrative state in each of them. ``drain`` sends it no new
    connection while those open go on; ``ready`` puts it back in rotation
    (it is UP again once its health check passes). The state lives in the
    running haproxy only: a restart or reload of haproxy resets it to ready.

    server
        The controller's id (haproxy's server name).

    state
        ``ready``, ``drain`` or ``maint``; default: change nothing.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_health.haproxy_server k8s-controller-2 state=drain
        salt 'k8s-controller-*' k8s_health.haproxy_server k8s-controller-2
    """
    if state is not None and state not in SERVER_STATES:
        raise CommandExecutionError(
            f"haproxy server state {state!r}: valid values are {', '.join(SERVER_STATES)}"
        )
    socket_path = socket_path or _cfg()["loadbalancer"]["haproxy"]["stats_socket"]

    def rows_now():
        admin = _admin_states(socket_path)
        rows = [r for r in haproxy_backends(socket_path) if r["server"] == server]
        return [dict(r, admin=admin.get((r["proxy"], server), "ready")) for r in rows]

    rows = rows_now()
    if not rows:
        raise CommandExecutionError(f"haproxy has no server named {server!r}")
    if state is not None:
        for proxy in sorted({r["proxy"] for r in rows}):
            answer = _stats(f"set server {proxy}/{server} state {state}", socket_path).strip()
            if answer:  # haproxy answers nothing when the command succeeds
                raise CommandExecutionError(f"haproxy: set server {proxy}/{server}: {answer}")
        rows = rows_now()
    log.debug("k8s_health: haproxy server %s%s: %s", server, f" set {state}" if state else "", rows)
    return rows


def _addresses():
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            found.add(parts[parts.index("inet") + 1].split("/")[0])
    return found


def holds_vip(address: str | None = None) -> bool:
    """
    Return True when this minion holds the VIP.

    address
        Default: the cluster's VIP (vip:address)

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_health.holds_vip
    """
    address = address or _cfg()["vip"]["address"]
    holds = address in _addresses()
    log.debug("k8s_health: this minion %s the VIP", "holds" if holds else "does not hold")
    return holds


def _backends():
    """(servers, all UP, the ones that are not): the one verdict on haproxy's backends."""
    try:
        servers = haproxy_backends()
    except CommandExecutionError as exc:
        return [{"error": str(exc)}], False, [str(exc)]
    down = [f"{s['proxy']}/{s['server']} {s['status']}" for s in servers if s["status"] != "UP"]
    return servers, bool(servers) and not down, down


_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _poll_interval(cfg):
    """
    How often to look again: half haproxy's server check interval (a server
    changes state at most that often), between 0.05 and 0.5 s: 0.25 s with the
    tuned profile's 500ms, 0.5 s with the seed's 10s.
    """
    match = re.match(r"^(\d+)(us|ms|s|m|h|d)?$", str(cfg["loadbalancer"]["haproxy"]["inter"]))
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2) or "ms"] if match else 1.0
    return min(0.5, max(0.05, seconds / 2))


def wait_ready(
    timeout: float | None = None, interval: float | None = None, scope: str = "cluster"
) -> dict[str, Any]:
    """
    Wait (bounded, polling) until this controller's apiserver is ready, the
    VIP answers ``/readyz``, and this controller's haproxy has every apiserver
    UP (the seed profile's checks take about 10 s to admit a server); raise
    with the last answers on timeout.

    timeout
        Seconds; default controlplane:ready_timeout

    interval
        Seconds between looks; default half of loadbalancer:haproxy:inter,
        between 0.05 and 0.5

    scope
        ``cluster`` (default): as above. ``local``: this controller's apiserver
        only (a rolling restart, or RBAC while another controller is down).

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_health.wait_ready timeout=120
    """
    cfg = _cfg()
    timeout = float(timeout or cfg["controlplane"]["ready_timeout"])
    interval = float(interval) if interval else _poll_interval(cfg)
    deadline = time.monotonic() + timeout
    start = time.monotonic()
    while True:
        local = apiserver(timeout=2)["checks"]["readyz"]
        if scope == "local":
            through, (backends_up, down) = {"ok": True, "url": "-", "status": "skipped"}, (True, [])
        else:
            through = vip(timeout=2)["checks"]["tls"]
            _, backends_up, down = _backends()
        if local["ok"] and through["ok"] and backends_up:
            seconds = round(time.monotonic() - start, 2)
            log.debug("k8s_health: ready (scope %s) after %ss", scope, seconds)
            return {"ready": True, "seconds": seconds}
        if time.monotonic() >= deadline:
            log.debug("k8s_health: not ready (scope %s) after %ss", scope, timeout)
            raise CommandExecutionError(
                f"not ready after {timeout:.0f}s: local {local['url']} -> "
                f"{local['status'] or local.get('error')} {local['body'][:200]!r}; "
                f"VIP {through['url']} -> {through['status'] or through.get('error')}; "
                f"haproxy servers not UP: {', '.join(down) or 'none'}"
            )
        time.sleep(interval)


def _expiry():
    """The certificates' days left (k8s_pki.expiry), shortened: a warning, never a failure
    (the next orchestration renews what is due)."""
    try:
        found = __salt__["k8s_pki.expiry"]()
    except Exception as exc:  # a check of its own must not fail the summary
        return {"due": [], "comment": f"not read: {exc}"}
    return {"due": found["due"], "soonest": found["soonest"], "comment": found["comment"]}


def summary() -> dict[str, Any]:
    """
    The seed's verification steps, machine-readable: who holds the VIP,
    haproxy on 127.0.0.1 with the seed's Host header (200 expected), this
    apiserver's health endpoints, the VIP, controller-manager and scheduler
    health, and haproxy's backends. ``ok`` is true when all pass; the
    return code is non-zero otherwise. ``certificates`` (k8s_pki.expiry) says
    which expires first and which are within the renewal margin: a warning,
    not a failure.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_health.summary --out=json
    """
    cfg = _cfg()
    haproxy = cfg["loadbalancer"]["haproxy"]
    cp = cfg["controlplane"]
    local = _get(
        f"http://127.0.0.1:{haproxy['http_port']}/healthz", host=SEED_HOST_HEADER, timeout=3.0
    )
    backends, backends_ok, _ = _backends()
    components = {
        name: _get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=3.0)
        for name, port in (
            ("kube-controller-manager", cp["controller_manager_port"]),
            ("kube-scheduler", cp["scheduler_port"]),
        )
    }
    result = {
        "minion": __grains__["id"],
        "holds_vip": holds_vip(cfg["vip"]["address"]),
        "haproxy_local_healthz": local,
        "apiserver": apiserver(),
        "vip": vip(),
        "components": components,
        "haproxy_backends": {"ok": backends_ok, "servers": backends},
        "certificates": _expiry(),
    }
    result["ok"] = all(
        [
            local["ok"],
            result["apiserver"]["ok"],
            result["vip"]["ok"],
            backends_ok,
            *(c["ok"] for c in components.values()),
        ]
    )
    log.debug(
        "k8s_health: summary %s",
        {k: v.get("ok") for k, v in result.items() if isinstance(v, dict) and "ok" in v},
    )
    if not result["ok"]:
        __context__["retcode"] = 1
    return result
