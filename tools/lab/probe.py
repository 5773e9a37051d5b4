"""A probe of the API through the VIP, run inside the lab's network namespace (never from the
root namespace): one GET every 100 ms, each on a new TLS connection verified against the
cluster's CA, with the admin client certificate, counted and bounded in time.

    with ApiProbe("/readyz") as probe:
        ...                      # the upgrade
    probe.result                 # {"calls": n, "failures": n, "failed": [...], "versions": {...}}

Every 10th call is a GET /version instead, so the result also shows which versions answered
through the VIP over time. A failure is any answer but 200, a refused or reset connection, or no
answer within 3 s. The probe stops when the `with` block ends, or by itself after max_seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import LabError, vip
from .network import in_netns
from .pillar import admin_credentials

PORT = 8443  # haproxy's TLS passthrough frontend on the VIP

_SCRIPT = r"""
import json, socket, ssl, sys, threading, time, http.client
host, port, path, certs, interval, max_seconds = sys.argv[1:7]
interval, max_seconds = float(interval), float(max_seconds)
ctx = ssl.create_default_context(cafile=f"{certs}/ca.pem")
ctx.load_cert_chain(f"{certs}/admin.pem", f"{certs}/admin-key.pem")
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
calls, failed, versions, slowest = 0, [], {}, 0.0
start, epoch = time.monotonic(), time.time()
i = 0
while not stop.is_set() and time.monotonic() - start < max_seconds:
    at = time.monotonic() - start
    target = "/version" if i % 10 == 9 else path
    t0 = time.monotonic()
    try:
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=3)
        conn.request("GET", target)
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        conn.close()
        ok = resp.status == 200
        why = f"HTTP {resp.status}: {body[:200]}"
        if ok and target == "/version":
            v = json.loads(body).get("gitVersion", "?")
            first_last = versions.setdefault(v, [round(at, 2), round(at, 2)])
            first_last[1] = round(at, 2)
    except Exception as exc:
        ok, why = False, f"{type(exc).__name__}: {exc}"
    took = time.monotonic() - t0
    slowest = max(slowest, took)
    calls += 1
    if not ok:
        failed.append({"at": round(at, 3), "path": target, "error": why})
    i += 1
    time.sleep(max(0.0, start + i * interval - time.monotonic()))
print(json.dumps({"started": epoch, "calls": calls, "failures": len(failed), "failed": failed[:50],
                  "versions": versions, "seconds": round(time.monotonic() - start, 2),
                  "slowest_call": round(slowest, 3), "interval": interval}))
"""


class ApiProbe:
    """Calls https://VIP:8443<path> every `interval` seconds from the lab's namespace."""

    def __init__(self, path: str = "/readyz", interval: float = 0.1, max_seconds: float = 900):
        self.path, self.interval, self.max_seconds = path, interval, max_seconds
        self.result: dict | None = None
        self._proc: subprocess.Popen | None = None
        self._certs: Path | None = None

    def _write_certs(self) -> Path:
        certs = Path(tempfile.mkdtemp(prefix="k8s-lab-probe-"))  # 0700
        for name, text in admin_credentials().items():
            (certs / name).write_text(text)
        return certs

    def __enter__(self) -> ApiProbe:
        self._certs = self._write_certs()
        argv = [sys.executable, "-c", _SCRIPT, vip(), PORT, self.path, self._certs]
        argv += [self.interval, self.max_seconds]
        self._proc = subprocess.Popen(
            [str(a) for a in in_netns(argv)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            out, err = self._proc.communicate(input="", timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, err = self._proc.communicate()
        finally:
            shutil.rmtree(self._certs, ignore_errors=True)
        try:
            self.result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError) as e:
            raise LabError(f"the API probe printed no result: {out[-1000:]} {err[-2000:]}") from e


def probe_once(path: str = "/version") -> dict:
    """A short probe (about 1 s): the quick check that the VIP answers with the admin's certs."""
    with ApiProbe(path, 0.1, 1.0) as probe:
        time.sleep(1.2)
    return probe.result
