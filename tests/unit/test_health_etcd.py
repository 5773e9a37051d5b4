"""k8s_health.etcd against real TLS servers that demand the client certificate, as etcd's
``--client-cert-auth`` does: one answers like a member with a leader, one like a member without
(``"health":"false"``), one port is closed. The client files are those
_utils/k8s_control_plane/pki.py's etcd_check_files names: in a managed etcd's directory the
apiserver's certificate with pki:source pillar (the seed's layout), etcd's own
with pki:source salt; the control plane's with an unmanaged etcd."""

import http.server
import json
import socket
import ssl
import threading

import pytest

from tests.support.pki import issue, make_secrets

FILES = ("ca.pem", "kubernetes.pem", "kubernetes-key.pem")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The CA, the apiserver's certificate and etcd's own (CN etcd), as Salt issues it."""
    directory = tmp_path_factory.mktemp("etcd-pki")
    secrets = make_secrets(["127.0.0.1"], "127.0.0.2")
    for name in FILES:
        (directory / name).write_text(secrets[name])
    cert, key = issue(secrets, "etcd", "Kubernetes", ["127.0.0.1", "localhost"])
    (directory / "etcd.pem").write_text(cert)
    (directory / "etcd-key.pem").write_text(key)
    return directory


def _serve(pki, body):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.seen.append((self.path, self.connection.getpeercert()["subject"]))
            data = json.dumps(body).encode()
            self.send_response(200 if body["health"] == "true" else 503)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    Handler.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    context.verify_mode = ssl.CERT_REQUIRED  # etcd's --client-cert-auth
    context.load_cert_chain(pki / "kubernetes.pem", pki / "kubernetes-key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, Handler.seen


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def servers(pki):
    leader, seen_leader = _serve(pki, {"health": "true", "reason": ""})
    lost, _ = _serve(pki, {"health": "false", "reason": "RAFT NO LEADER"})
    urls = [
        f"https://127.0.0.1:{leader.server_address[1]}",
        f"https://127.0.0.1:{lost.server_address[1]}",
        f"https://127.0.0.1:{_closed_port()}",
    ]
    yield urls, seen_leader
    leader.shutdown()
    lost.shutdown()


def _module(modules, pki, servers, managed=True, source="pillar"):
    cfg = {
        "etcd": {"managed": managed, "config_dir": str(pki), "servers": servers},
        "controlplane": {"pki_dir": str(pki) if not managed else "/nonexistent"},
        "controllers": [],
        "pki": {"source": source},
    }
    return modules("k8s_health", __salt__={"k8s_cluster.config": lambda: cfg})


def test_one_of_three_healthy_is_no_quorum_and_each_answer_is_named(modules, pki, servers):
    urls, seen = servers
    report = _module(modules, pki, urls).etcd(timeout=2)
    assert (report["quorum"], report["healthy"], report["total"]) == (False, 1, 3)
    assert report["comment"] == "1 of 3 etcd servers healthy: no quorum"
    assert report["servers"][urls[0]]["healthy"] is True
    assert "RAFT NO LEADER" in report["servers"][urls[1]]["answer"]
    assert "refused" in report["servers"][urls[2]]["answer"].lower()
    # the request carried the apiserver's etcd client certificate (CN kubernetes)
    assert seen[0][0] == "/health"
    assert (("commonName", "kubernetes"),) in seen[0][1]


def test_two_of_three_healthy_is_quorum(modules, pki, servers):
    urls, _ = servers
    report = _module(modules, pki, [urls[0], urls[0] + "/", urls[2]]).etcd(timeout=2)
    assert (report["quorum"], report["healthy"]) == (True, 2)


def test_unmanaged_etcd_uses_the_control_planes_certificate(modules, pki, servers):
    urls, _ = servers
    report = _module(modules, pki, urls[:1], managed=False).etcd(timeout=2)
    assert report["quorum"] is True


def test_without_a_client_certificate_nothing_is_asked(modules, tmp_path, servers):
    urls, seen = servers
    report = _module(modules, tmp_path, urls).etcd()
    assert report["quorum"] is None and report["servers"] == {}
    assert report["comment"].startswith("not checked: no etcd client certificate yet")
    assert seen == []


def test_managed_etcd_with_pki_source_salt_presents_etcds_own_certificate(modules, pki, servers):
    urls, seen = servers
    report = _module(modules, pki, urls[:1], source="salt").etcd(timeout=2)
    assert (report["quorum"], report["healthy"], report["total"]) == (True, 1, 1)
    assert (("commonName", "etcd"),) in seen[0][1]


def test_unmanaged_etcd_with_pki_source_salt_uses_the_control_planes_certificate(
    modules, pki, servers
):
    urls, seen = servers
    report = _module(modules, pki, urls[:1], managed=False, source="salt").etcd(timeout=2)
    assert report["quorum"] is True
    assert (("commonName", "kubernetes"),) in seen[0][1]


def test_with_pki_source_salt_the_apiservers_certificate_alone_is_not_etcds(
    modules, tmp_path, pki, servers
):
    """A managed etcd's directory with only the seed's files: etcd.pem is what is missing."""
    urls, seen = servers
    for name in FILES:
        (tmp_path / name).write_text((pki / name).read_text())
    report = _module(modules, tmp_path, urls, source="salt").etcd()
    assert report["quorum"] is None and report["servers"] == {}
    assert report["comment"].startswith("not checked: no etcd client certificate yet")
    assert str(tmp_path / "etcd.pem") in report["comment"]
    assert seen == []
