"""
A throwaway PKI for a cluster's pillar: the CA and every certificate, key,
kubeconfig and the encryption key the seed's files need, as the
``k8s_control_plane:secrets`` mapping. Used by the tests, ``make render``
(when a cluster has no secrets file) and the lab.
"""

import base64
import datetime
import ipaddress
import os

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.files import write_file

API_DNS = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster",
    "kubernetes.default.svc.cluster.local",
)


def _key():
    # P-256: fast to generate, accepted by Go's TLS stack, keepalived and haproxy.
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(cn, org=None):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(ca_cert, ca_key, cn, org=None, sans=(), server=True, days=365, window=None):
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    start, end = window or (
        now - datetime.timedelta(minutes=5),
        now + datetime.timedelta(days=days),
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] * server)
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        names = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _kubeconfig(cluster, server, ca_pem, cert, key, user):
    """The product's kubeconfig (the utils' kubeconfig_text), with these credentials."""
    from tests.support.cluster import utils_package

    text = utils_package().pki.kubeconfig_text
    return text(cluster, server, ca_pem, _pem_cert(cert), _pem_key(key), user)


# Faults make_secrets can build in, for the corpus of invalid pillars (tests/corpus/):
# each breaks one thing the validation checks, and nothing else.
FAULTS = (
    "garbage-certificate",  # kubernetes.pem: PEM armour around random bytes
    "kubernetes-key-mismatch",  # kubernetes-key.pem: the key of no certificate
    "service-account-key-mismatch",  # service-account-key.pem: the key of no certificate
    "ca-key-mismatch",  # ca-key.pem: another CA's key
    "foreign-ca",  # every certificate signed by another CA of the same name
    "expired",  # kubernetes.pem: valid 2019-01-01 - 2020-01-01
    "not-yet-valid",  # kubernetes.pem: valid from 2099-01-01
    "sans-without-vip",  # kubernetes.pem: no VIP among its SANs
    "kubeconfig-key-mismatch",  # admin.kubeconfig: a client key of no certificate
    "kubeconfig-foreign-ca",  # kube-scheduler.kubeconfig: CA and client certificate of another CA
)
_UTC = datetime.UTC


def _ca(ca_name, key):
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )


def make_secrets(
    addresses, vip, service_ip="10.32.0.1", names=(), server="https://127.0.0.1:6443", fault=None
):
    """
    Return the ``k8s_control_plane:secrets`` mapping for a cluster whose
    controllers have ``addresses`` and the VIP ``vip``. ``fault`` (one of
    FAULTS) builds in one defect, for the tests of the validation.
    """
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; valid: {', '.join(FAULTS)}")
    # OpenSSL compares names case-insensitively: a CA named like the
    # "kubernetes" leaf would make that leaf look self-signed. Hence OU=CA.
    ca_name = x509.Name(
        [
            *_name("Kubernetes", "Kubernetes"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CA"),
        ]
    )
    ca_key = _key()
    ca_cert = _ca(ca_name, ca_key)
    ca_pem = _pem_cert(ca_cert)
    # The CA that signs the leaves: ca.pem's, unless the fault says another.
    signer = (ca_cert, ca_key)
    if fault == "foreign-ca":
        other_key = _key()
        signer = (_ca(ca_name, other_key), other_key)
    sans = [service_ip, vip, *addresses, "127.0.0.1", *API_DNS, *names]
    if fault == "sans-without-vip":
        sans.remove(vip)
    window = {
        "expired": (
            datetime.datetime(2019, 1, 1, tzinfo=_UTC),
            datetime.datetime(2020, 1, 1, tzinfo=_UTC),
        ),
        "not-yet-valid": (
            datetime.datetime(2099, 1, 1, tzinfo=_UTC),
            datetime.datetime(2100, 1, 1, tzinfo=_UTC),
        ),
    }.get(fault)
    api_cert, api_key = _issue(*signer, "kubernetes", "Kubernetes", sans, window=window)
    sa_cert, sa_key = _issue(*signer, "service-accounts", "Kubernetes", server=False)
    secrets = {
        "ca.pem": ca_pem,
        "ca-key.pem": _pem_key(_key() if fault == "ca-key-mismatch" else ca_key),
        "kubernetes.pem": _pem_cert(api_cert),
        "kubernetes-key.pem": _pem_key(_key() if fault == "kubernetes-key-mismatch" else api_key),
        "service-account.pem": _pem_cert(sa_cert),
        "service-account-key.pem": _pem_key(
            _key() if fault == "service-account-key-mismatch" else sa_key
        ),
    }
    if fault == "garbage-certificate":
        body = base64.encodebytes(os.urandom(300)).decode()
        secrets["kubernetes.pem"] = (
            f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"
        )
    for user, cn, org in (
        ("admin", "admin", "system:masters"),
        ("kube-controller-manager", "system:kube-controller-manager", None),
        ("kube-scheduler", "system:kube-scheduler", None),
    ):
        issuer, issuer_pem = signer, ca_pem
        if fault == "kubeconfig-foreign-ca" and user == "kube-scheduler":
            other_key = _key()
            other = _ca(_name("Another CA", "Another"), other_key)
            issuer, issuer_pem = (other, other_key), _pem_cert(other)
        cert, key = _issue(*issuer, cn, org or cn, server=False)
        if fault == "kubeconfig-key-mismatch" and user == "admin":
            key = _key()
        secrets[f"{user}.kubeconfig"] = _kubeconfig(
            "kubernetes-the-hard-way", server, issuer_pem, cert, key, cn
        )
    secrets["encryption_key"] = base64.b64encode(os.urandom(32)).decode()
    return secrets


def issue(secrets, cn, org=None, sans=(), server=True):
    """
    (certificate PEM, key PEM) of a new leaf signed by the CA of a
    make_secrets mapping, as Salt issues one with pki:source salt (etcd's own
    certificate, for instance).
    """
    ca_cert = x509.load_pem_x509_certificate(secrets["ca.pem"].encode())
    ca_key = serialization.load_pem_private_key(secrets["ca-key.pem"].encode(), password=None)
    cert, key = _issue(ca_cert, ca_key, cn, org, sans, server=server)
    return _pem_cert(cert), _pem_key(key)


def _ip(value):
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        return None


def secrets_for_cluster(cfg, fault=None):
    """
    make_secrets for a cluster's k8s_control_plane pillar, of any shape: what
    is not a usable address, id or CIDR is left out of the certificates (the
    validation reports it), so an invalid pillar still gets its secrets.
    """
    cfg = cfg if isinstance(cfg, dict) else {}
    controllers = cfg.get("controllers") if isinstance(cfg.get("controllers"), list) else []
    controllers = [c for c in controllers if isinstance(c, dict)]
    addresses = [a for a in (_ip(c.get("address")) for c in controllers) if a]
    vip = cfg.get("vip") if isinstance(cfg.get("vip"), dict) else {}
    hostname = vip.get("hostname") if isinstance(vip.get("hostname"), str) else None
    ids = [c["id"] for c in controllers if isinstance(c.get("id"), str) and c["id"].isprintable()]
    names = [*ids, hostname or "k8s-controller"]
    k8s = cfg.get("kubernetes") if isinstance(cfg.get("kubernetes"), dict) else {}
    try:
        service_ip = str(ipaddress.IPv4Network(str(k8s.get("service_cidr", "10.32.0.0/24")))[1])
    except (ValueError, IndexError):
        service_ip = "10.32.0.1"
    vip_address = _ip(vip.get("address")) or "127.0.0.1"
    return make_secrets(addresses, vip_address, service_ip=service_ip, names=names, fault=fault)


def secrets_for_cluster_file(path, fault=None):
    """make_secrets for the cluster described by a pillar file (plain YAML)."""
    with open(path, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    return secrets_for_cluster(
        (doc or {}).get("k8s_control_plane") if isinstance(doc, dict) else None, fault
    )


def write_secrets_sls(path, secrets, source="pillar"):
    """
    Write a secrets pillar file, 0600 from its first byte (an existing file
    too). It carries every certificate, so it also says ``pki:source: pillar``;
    ``source=None`` leaves pki:source to the cluster file.
    """
    doc = {"k8s_control_plane": {"secrets": secrets}}
    if source is not None:
        doc["k8s_control_plane"] = {"pki": {"source": source}, "secrets": secrets}
    text = yaml.dump(doc, Dumper=_BlockDumper)
    write_file(path, text, 0o600)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PEM, kubeconfigs) as literal blocks."""


_BlockDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)
