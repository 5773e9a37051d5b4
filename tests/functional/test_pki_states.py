"""
The pki states (pki:source salt) run for real through Salt's loaders, no
daemons: one hardway controller with a managed etcd, its PKI and etcd
directories in a temporary directory, its pillar what the master's
ext_pillar k8s_pki gives (made here by that ext_pillar with Salt's x509).
Every certificate is checked with cryptography: it chains to the CA, its
subject and key usages are the signing policy's, its key matches and is
root-only; the kubeconfigs embed them. Every key is the controller's own but
the service-account signing key, the cluster's one from the master, so that
a token one controller signs verifies with another's service-account.pem.
test=True predicts the apply, a second apply changes nothing, a VIP change
re-issues the apiserver certificate only, a certificate near expiry is
re-issued, a new service-account key re-issues service-account.pem only, a
new CA re-issues them all, loosened modes are tightened, and a symbolic link
in a PKI directory stops the run without anything written through it. No
state return holds a private key or the encryption key.
"""

import datetime
import json
import os
import shutil
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.functional import pki_support as ps

HARDWAY_SANS = [
    "IP:10.32.0.1",
    "IP:10.240.0.10",
    "IP:10.240.0.11",
    "IP:10.240.0.12",
    "IP:10.240.0.13",
    "IP:127.0.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "DNS:k8s-controller",
    "DNS:k8s-controller-1",
    "DNS:k8s-controller-2",
    "DNS:k8s-controller-3",
]
# file -> (CN, O, extended key usages)
EXPECTED = {
    "kubernetes.pem": ("kubernetes", "Kubernetes", {"serverAuth", "clientAuth"}),
    "apiserver-kubelet-client.pem": ("kubernetes", "Kubernetes", {"clientAuth"}),
    "service-account.pem": ("service-accounts", "Kubernetes", {"clientAuth"}),
    "admin.pem": ("admin", "system:masters", {"clientAuth"}),
    "kube-controller-manager.pem": (
        "system:kube-controller-manager",
        "system:kube-controller-manager",
        {"clientAuth"},
    ),
    "kube-scheduler.pem": ("system:kube-scheduler", "system:kube-scheduler", {"clientAuth"}),
    "etcd.pem": ("etcd", "Kubernetes", {"serverAuth", "clientAuth"}),
}
KUBECONFIG_USERS = {
    "admin": "admin",
    "kube-controller-manager": "system:kube-controller-manager",
    "kube-scheduler": "system:kube-scheduler",
}
CERT_ID = "k8s_control_plane-pki-x509-certificate_managed-{}"
KUBECONFIG_ID = "k8s_control_plane-pki-k8s_pki-kubeconfig_managed-{}.kubeconfig"
# The cluster's one service-account signing key: from the master's pillar, not made here.
SA_KEY = "service-account-key.pem"
SA_KEY_ID = "k8s_control_plane-pki-file-managed-service-account-key.pem"


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _cert_path(controller, name):
    return (controller.etcd_dir if name == "etcd.pem" else controller.pki_dir) / name


def _serials(controller):
    return {n: ps.load_cert(_cert_path(controller, n)).serial_number for n in EXPECTED}


def _leaks(texts, output):
    """The pieces of ``texts`` found in ``output``: PEM body lines, 48-character runs."""
    found = []
    for text in texts:
        lines = [ln for ln in text.splitlines() if len(ln) >= 16 and not ln.startswith("-----")]
        for line in lines:
            pieces = (
                [line] if len(line) <= 64 else [line[i : i + 48] for i in range(0, len(line), 48)]
            )
            found += [p for p in pieces if len(p) >= 16 and p in output]
    return found


@pytest.fixture(scope="module")
def master_dir(tmp_path_factory):
    """The master's k8s_pki directory (what its ext_pillar keeps)."""
    return tmp_path_factory.mktemp("master-pki")


@pytest.fixture(scope="module")
def given(master_dir):
    """What the master's ext_pillar k8s_pki gives k8s-controller-1 (a CA made once)."""
    return ps.master_pillar(master_dir)


@pytest.fixture(scope="module")
def applied(tmp_path_factory, given):
    """A controller predicted (test=True), applied, then applied again; the returns kept."""
    controller = ps.Controller(tmp_path_factory.mktemp("applied"), given)
    controller.runs = {"predicted": controller.apply(test=True)}
    controller.after_test = [p for p in (controller.pki_dir, controller.etcd_dir) if p.exists()]
    controller.runs["applied"] = controller.apply()
    controller.runs["again"] = controller.apply()
    return controller


# --------------------------------------------------------------------------
# A fresh controller: predict, apply, apply again
# --------------------------------------------------------------------------


def test_test_mode_on_a_fresh_controller_predicts_and_creates_nothing(applied):
    predicted, done = applied.runs["predicted"], applied.runs["applied"]
    assert ps.failed(predicted) == {}
    for value in predicted.values():
        if value["changes"]:
            assert value["result"] is None, value
    assert applied.after_test == []  # neither directory was made
    assert ps.changed_ids(predicted) == ps.changed_ids(done)
    # every planned file is predicted: 2 directories, ca.pem and ca-key.pem in each,
    # ca-signer.pem, the master's service-account key, 6 keys made here, 7 certificates,
    # 3 kubeconfigs and the encryption config
    assert len(ps.changed_ids(predicted)) == 2 + 4 + 1 + 1 + 6 + 7 + 3 + 1
    assert SA_KEY_ID in ps.changed_ids(predicted)


def test_apply_then_apply_again_changes_nothing(applied):
    done, again = applied.runs["applied"], applied.runs["again"]
    assert ps.failed(done) == {}
    assert all(v["result"] is True for v in done.values())
    assert ps.changed_ids(again) == set()
    assert all(v["result"] is True for v in again.values()), ps.failed(again)
    assert set(ps.by_id(again)) == set(ps.by_id(done))


def test_a_converged_file_skips_its_x509_state(applied):
    """
    The re-run's keys and certificates are found as planned by k8s_pki.current (their
    ``unless``), so the x509 states' own check (a nested state.single per file) is skipped;
    on the fresh run none was skipped.
    """
    x509_ids = {
        ps.state_id(e)
        for e in applied.minion.modules["k8s_pki.plan"]()
        if e["kind"] in ("key", "certificate")
    }
    again, done = ps.by_id(applied.runs["again"]), ps.by_id(applied.runs["applied"])
    # 6 keys made here and 7 certificates; the service-account key is a file from pillar
    assert len(x509_ids) == 6 + 7
    assert SA_KEY_ID not in x509_ids
    assert [r["comment"] for r in again[SA_KEY_ID]] == [
        f"File {applied.pki_dir / SA_KEY} is in the correct state"
    ]
    for sid in x509_ids:
        assert [r["comment"] for r in again[sid]] == ["unless condition is true"], again[sid]
        assert "unless condition is true" not in [r["comment"] for r in done[sid]], done[sid]
    current = applied.minion.modules["k8s_pki.current"]
    assert current(str(applied.pki_dir / "kubernetes.pem")) is True
    assert current(str(applied.pki_dir / "encryption-config.yaml")) is False  # not x509's
    assert current("/nonexistent/kubernetes.pem") is False


def test_the_planned_states_are_the_ones_that_ran(applied):
    plan = applied.minion.modules["k8s_pki.plan"]()
    ids = set(ps.by_id(applied.runs["applied"]))
    for entry in plan:
        sid = ps.state_id(entry)
        if entry["kind"] == "directory":
            assert sid in ids
            assert sid.replace("-file-directory-", "-k8s_pki-no_symlinks-") in ids
        else:
            assert sid in ids, sid


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_certificate_chains_to_the_ca(applied, given, name):
    ca_pem = given["k8s_control_plane"]["secrets"]["ca.pem"]
    assert (applied.pki_dir / "ca.pem").read_text() == ca_pem
    assert (applied.etcd_dir / "ca.pem").read_text() == ca_pem
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    cert = ps.load_cert(_cert_path(applied, name))
    cert.verify_directly_issued_by(ca)
    assert cert.issuer == ca.subject


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_subject_and_key_usages_are_the_policy(applied, name):
    cn, org, usages = EXPECTED[name]
    cert = ps.load_cert(_cert_path(applied, name))
    assert ps.subject(cert) == {"CN": cn, "O": org}
    assert len(cert.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)) == 1
    assert ps.ekus(cert) == usages
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=364) < lifetime <= datetime.timedelta(days=366)


def test_the_apiserver_sans_are_exact(applied):
    cert = ps.load_cert(applied.pki_dir / "kubernetes.pem")
    assert ps.sans(cert) == HARDWAY_SANS
    etcd = ps.load_cert(applied.etcd_dir / "etcd.pem")
    assert ps.sans(etcd) == [
        "IP:10.240.0.11",
        "IP:127.0.0.1",
        "DNS:k8s-controller-1",
        "DNS:localhost",
    ]
    for name in EXPECTED:
        if name not in ("kubernetes.pem", "etcd.pem"):
            assert ps.sans(ps.load_cert(_cert_path(applied, name))) == [], name


def test_private_keys_match_their_certificates_and_are_root_only(applied, given):
    assert _mode(applied.pki_dir) == 0o700 and _mode(applied.etcd_dir) == 0o700
    for name in EXPECTED:
        cert_path = _cert_path(applied, name)
        key_path = cert_path.with_name(name.replace(".pem", "-key.pem"))
        key = ps.load_key(key_path)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        assert ps.public_der(key.public_key()) == ps.public_der(
            ps.load_cert(cert_path).public_key()
        )
        assert _mode(key_path) == 0o600, key_path
        assert _mode(cert_path) == 0o644, cert_path
    # every key is its own (made on this controller, none shared) but the service-account
    # key: the cluster's one, as the master gives it
    keys = [*sorted(applied.pki_dir.glob("*-key.pem")), applied.etcd_dir / "etcd-key.pem"]
    values = {ps.load_key(path).private_numbers().private_value for path in keys}
    assert len(keys) == len(values) == 8
    secrets = given["k8s_control_plane"]["secrets"]
    assert (applied.pki_dir / SA_KEY).read_text() == secrets[SA_KEY]
    assert _mode(applied.pki_dir / SA_KEY) == 0o600
    assert (applied.pki_dir / "ca-key.pem").read_text() == secrets["ca-key.pem"]
    assert _mode(applied.pki_dir / "ca-key.pem") == 0o600
    assert _mode(applied.pki_dir / "ca.pem") == 0o644
    assert _mode(applied.etcd_dir / "ca.pem") == 0o644
    assert (applied.etcd_dir / "ca-key.pem").read_text() == secrets["ca-key.pem"]
    assert _mode(applied.etcd_dir / "ca-key.pem") == 0o600
    config = applied.pki_dir / "encryption-config.yaml"
    assert _mode(config) == 0o600
    [key1] = given["k8s_control_plane"]["secrets"]["encryption_keys"]
    assert f"- name: key1\n              secret: {key1['secret']}\n" in config.read_text()
    # nothing else in the two directories
    assert sorted(p.name for p in applied.etcd_dir.iterdir()) == [
        "ca-key.pem",  # etcd's own copy of the CA, to sign etcd.pem from (pki.etcd)
        "ca.pem",
        "etcd-key.pem",
        "etcd.pem",
    ]
    # ca.pem, ca-key.pem, ca-signer.pem, 6 keys, 6 certificates, 3 kubeconfigs, the config
    assert len(list(applied.pki_dir.iterdir())) == 3 + 6 + 6 + 3 + 1
    # one CA: the signer is ca.pem itself
    assert (applied.pki_dir / "ca-signer.pem").read_text() == secrets["ca.pem"]
    assert _mode(applied.pki_dir / "ca-signer.pem") == 0o644


@pytest.mark.parametrize("user", sorted(KUBECONFIG_USERS))
def test_kubeconfigs_embed_the_ca_certificate_and_key(applied, user):
    path = applied.pki_dir / f"{user}.kubeconfig"
    assert _mode(path) == 0o600
    doc, server, ca, cert, key = ps.kubeconfig_parts(path)
    assert server == "https://127.0.0.1:6443"
    assert ca == (applied.pki_dir / "ca.pem").read_text()
    assert cert == (applied.pki_dir / f"{user}.pem").read_text()
    assert key == (applied.pki_dir / f"{user}-key.pem").read_text()
    assert doc["clusters"][0]["name"] == "kubernetes"
    assert doc["users"][0]["name"] == KUBECONFIG_USERS[user]
    assert ps.subject(ps.load_cert(applied.pki_dir / f"{user}.pem"))["CN"] == KUBECONFIG_USERS[user]
    assert doc["contexts"][0]["context"] == {
        "cluster": "kubernetes",
        "user": KUBECONFIG_USERS[user],
    }


def test_no_state_return_holds_a_secret(applied, given):
    texts = applied.secret_texts()
    # the encryption key, 8 private keys and etcd's copy of the CA key, as PEM and as base64
    assert len(texts) == 1 + 2 * 9
    assert given["k8s_control_plane"]["secrets"][SA_KEY] in texts
    for run, ret in applied.runs.items():
        assert _leaks(texts, repr(ret)) == [], run


def test_the_module_reports_every_certificate_sound(applied):
    report = applied.minion.modules["k8s_pki.certificates"]()
    assert set(report) == {
        str(applied.pki_dir / "ca.pem"),
        str(applied.etcd_dir / "ca.pem"),
        *(str(_cert_path(applied, n)) for n in EXPECTED),
    }
    for name in EXPECTED:
        found = report[str(_cert_path(applied, name))]
        assert found["signed_by_ca"] is True, name
        assert found["key_matches"] is True, name
        assert found["days_left"] >= 364
    assert report[str(applied.pki_dir / "kubernetes.pem")]["sans_as_planned"] is True
    assert report[str(applied.etcd_dir / "etcd.pem")]["sans_as_planned"] is True
    assert _leaks(applied.secret_texts(), repr(report)) == []


def test_trust_names_the_one_ca_every_file_holds_and_that_signed_everything(applied):
    """k8s_pki.trust, what a CA rotation checks: fingerprints only, one CA everywhere here."""
    seen = applied.minion.modules["k8s_pki.trust"]()
    prints = {tuple(v) for v in seen["cas"].values()}
    assert len(prints) == 1 and len(next(iter(prints))) == 1, seen["cas"]
    ((ca,),) = prints
    assert str(applied.pki_dir / "ca.pem") in seen["cas"]
    assert str(applied.etcd_dir / "ca.pem") in seen["cas"]
    assert f"{applied.pki_dir / 'admin.kubeconfig'} (its CA)" in seen["cas"]
    assert seen["signed_by"][str(applied.pki_dir / "kubernetes.pem")] == ca
    assert seen["signed_by"][f"{applied.pki_dir / 'admin.kubeconfig'} (its client)"] == ca
    assert set(seen["signed_by"].values()) == {ca}
    # the controller-manager's signing CA, self-signed: it maps to itself
    assert seen["signed_by"][str(applied.pki_dir / "ca-signer.pem")] == ca
    assert _leaks(applied.secret_texts(), repr(seen)) == []


SIGNER_ID = "k8s_control_plane-pki-ca-k8s_pki-signer_managed-ca-signer.pem"


def test_the_signer_is_the_one_ca_that_signs_in_every_phase_of_a_rotation(
    applied, given, master_dir, tmp_path
):
    """
    ca.pem is a bundle of two CAs during a CA rotation (old + new in ``trust``, new + old in
    ``sign``); kube-controller-manager's --cluster-signing-cert-file takes exactly one
    (docs/differences.md 15): ca-signer.pem is the one whose key is ca-key.pem, predicted
    in test mode, never a key in the output.
    """
    master = tmp_path / "master"
    shutil.copytree(master_dir, master)
    folder = next(p for p in (master / "k8s_control_plane").iterdir() if p.is_dir())
    controller = ps.Controller(tmp_path / "controller", given).seed_from(applied)
    old = ps.load_cert(applied.pki_dir / "ca.pem")
    seen = {}
    for phase in ("trust", "sign"):
        (folder / "ca_rotation.json").write_text(
            json.dumps({"phase": phase, "label": "t", "started": "2026-12-06T00:00:00+00:00"})
        )
        controller.given = ps.master_pillar(master)
        controller.reconfigure({})
        predicted = controller.apply(test=True)
        done = controller.apply()
        assert ps.failed(predicted) == {} and ps.failed(done) == {}
        assert (SIGNER_ID in ps.changed_ids(predicted)) == (SIGNER_ID in ps.changed_ids(done))
        bundle = x509.load_pem_x509_certificates((controller.pki_dir / "ca.pem").read_bytes())
        signers = x509.load_pem_x509_certificates(
            (controller.pki_dir / "ca-signer.pem").read_bytes()
        )
        assert len(bundle) == 2 and len(signers) == 1, phase
        key = ps.load_key(controller.pki_dir / "ca-key.pem")
        assert ps.public_der(signers[0].public_key()) == ps.public_der(key.public_key())
        seen[phase] = (signers[0], SIGNER_ID in ps.changed_ids(done))
        text = repr(predicted) + repr(done)
        assert _leaks(controller.secret_texts(), text) == []
    assert seen["trust"] == (old, False)  # the old CA still signs: nothing to change
    assert seen["sign"][0] == bundle[0] != old and seen["sign"][1]  # the new one signs


def test_a_ca_key_that_matches_no_certificate_of_ca_pem_changes_nothing(applied, given, tmp_path):
    """The validation refuses it before any PKI state runs (the signer could not sign)."""
    controller = ps.Controller(tmp_path / "controller", given).seed_from(applied)
    signer = (controller.pki_dir / "ca-signer.pem").read_text()
    other = ps.master_pillar(tmp_path / "other-master")["k8s_control_plane"]["secrets"]
    controller.reconfigure({"secrets": {"ca-key.pem": other["ca-key.pem"]}})
    done = controller.apply()
    failed = {v["__id__"]: v["comment"] for v in ps.failed(done).values()}
    assert "secrets:ca-key.pem: is not the key of secrets:ca.pem" in "\n".join(failed.values())
    assert ps.changed_ids(done) == set()
    assert (controller.pki_dir / "ca-signer.pem").read_text() == signer
    assert other["ca-key.pem"].splitlines()[1] not in repr(done)


@pytest.mark.parametrize(
    "service", ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
)
def test_watch_names_states_that_ran(applied, service):
    ran = {(v["__id__"], v["__sls__"]) for v in applied.runs["applied"].values()}
    ids = {sid for sid, _ in ran}
    requisites = applied.minion.modules["k8s_pki.watch"](service)
    assert requisites
    for requisite in requisites:
        ((module, sid),) = requisite.items()
        assert sid in ids, requisite
        assert sid.startswith(f"k8s_control_plane-pki-{'etcd-' if service == 'etcd' else ''}")
        assert f"-{module}-" in sid
    if service == "kube-scheduler":
        assert requisites == [{"k8s_pki": KUBECONFIG_ID.format("kube-scheduler")}]


# --------------------------------------------------------------------------
# The cluster's one service-account key
# --------------------------------------------------------------------------


def _es256(key, payload):
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


def test_a_token_one_controller_signs_verifies_on_another(applied, master_dir, tmp_path):
    """
    Another controller of the cluster, given its pillar by the same master, places the same
    service-account key and issues its own service-account.pem of it: a ServiceAccount token
    (ES256) either apiserver signs verifies with the other's certificate. Its other keys and
    every certificate are its own.
    """
    given = ps.master_pillar(master_dir, "k8s-controller-2")
    other = ps.Controller(tmp_path, given, minion_id="k8s-controller-2")
    done = other.apply()
    assert ps.failed(done) == {}
    assert SA_KEY_ID in ps.changed_ids(done)
    sa_key = (applied.pki_dir / SA_KEY).read_text()
    assert (other.pki_dir / SA_KEY).read_text() == sa_key
    assert _mode(other.pki_dir / SA_KEY) == 0o600
    mine = ps.load_cert(applied.pki_dir / "service-account.pem")
    theirs = ps.load_cert(other.pki_dir / "service-account.pem")
    assert mine.serial_number != theirs.serial_number  # issued on each controller
    assert ps.public_der(mine.public_key()) == ps.public_der(theirs.public_key())
    assert ps.subject(theirs) == {"CN": "service-accounts", "O": "Kubernetes"}
    theirs.verify_directly_issued_by(ps.load_cert(applied.pki_dir / "ca.pem"))
    payload = b'{"alg":"ES256"}.{"sub":"system:serviceaccount:default:default"}'
    for signer, verifier in ((applied, theirs), (other, mine)):
        signature = _es256(ps.load_key(signer.pki_dir / SA_KEY), payload)
        verifier.public_key().verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    # every other key is the controller's own
    for name in sorted(p.name for p in applied.pki_dir.glob("*-key.pem")):
        if name not in (SA_KEY, "ca-key.pem"):
            assert (other.pki_dir / name).read_text() != (applied.pki_dir / name).read_text()
    assert (other.etcd_dir / "etcd-key.pem").read_text() != (
        applied.etcd_dir / "etcd-key.pem"
    ).read_text()
    assert ps.sans(ps.load_cert(other.etcd_dir / "etcd.pem"))[0] == "IP:10.240.0.12"


def test_a_new_service_account_key_reissues_service_account_pem_only(applied, given, tmp_path):
    """
    The pillar's service-account key replaced (an operator's own, say): the file is rewritten
    and service-account.pem re-issued of it; nothing else changes, and no return shows it.
    """
    controller = ps.Controller(tmp_path, given).seed_from(applied)
    before = _serials(controller)
    mods = ps.x509_module()
    new_key = mods["x509.create_private_key"](algo="ec", keysize=256)
    controller.reconfigure({"secrets": {SA_KEY: new_key}})
    done = controller.apply()
    assert ps.failed(done) == {}
    assert ps.changed_ids(done) == {SA_KEY_ID, CERT_ID.format("service-account.pem")}
    assert (controller.pki_dir / SA_KEY).read_text() == new_key
    assert _mode(controller.pki_dir / SA_KEY) == 0o600
    cert = ps.load_cert(controller.pki_dir / "service-account.pem")
    assert ps.public_der(cert.public_key()) == ps.public_der(
        ps.load_key(controller.pki_dir / SA_KEY).public_key()
    )
    cert.verify_directly_issued_by(ps.load_cert(controller.pki_dir / "ca.pem"))
    after = _serials(controller)
    assert after["service-account.pem"] != before["service-account.pem"]
    assert {n: s for n, s in after.items() if n != "service-account.pem"} == {
        n: s for n, s in before.items() if n != "service-account.pem"
    }
    texts = [*controller.secret_texts(), given["k8s_control_plane"]["secrets"][SA_KEY]]
    assert _leaks(texts, repr(done)) == []
    assert ps.changed_ids(controller.apply()) == set()


# --------------------------------------------------------------------------
# Changes after the first apply
# --------------------------------------------------------------------------


def test_a_vip_change_reissues_only_the_apiserver_certificate(applied, given, tmp_path):
    controller = ps.Controller(tmp_path, given).seed_from(applied)
    before = _serials(controller)
    key_before = (controller.pki_dir / "kubernetes-key.pem").read_text()
    controller.reconfigure({"vip": {"address": "10.240.0.20"}})
    wanted = {CERT_ID.format("kubernetes.pem")}
    predicted = controller.apply(test=True)
    assert ps.failed(predicted) == {}
    assert ps.changed_ids(predicted) == wanted
    assert {v["result"] for v in predicted.values() if v["changes"]} == {None}
    assert _serials(controller) == before  # test mode wrote nothing
    done = controller.apply()
    assert ps.failed(done) == {}
    assert ps.changed_ids(done) == wanted
    after = _serials(controller)
    assert after["kubernetes.pem"] != before["kubernetes.pem"]
    assert {n: s for n, s in after.items() if n != "kubernetes.pem"} == {
        n: s for n, s in before.items() if n != "kubernetes.pem"
    }
    sans = ps.sans(ps.load_cert(controller.pki_dir / "kubernetes.pem"))
    assert sans == [s.replace("10.240.0.10", "10.240.0.20") for s in HARDWAY_SANS]
    # the same key, still matching, still root-only
    assert (controller.pki_dir / "kubernetes-key.pem").read_text() == key_before
    assert _mode(controller.pki_dir / "kubernetes-key.pem") == 0o600
    ps.load_cert(controller.pki_dir / "kubernetes.pem").verify_directly_issued_by(
        ps.load_cert(controller.pki_dir / "ca.pem")
    )
    assert _leaks(controller.secret_texts(), repr(predicted) + repr(done)) == []


def test_a_certificate_near_expiry_is_reissued(applied, given, tmp_path):
    controller = ps.Controller(tmp_path, given).seed_from(applied)
    before = _serials(controller)
    secrets = given["k8s_control_plane"]["secrets"]
    mods = ps.x509_module({"x509_signing_policies": given["x509_signing_policies"]})
    short = mods["x509.create_certificate"](
        signing_private_key=secrets["ca-key.pem"],
        signing_cert=secrets["ca.pem"],
        private_key=str(controller.pki_dir / "admin-key.pem"),
        signing_policy="k8s_control_plane-hardway-admin",
        days_valid=2,  # below pki:renew_before_days (30)
    )
    (controller.pki_dir / "admin.pem").write_text(short)
    expiring = ps.load_cert(controller.pki_dir / "admin.pem").serial_number
    wanted = {CERT_ID.format("admin.pem"), KUBECONFIG_ID.format("admin")}
    predicted = controller.apply(test=True)
    assert ps.failed(predicted) == {}
    assert ps.changed_ids(predicted) == wanted
    assert ps.load_cert(controller.pki_dir / "admin.pem").serial_number == expiring
    done = controller.apply()
    assert ps.failed(done) == {}
    assert ps.changed_ids(done) == wanted
    cert = ps.load_cert(controller.pki_dir / "admin.pem")
    assert cert.serial_number not in (expiring, before["admin.pem"])
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert left > datetime.timedelta(days=360)
    assert ps.subject(cert) == {"CN": "admin", "O": "system:masters"}
    after = _serials(controller)
    assert {n: s for n, s in after.items() if n != "admin.pem"} == {
        n: s for n, s in before.items() if n != "admin.pem"
    }
    # the kubeconfig now embeds the new certificate
    _, _, _, embedded, _ = ps.kubeconfig_parts(controller.pki_dir / "admin.kubeconfig")
    assert embedded == (controller.pki_dir / "admin.pem").read_text()


def test_loosened_modes_are_made_root_only_again(applied, given, tmp_path):
    controller = ps.Controller(tmp_path, given).seed_from(applied)
    loosened = {
        controller.pki_dir: 0o700,
        controller.pki_dir / "kubernetes-key.pem": 0o600,
        controller.pki_dir / "ca-key.pem": 0o600,
        controller.pki_dir / SA_KEY: 0o600,
        controller.pki_dir / "admin.kubeconfig": 0o600,
        controller.pki_dir / "encryption-config.yaml": 0o600,
        controller.etcd_dir / "etcd-key.pem": 0o600,
    }
    contents = {p: p.read_bytes() for p in loosened if p.is_file()}
    for path in loosened:
        path.chmod(0o755 if path.is_dir() else 0o644)
    predicted = controller.apply(test=True)
    assert ps.failed(predicted) == {}
    assert len(ps.changed_ids(predicted)) == len(loosened)
    assert all(_mode(p) != m for p, m in loosened.items())
    done = controller.apply()
    assert ps.failed(done) == {}
    assert ps.changed_ids(done) == ps.changed_ids(predicted)
    assert {p: _mode(p) for p in loosened} == loosened
    # the modes changed, not the contents: no key, certificate or kubeconfig re-made
    assert {p: p.read_bytes() for p in contents} == contents
    assert _leaks(controller.secret_texts(), repr(predicted) + repr(done)) == []


def test_renew_before_days_beyond_the_remaining_days_reissues_every_certificate(
    applied, given, tmp_path
):
    controller = ps.Controller(tmp_path, given).seed_from(applied)
    before = _serials(controller)
    controller.reconfigure({"pki": {"days_valid": 3650, "renew_before_days": 400}})
    done = controller.apply()
    assert ps.failed(done) == {}
    assert {CERT_ID.format(n) for n in EXPECTED if n != "etcd.pem"} <= ps.changed_ids(done)
    assert "k8s_control_plane-pki-etcd-x509-certificate_managed-etcd.pem" in ps.changed_ids(done)
    assert {KUBECONFIG_ID.format(u) for u in KUBECONFIG_USERS} <= ps.changed_ids(done)
    after = _serials(controller)
    assert all(after[n] != before[n] for n in EXPECTED), (before, after)
    for user in KUBECONFIG_USERS:
        _, _, _, cert, _ = ps.kubeconfig_parts(controller.pki_dir / f"{user}.kubeconfig")
        assert cert == (controller.pki_dir / f"{user}.pem").read_text()
    for name in EXPECTED:
        cert = ps.load_cert(_cert_path(controller, name))
        assert cert.not_valid_after_utc - cert.not_valid_before_utc > datetime.timedelta(days=3000)
    assert ps.changed_ids(controller.apply()) == set()


def test_test_mode_predicts_the_kubeconfigs_rebuilt_after_a_renewal(applied, given, tmp_path):
    controller = ps.Controller(tmp_path, given).seed_from(applied)
    controller.reconfigure({"pki": {"days_valid": 3650, "renew_before_days": 400}})
    predicted = controller.apply(test=True)
    done = controller.apply()
    assert {KUBECONFIG_ID.format(u) for u in KUBECONFIG_USERS} <= ps.changed_ids(done)
    assert ps.changed_ids(predicted) == ps.changed_ids(done)


def test_a_new_ca_reissues_every_certificate(applied, given, tmp_path):
    """The master's CA replaced: every certificate chains to the new one after one apply."""
    controller = ps.Controller(tmp_path, given).seed_from(applied)
    before = _serials(controller)
    controller.given = ps.master_pillar(tmp_path / "new-master")
    controller.reconfigure({})
    done = controller.apply()
    assert ps.failed(done) == {}
    # the new master's service-account key too, and service-account.pem of it
    new_key = controller.given["k8s_control_plane"]["secrets"][SA_KEY]
    assert new_key != given["k8s_control_plane"]["secrets"][SA_KEY]
    assert (controller.pki_dir / SA_KEY).read_text() == new_key
    assert ps.public_der(
        ps.load_cert(controller.pki_dir / "service-account.pem").public_key()
    ) == ps.public_der(ps.load_key(controller.pki_dir / SA_KEY).public_key())
    ca = ps.load_cert(controller.pki_dir / "ca.pem")
    assert (controller.etcd_dir / "ca.pem").read_text() == (
        controller.pki_dir / "ca.pem"
    ).read_text()
    for name in EXPECTED:
        cert = ps.load_cert(_cert_path(controller, name))
        cert.verify_directly_issued_by(ca)
        assert cert.serial_number != before[name]
    for user in KUBECONFIG_USERS:
        _, _, embedded_ca, cert, _ = ps.kubeconfig_parts(controller.pki_dir / f"{user}.kubeconfig")
        assert embedded_ca == (controller.pki_dir / "ca.pem").read_text()
        assert cert == (controller.pki_dir / f"{user}.pem").read_text()


# --------------------------------------------------------------------------
# Symbolic links
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "name", "dangling"),
    [
        pytest.param("pki", "kubernetes-key.pem", False, id="key"),
        pytest.param("pki", "kubernetes.pem", False, id="certificate"),
        pytest.param("pki", "ca-key.pem", True, id="ca-key-dangling"),
        pytest.param("pki", SA_KEY, False, id="service-account-key"),
        pytest.param("pki", "admin.kubeconfig", False, id="kubeconfig"),
        pytest.param("pki", "encryption-config.yaml", False, id="encryption-config"),
        pytest.param("etcd", "etcd-key.pem", False, id="etcd-key"),
    ],
)
def test_a_symlink_in_a_pki_directory_stops_the_run(given, tmp_path, where, name, dangling):
    controller = ps.Controller(tmp_path / "controller", given)
    directory = controller.pki_dir if where == "pki" else controller.etcd_dir
    directory.mkdir(mode=0o700)
    outside = tmp_path / "outside" / "precious"
    outside.parent.mkdir()
    if not dangling:
        outside.write_text("precious\n")
        outside.chmod(0o644)
    link = directory / name
    link.symlink_to(outside)
    guard_suffix = "-k8s_pki-no_symlinks-" + str(directory).strip("/").replace("/", "_")
    # the guard fails in test mode too (pki.etcd's run is a full one: only the real apply there)
    for test in (True, False) if where == "pki" else (False,):
        ret = controller.apply(test=test)
        failed = ps.failed(ret)
        guard = [v for v in failed.values() if v["__id__"].endswith(guard_suffix)]
        assert len(guard) == 1, failed
        assert f"{link} -> {outside}" in guard[0]["comment"]
        assert guard[0]["changes"] == {}
        assert link.is_symlink()
        if dangling:
            assert not outside.exists()
        else:
            assert outside.read_text() == "precious\n"
            assert _mode(outside) == 0o644
        assert sorted(p.name for p in outside.parent.iterdir()) == (
            [] if dangling else ["precious"]
        )
        # nothing in the guarded directory was written
        assert [p.name for p in directory.iterdir()] == [name]


def test_a_symlinked_pki_directory_stops_the_run(given, tmp_path):
    controller = ps.Controller(tmp_path / "controller", given)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    outside.chmod(0o755)
    controller.pki_dir.symlink_to(outside)
    ret = controller.apply()
    guard = [v for v in ps.failed(ret).values() if "-pki-ca-k8s_pki-no_symlinks-" in v["__id__"]]
    assert len(guard) == 1
    assert f"{controller.pki_dir} -> {outside}" in guard[0]["comment"]
    assert list(outside.iterdir()) == []
    assert _mode(outside) == 0o755
    assert not ps.changed_ids(
        {k: v for k, v in ret.items() if not v["__id__"].startswith("k8s_control_plane-pki-etcd-")}
    )


def test_once_the_link_is_removed_the_next_run_writes_a_regular_file(given, tmp_path):
    controller = ps.Controller(tmp_path / "controller", given)
    controller.pki_dir.mkdir(mode=0o700)
    outside = tmp_path / "outside.pem"
    outside.write_text("precious\n")
    link = controller.pki_dir / "kubernetes-key.pem"
    link.symlink_to(outside)
    assert ps.failed(controller.apply())
    link.unlink()
    ret = controller.apply()
    assert ps.failed(ret) == {}
    assert not link.is_symlink() and _mode(link) == 0o600
    assert outside.read_text() == "precious\n"
    ps.load_key(link)
