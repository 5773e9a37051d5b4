"""A CA change seen from a controller (k8s_etcd.trust_changed, issue 20): its own etcd member
serves a certificate that the CA file here does not verify. A local TLS server stands in for
the member, with a certificate of one CA; the controller's files are of that CA or another."""

import http.server
import json
import ssl
import threading

import pytest

from tests.support.pki import issue, make_secrets


class _Status(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"version": "3.7.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _write(directory, name, text):
    path = directory / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def member(tmp_path):
    """A TLS server on 127.0.0.1 with a certificate of its own CA: (its secrets, its port)."""
    secrets = make_secrets(["127.0.0.1"], "127.0.0.2")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        _write(tmp_path, "serving.pem", secrets["kubernetes.pem"]),
        _write(tmp_path, "serving-key.pem", secrets["kubernetes-key.pem"]),
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield secrets, server.server_address[1]
    server.shutdown()
    server.server_close()


def _module(modules, tmp_path, secrets, port):
    cert, key = issue(secrets, "etcd", server=False)
    files = (
        _write(tmp_path, "ca.pem", secrets["ca.pem"]),
        _write(tmp_path, "client.pem", cert),
        _write(tmp_path, "client-key.pem", key),
    )
    (tmp_path / "data" / "member").mkdir(parents=True)
    cfg = {
        "cluster": "hardway",
        "etcd": {"managed": True, "client_port": port, "data_dir": str(tmp_path / "data")},
        "controllers": [{"id": "k8s-controller-1", "address": "127.0.0.1"}],
    }
    return modules(
        "k8s_etcd",
        __salt__={"k8s_cluster.config": lambda: cfg, "service.status": lambda name: True},
        __utils__={"k8s_control_plane.etcd_check_files": lambda _cfg: files},
        __grains__={"id": "k8s-controller-1"},
    )


def test_the_member_of_the_files_ca_is_no_trust_change(modules, tmp_path, member):
    secrets, port = member
    module = _module(modules, tmp_path, secrets, port)
    assert module.trust_changed()["changed"] is False


def test_a_member_of_another_ca_is_a_trust_change(modules, tmp_path, member):
    _, port = member
    module = _module(modules, tmp_path, make_secrets(["127.0.0.1"], "127.0.0.2"), port)
    answer = module.trust_changed()
    assert answer == {
        "changed": True,
        "comment": "this member runs with another CA than the files here (a CA change)",
    }
    # no turn is taken across such a change, and the restart gate lets it happen
    taken = module.take_turn("etcd", timeout=1)
    assert taken == {"name": "etcd", "waited": 0.0, "skipped": "etcd's members run with another CA"}
    gate = module.restart_safe(timeout=1)
    assert gate["safe"] is True and gate["comment"].startswith("this member runs with another CA")


def test_a_member_that_is_down_is_no_trust_change(modules, tmp_path, member):
    secrets, port = member
    module = _module(modules, tmp_path, secrets, port + 1 if port < 65535 else port - 1)
    assert module.trust_changed(timeout=1)["changed"] is False
