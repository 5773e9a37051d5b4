"""k8s_etcd.snapshot_save (issue 21) against a stand-in for etcd's JSON gateway on a local TLS
server: the snapshot streamed in messages as grpc-gateway sends them, etcd's SHA-256 trailer
checked, a root-only file; a member that is not healthy, a bad trailer and a stream error
leave no file."""

import base64
import hashlib
import http.server
import io
import json
import os
import ssl
import stat
import subprocess
import threading

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.cluster import utils_mapping
from tests.support.pki import issue, make_secrets


class _Gateway(http.server.BaseHTTPRequestHandler):
    healthy = True
    messages: list = []

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(json.dumps({"health": "true" if self.healthy else "false"}).encode())

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/v3/maintenance/status":
            self._send(json.dumps({"header": {"revision": "4711"}}).encode())
            return
        self._send(b"".join(json.dumps(m).encode() + b"\n" for m in self.messages))

    def log_message(self, *args):
        pass


def _blob(data):
    return {"result": {"blob": base64.b64encode(data).decode(), "remainingBytes": "0"}}


@pytest.fixture
def etcd(tmp_path, modules):
    secrets = make_secrets(["127.0.0.1"], "127.0.0.2")

    def write(name, text):
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        write("s.pem", secrets["kubernetes.pem"]), write("s-key.pem", secrets["kubernetes-key.pem"])
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cert, key = issue(secrets, "etcd", server=False)
    files = (write("ca.pem", secrets["ca.pem"]), write("c.pem", cert), write("c-key.pem", key))
    cfg = {
        "cluster": "hardway",
        "etcd": {"managed": True, "client_port": server.server_address[1]},
        "controllers": [{"id": "k8s-controller-1", "address": "127.0.0.1"}],
    }
    utils = {**utils_mapping(), "k8s_control_plane.etcd_check_files": lambda _cfg: files}
    module = modules(
        "k8s_etcd",
        __salt__={"k8s_cluster.config": lambda: cfg},
        __utils__=utils,
        __grains__={"id": "k8s-controller-1"},
    )
    _Gateway.healthy = True
    yield module
    server.shutdown()
    server.server_close()


def test_a_snapshot_is_streamed_checked_and_root_only(etcd, tmp_path):
    db = os.urandom(4096 * 3)
    _Gateway.messages = [_blob(db[:5000]), _blob(db[5000:]), _blob(hashlib.sha256(db).digest())]
    (tmp_path / "snaps").mkdir(mode=0o700)
    taken = etcd.snapshot_save(directory=str(tmp_path / "snaps"), timeout=10)
    assert taken["bytes"] == len(db) + 32 and taken["revision"] == 4711
    with open(taken["path"], "rb") as handle:
        assert handle.read() == db + hashlib.sha256(db).digest()
    assert stat.S_IMODE(os.stat(taken["path"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "snaps").st_mode) == 0o700


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unhealthy", "is not healthy: no snapshot from it"),
        ("bad trailer", "does not end with the SHA-256 of its database"),
        ("stream error", "snapshot: {'code': 14"),
    ],
)
def test_a_refused_or_bad_snapshot_leaves_no_file(etcd, tmp_path, case, message):
    db = os.urandom(4096 * 2)
    _Gateway.healthy = case != "unhealthy"
    _Gateway.messages = {
        "unhealthy": [],
        "bad trailer": [_blob(db), _blob(hashlib.sha256(db + b"x").digest())],
        "stream error": [_blob(db), {"error": {"code": 14, "message": "unavailable"}}],
    }[case]
    directory = tmp_path / "snaps"
    directory.mkdir(mode=0o700)
    with pytest.raises(CommandExecutionError, match=message):
        etcd.snapshot_save(directory=str(directory), timeout=10)
    assert list(directory.iterdir()) == []


def test_a_snapshot_goes_only_to_a_root_only_folder(etcd, tmp_path):
    for folder, mode in (("absent", None), ("open", 0o755)):
        if mode is not None:
            (tmp_path / folder).mkdir(mode=mode)
            (tmp_path / folder).chmod(mode)
        with pytest.raises(CommandExecutionError, match="must be an existing 0700 folder"):
            etcd.snapshot_save(directory=str(tmp_path / folder), timeout=10)
    assert stat.S_IMODE((tmp_path / "open").stat().st_mode) == 0o755  # left as it was


def test_a_pushed_snapshot_is_sealed_verified_and_leaves_nothing(etcd, tmp_path):
    """
    snapshot_push: the snapshot checked by etcdutl (a stand-in printing its status), sealed
    under the backup key before cp.push sees it, named after the cluster, the controller and
    the revision etcdutl read; nothing left on the controller.
    """
    database = os.urandom(4096)
    _Gateway.messages = [_blob(database + hashlib.sha256(database).digest())]
    key = os.urandom(32)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    etcdutl = bin_dir / "etcdutl"
    status = {"hash": 1, "revision": 4712, "totalKey": 9, "totalSize": 4096}
    etcdutl.write_text(f"#!/bin/sh\necho '{json.dumps(status)}'\n")
    etcdutl.chmod(0o755)
    cfg = etcd.__salt__["k8s_cluster.config"]()
    cfg["etcd"].update(
        bin_dir=str(bin_dir),
        data_dir=str(tmp_path / "etcd"),
        snapshots={"keep": 3, "max_age_days": 2},
    )
    pushed = {}

    def push(path, upload_path=None):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path, "rb") as handle:
            pushed[upload_path] = handle.read()
        return True

    def run_all(argv, **_kwargs):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return {"retcode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}

    etcd.__salt__.update(
        {
            "pillar.get": lambda k: (
                base64.b64encode(key).decode() if k.endswith("backup_key") else None
            ),
            "cp.push": push,
            "cmd.run_all": run_all,
        }
    )
    pillar = {"k8s_control_plane": {"secrets": {"backup_key": base64.b64encode(key).decode()}}}
    etcd.__pillar__ = pillar
    taken = etcd.snapshot_push(reason="test")
    assert taken["name"].startswith("hardway_") and taken["name"].endswith(
        "_k8s-controller-1_r4712.db.sealed"
    )
    assert list(pushed) == [f"/k8s_control_plane/hardway/{taken['name']}"]
    sealed = pushed[taken["upload_path"]]
    assert database not in sealed  # nothing unsealed left the controller
    plain = io.BytesIO()
    utils_mapping()["k8s_control_plane.unseal_snapshot"](io.BytesIO(sealed), plain, key)
    assert plain.getvalue() == database + hashlib.sha256(database).digest()
    assert (taken["keep"], taken["max_age_days"], taken["status"]) == (3, 2, status)
    assert not (tmp_path / "etcd.snapshots").exists()
    # no backup key: refused before any snapshot is taken
    etcd.__pillar__ = {}
    with pytest.raises(CommandExecutionError, match="secrets:backup_key is missing"):
        etcd.snapshot_push()
    # a master that refuses the push: said, and nothing left
    etcd.__pillar__ = pillar
    etcd.__salt__["cp.push"] = lambda *_a, **_k: False
    with pytest.raises(CommandExecutionError, match="file_recv: True"):
        etcd.snapshot_push()
    assert not (tmp_path / "etcd.snapshots").exists()
