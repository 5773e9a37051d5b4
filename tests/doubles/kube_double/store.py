"""The apiserver's storage: etcd v3 through its JSON gateway (``/v3/kv/range``, ``txn``,
``deleterange``) and etcd's ``/health``, with the client certificate of ``--etcd-certfile``.

Objects are stored as JSON under ``<--etcd-prefix>/<resource>/<name>``; an object's
resourceVersion is its key's mod_revision, and writes compare it (optimistic concurrency).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import time
import urllib.parse

from . import MARK, address_allowed


class EtcdUnavailable(Exception):
    pass


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


class Etcd:
    """A client of etcd's v3 JSON gateway (/v3/kv/...), over the apiserver's etcd TLS flags."""

    def __init__(self, servers: list[str], cafile, certfile, keyfile):
        self.servers = [urllib.parse.urlsplit(s) for s in servers]
        self.preferred = 0
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cafile:
            self.ctx.load_verify_locations(cafile=cafile)
        else:
            self.ctx.load_default_certs()
        if certfile:
            self.ctx.load_cert_chain(certfile, keyfile)
        self._health = (0.0, "not checked yet")
        self._health_lock = threading.Lock()

    def _connection(self, url, timeout: float):
        host = url.hostname or "127.0.0.1"
        if not address_allowed(host):
            raise OSError(f"{MARK}: refusing to connect to {host} (KUBE_DOUBLE_ONLY_ADDRESS)")
        if url.scheme == "https":
            return http.client.HTTPSConnection(
                host, url.port or 2379, context=self.ctx, timeout=timeout
            )
        return http.client.HTTPConnection(host, url.port or 2379, timeout=timeout)

    def request(self, method: str, path: str, body=None, timeout: float = 3.0) -> tuple:
        """Try each server, the last good one first. Returns (status, parsed JSON)."""
        errors = []
        count = len(self.servers)
        for n in range(count):
            index = (self.preferred + n) % count
            url = self.servers[index]
            try:
                conn = self._connection(url, timeout)
                try:
                    payload = json.dumps(body) if body is not None else None
                    conn.request(
                        method, path, body=payload, headers={"Content-Type": "application/json"}
                    )
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                errors.append(f"{url.geturl()}: {exc}")
                continue
            self.preferred = index
            try:
                return resp.status, json.loads(data or b"{}")
            except ValueError:
                return resp.status, {"raw": data.decode(errors="replace")}
        raise EtcdUnavailable("; ".join(errors) or "no etcd servers")

    def health_error(self) -> str | None:
        """None when any server answers /health with health "true"; cached for one second."""
        with self._health_lock:
            checked, error = self._health
            if time.monotonic() - checked < 1.0:
                return error
            error = "no etcd server is healthy"
            problems = []
            for url in self.servers:
                try:
                    conn = self._connection(url, 1.0)
                    try:
                        conn.request("GET", "/health")
                        resp = conn.getresponse()
                        body = json.loads(resp.read() or b"{}")
                    finally:
                        conn.close()
                    if resp.status == 200 and str(body.get("health")) == "true":
                        error = None
                        break
                    problems.append(f"{url.geturl()}: {body}")
                except (OSError, http.client.HTTPException, ssl.SSLError, ValueError) as exc:
                    problems.append(f"{url.geturl()}: {exc}")
            if error:
                error = f"{error}: {'; '.join(problems)}"
            self._health = (time.monotonic(), error)
            return error

    def _kv(self, path: str, body: dict) -> dict:
        status, data = self.request("POST", path, body)
        if status != 200:
            raise EtcdUnavailable(f"etcd answered {status}: {data}")
        return data

    def get(self, key: str):
        """(value bytes, mod_revision) or None."""
        kvs = self._kv("/v3/kv/range", {"key": _b64(key)}).get("kvs") or []
        if not kvs:
            return None
        return base64.b64decode(kvs[0].get("value", "")), int(kvs[0]["mod_revision"])

    def put_if(self, key: str, value: bytes, mod_revision: int) -> tuple[bool, object]:
        """Write when the key's mod_revision is ``mod_revision`` (0: absent).

        Returns (True, new revision) or (False, current (value, mod_revision) or None).
        """
        target = (
            {"target": "CREATE", "create_revision": "0"}
            if mod_revision == 0
            else {"target": "MOD", "mod_revision": str(mod_revision)}
        )
        data = self._kv(
            "/v3/kv/txn",
            {
                "compare": [{"key": _b64(key), "result": "EQUAL", **target}],
                "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}],
                "failure": [{"request_range": {"key": _b64(key)}}],
            },
        )
        if data.get("succeeded"):
            return True, int(data["header"]["revision"])
        kvs = ((data.get("responses") or [{}])[0].get("response_range") or {}).get("kvs") or []
        if not kvs:
            return False, None
        return False, (base64.b64decode(kvs[0].get("value", "")), int(kvs[0]["mod_revision"]))

    def delete(self, key: str) -> bool:
        return int(self._kv("/v3/kv/deleterange", {"key": _b64(key)}).get("deleted", 0)) > 0
