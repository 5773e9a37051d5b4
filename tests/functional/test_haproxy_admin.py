"""
k8s_health.haproxy_server against a real haproxy (Debian's): drain a server
from both backends while a session to it goes on, read its administrative
state and sessions back, and put it back in rotation. The rolling upgrade
drains each apiserver this way before it restarts.
"""

import shutil
import socket
import subprocess
import threading
import time

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.cluster import REPO, load_file

pytestmark = pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy is not installed")

SERVERS = ("k8s-controller-1", "k8s-controller-2")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Echo:
    """A TCP server standing in for an apiserver: holds each connection open until closed."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)


@pytest.fixture
def haproxy(tmp_path):
    backends = {name: Echo() for name in SERVERS}
    front = _free_port()
    stats = tmp_path / "admin.sock"
    servers = "".join(
        f"  server {name} 127.0.0.1:{echo.port} check\n" for name, echo in backends.items()
    )
    (tmp_path / "haproxy.cfg").write_text(
        f"global\n  stats socket {stats} mode 600 level admin\n"
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n"
        f"frontend k8s-controller-tls\n  bind 127.0.0.1:{front}\n"
        "  default_backend k8s-controller-tls\n"
        "backend k8s-controller-tls\n  balance roundrobin\n  option tcp-check\n"
        f"  default-server inter 200ms rise 1 fall 1\n{servers}"
        f"backend k8s-controller\n  balance roundrobin\n{servers}"
    )
    proc = subprocess.Popen(
        ["haproxy", "-f", str(tmp_path / "haproxy.cfg"), "-db"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while not stats.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    health = load_file(REPO / "_modules" / "k8s_health.py", "k8s_functional_health")
    health.__salt__, health.__opts__, health.__context__ = {}, {}, {}
    yield health, str(stats), front, backends
    proc.terminate()
    proc.wait(timeout=10)


def _connect(port):
    conn = socket.create_connection(("127.0.0.1", port), timeout=3)
    conn.sendall(b"ping")
    assert conn.recv(4) == b"ping"
    return conn


def _wait(check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_drain_keeps_open_sessions_and_sends_new_ones_elsewhere(haproxy):
    health, stats, front, backends = haproxy
    server = "k8s-controller-2"
    rows = health.haproxy_server(server, socket_path=stats)
    assert {(r["proxy"], r["admin"]) for r in rows} == {
        ("k8s-controller-tls", "ready"),
        ("k8s-controller", "ready"),
    }
    # Round robin: two connections reach both servers; one of them is k8s-controller-2's.
    opened = [_connect(front) for _ in range(2)]
    assert backends[server].accepted == 1
    drained = health.haproxy_server(server, state="drain", socket_path=stats)
    assert {r["admin"] for r in drained} == {"drain"}
    assert next(r for r in drained if r["proxy"] == "k8s-controller-tls")["sessions"] == 1
    # The open session goes on; every new connection goes to the other server.
    for conn in opened:
        conn.sendall(b"more")
        assert conn.recv(4) == b"more"
    opened += [_connect(front) for _ in range(4)]
    assert backends[server].accepted == 1
    for conn in opened:
        conn.close()
    assert _wait(
        lambda: all(r["sessions"] == 0 for r in health.haproxy_server(server, socket_path=stats))
    )
    ready = health.haproxy_server(server, state="ready", socket_path=stats)
    assert {r["admin"] for r in ready} == {"ready"}
    assert next(r for r in ready if r["proxy"] == "k8s-controller-tls")["status"] == "UP"
    more = [_connect(front) for _ in range(2)]
    assert backends[server].accepted == 2
    for conn in more:
        conn.close()


def test_a_drained_server_that_fails_its_check_still_reads_drained(haproxy):
    health, stats, _, backends = haproxy
    server = "k8s-controller-1"
    health.haproxy_server(server, state="drain", socket_path=stats)
    backends[server].sock.shutdown(socket.SHUT_RDWR)  # its apiserver stops
    backends[server].sock.close()
    assert _wait(
        lambda: any(
            r["status"].startswith("DOWN")
            for r in health.haproxy_server(server, socket_path=stats)
            if r["proxy"] == "k8s-controller-tls"
        )
    )
    rows = health.haproxy_server(server, socket_path=stats)
    assert {r["admin"] for r in rows} == {"drain"}


def test_unknown_server_and_state_are_refused(haproxy):
    health, stats, _, _ = haproxy
    with pytest.raises(CommandExecutionError, match="haproxy has no server named 'k8s-nope'"):
        health.haproxy_server("k8s-nope", state="drain", socket_path=stats)
    with pytest.raises(CommandExecutionError, match="valid values are ready, drain, maint"):
        health.haproxy_server("k8s-controller-1", state="up", socket_path=stats)
