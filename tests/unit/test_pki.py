"""The throwaway PKI verifies with OpenSSL: every certificate chains to the CA."""

import base64
import shutil
import subprocess

import pytest
import yaml

from tests.support import pki

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def secrets():
    return pki.make_secrets(["10.240.0.11", "10.240.0.12"], "10.240.0.10", names=["k8s-controller"])


def _verify(tmp_path, secrets, cert_pem, purpose):
    (tmp_path / "ca.pem").write_text(secrets["ca.pem"])
    (tmp_path / "leaf.pem").write_text(cert_pem)
    return subprocess.run(
        ["openssl", "verify", "-purpose", purpose, "-CAfile", tmp_path / "ca.pem",
         tmp_path / "leaf.pem"],
        capture_output=True, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("purpose", ["sslserver", "sslclient"])
def test_api_certificate_chains_to_the_ca(tmp_path, secrets, purpose):
    check = _verify(tmp_path, secrets, secrets["kubernetes.pem"], purpose)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("user", ["admin", "kube-controller-manager", "kube-scheduler"])
def test_kubeconfig_client_certificates_chain_to_the_ca(tmp_path, secrets, user):
    doc = yaml.safe_load(secrets[f"{user}.kubeconfig"])
    cert = base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]).decode()
    check = _verify(tmp_path, secrets, cert, "sslclient")
    assert check.returncode == 0, check.stdout + check.stderr


def test_api_certificate_names_the_vip_and_the_controllers(tmp_path, secrets):
    (tmp_path / "api.pem").write_text(secrets["kubernetes.pem"])
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", tmp_path / "api.pem"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in ("10.240.0.10", "10.240.0.11", "10.240.0.12", "127.0.0.1", "10.32.0.1",
                 "DNS:kubernetes", "DNS:k8s-controller"):  # fmt: skip
        assert name in text
