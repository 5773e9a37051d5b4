"""Serving: a threading HTTPS server and the health endpoints.

``/healthz``, ``/livez`` and ``/readyz`` answer like k8s.io/apiserver/pkg/server/healthz:
``ok`` when every check passes, the list of checks with ``?verbose``, and status 500 with the
list (reasons withheld) when one fails. haproxy's checks, curl in the lab and k8s_health read
them.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import socketserver
import ssl
from pathlib import Path

from . import MARK, Fatal, address_allowed, go_err


def _somaxconn() -> int:
    """/proc/sys/net/core/somaxconn, as Go reads it (socket.SOMAXCONN when unreadable)."""
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return socket.SOMAXCONN


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTPS server; the TLS handshake happens in the connection's thread."""

    daemon_threads = True
    block_on_close = False
    # The listen backlog of Go's net.Listen: the kernel's somaxconn (go/src/net/sock_linux.go,
    # maxListenerBacklog). socketserver's default of 5 drops the SYNs of a burst while the
    # process is busy or stopped (haproxy then sees a connect hang), which a real one does not.
    request_queue_size = _somaxconn()

    def __init__(self, host: str, port: int, app, tls: ssl.SSLContext):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.tls = tls
        super().__init__((host, port), Handler)

    def server_bind(self) -> None:  # skip HTTPServer's getfqdn(), it may wait for DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address) -> None:
        request.settimeout(30)
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.app.log.v(4, f"TLS handshake error from {client_address[0]}: {exc}")
            return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                request.close()


def listen(app, host: str, port: int, tls: ssl.SSLContext) -> Server:
    if not address_allowed(host):
        raise Fatal(
            f"{MARK}: refusing to bind {host}:{port} (KUBE_DOUBLE_ONLY_ADDRESS="
            f"{os.environ.get('KUBE_DOUBLE_ONLY_ADDRESS')})"
        )
    try:
        return Server(host, port, app, tls)
    except OSError as exc:
        raise Fatal(
            f"failed to listen on {host}:{port}: listen tcp {host}:{port}: bind: {go_err(exc)}"
        ) from None


class Handler(http.server.BaseHTTPRequestHandler):
    """Hands every request to ``server.app.handle(self)``."""

    protocol_version = "HTTP/1.1"
    server_version = "kube-double"
    sys_version = ""
    timeout = 60

    def log_message(self, format, *args):
        self.server.app.log.v(3, "HTTP " + (format % args))

    def _dispatch(self):
        try:
            self.server.app.handle(self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def peer_identity(self):
        """(user, groups) from a verified client certificate, or None."""
        cert = self.connection.getpeercert()
        if not cert:
            return None
        user, groups = None, []
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    user = value
                elif key == "organizationName":
                    groups.append(value)
        return user or "", groups

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reply_text(self, code: int, text: str) -> None:
        self.reply(code, text.encode(), "text/plain; charset=utf-8")

    def reply_json(self, code: int, obj) -> None:
        self.reply(code, (json.dumps(obj) + "\n").encode(), "application/json")


def status_object(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A metav1.Status of a failed request."""
    obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        obj["details"] = details
    obj["code"] = code
    return obj


def health_body(name: str, checks: list, verbose: bool) -> tuple[int, str]:
    """(status, body) of /healthz, /livez or /readyz; ``checks``: [(name, () -> error or None)]."""
    lines, failed = [], False
    for check_name, check in checks:
        if check():
            failed = True
            lines.append(f"[-]{check_name} failed: reason withheld")
        else:
            lines.append(f"[+]{check_name} ok")
    if failed:
        return 500, "\n".join(lines) + f"\n{name} check failed\n"
    if verbose:
        return 200, "\n".join(lines) + f"\n{name} check passed\n"
    return 200, "ok"
