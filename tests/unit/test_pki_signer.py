"""k8s_pki.signer_managed (_states/k8s_pki.py): kube-controller-manager's signing CA alone,
taken from the CA bundle the pillar gives (docs/differences.md 15), in test mode and for
real, and what it refuses."""

import datetime
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.cluster import REPO, load_file

BUNDLE, KEY = "k8s_control_plane:secrets:ca.pem", "k8s_control_plane:secrets:ca-key.pem"


def _ca(name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key


@pytest.fixture(scope="module")
def cas():
    return {"old": _ca("CA old"), "new": _ca("CA new")}


@pytest.fixture
def state(tmp_path):
    module = load_file(REPO / "_states" / "k8s_pki.py", "k8s_test_state_k8s_pki_signer")
    module.pillar = {}
    module.__opts__ = {"test": False}

    def pillar_get(key, default="", unmask=False):
        assert unmask, "Salt 3008 masks pillar.get's values unless unmask=True"
        return module.pillar.get(key, default)

    module.__salt__ = {"pillar.get": pillar_get}
    module.path = str(tmp_path / "ca-signer.pem")
    return module


def _run(state, bundle, key, test=False):
    state.pillar = {BUNDLE: bundle, KEY: key}
    state.__opts__["test"] = test
    return state.signer_managed(state.path, BUNDLE, KEY)


@pytest.mark.skipif(os.geteuid() != 0, reason="writes a root-owned file")
def test_each_phase_writes_the_ca_whose_key_signs_predicted_in_test_mode(state, cas):
    (old, old_key), (new, new_key) = cas["old"], cas["new"]
    phases = [("none", old, old_key, old), ("trust", old + new, old_key, old)]
    phases += [("sign", new + old, new_key, new), ("drop", new, new_key, new)]
    for phase, bundle, key, signer in phases:
        predicted = _run(state, bundle, key, test=True)
        done = _run(state, bundle, key)
        assert predicted["result"] is (None if done["changes"] else True), phase
        assert set(predicted["changes"]) == set(done["changes"]), phase
        assert done["result"] is True and Path(state.path).read_text() == signer, phase
        assert (phase in ("none", "sign")) == bool(done["changes"]), phase
        assert oct(os.stat(state.path).st_mode & 0o777) == "0o644"
        assert key.splitlines()[1] not in repr(predicted) + repr(done)
    assert _run(state, new, new_key)["changes"] == {}  # again: nothing


def test_a_key_of_no_certificate_in_the_bundle_fails_naming_the_pillar_keys(state, cas):
    (old, _), (new, new_key) = cas["old"], cas["new"]
    other_key = _ca("CA other")[1]
    ret = _run(state, old + new, other_key)
    assert ret["result"] is False and ret["changes"] == {}
    assert (
        ret["comment"]
        == f"No certificate in pillar {BUNDLE} matches the key {KEY}: the CA cannot sign"
    )
    assert not os.path.exists(state.path)
    assert _run(state, "", new_key)["comment"].endswith(f"no pillar {BUNDLE}")


def test_a_symlink_is_refused(state, cas, tmp_path):
    os.symlink(tmp_path / "elsewhere", state.path)
    ret = _run(state, *cas["old"])
    assert ret["result"] is False and "symbolic link" in ret["comment"]
    assert not (tmp_path / "elsewhere").exists()
