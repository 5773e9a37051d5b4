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


def _issue(ca_cert, ca_key, cn, org=None, sans=(), server=True, days=365):
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
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
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"certificate-authority-data": b64(ca_pem), "server": server},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(_pem_cert(cert)),
                    "client-key-data": b64(_pem_key(key)),
                },
            }
        ],
        "contexts": [{"name": "default", "context": {"cluster": cluster, "user": user}}],
        "current-context": "default",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def make_secrets(addresses, vip, service_ip="10.32.0.1", names=(), server="https://127.0.0.1:6443"):
    """
    Return the ``k8s_control_plane:secrets`` mapping for a cluster whose
    controllers have ``addresses`` and the VIP ``vip``.
    """
    ca_key = _key()
    now = datetime.datetime.now(datetime.UTC)
    # OpenSSL compares names case-insensitively: a CA named like the
    # "kubernetes" leaf would make that leaf look self-signed. Hence OU=CA.
    ca_name = x509.Name(
        [
            *_name("Kubernetes", "Kubernetes"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = _pem_cert(ca_cert)
    sans = [service_ip, vip, *addresses, "127.0.0.1", *API_DNS, *names]
    api_cert, api_key = _issue(ca_cert, ca_key, "kubernetes", "Kubernetes", sans)
    sa_cert, sa_key = _issue(ca_cert, ca_key, "service-accounts", "Kubernetes", server=False)
    secrets = {
        "ca.pem": ca_pem,
        "ca-key.pem": _pem_key(ca_key),
        "kubernetes.pem": _pem_cert(api_cert),
        "kubernetes-key.pem": _pem_key(api_key),
        "service-account.pem": _pem_cert(sa_cert),
        "service-account-key.pem": _pem_key(sa_key),
    }
    for user, cn, org in (
        ("admin", "admin", "system:masters"),
        ("kube-controller-manager", "system:kube-controller-manager", None),
        ("kube-scheduler", "system:kube-scheduler", None),
    ):
        cert, key = _issue(ca_cert, ca_key, cn, org or cn, server=False)
        secrets[f"{user}.kubeconfig"] = _kubeconfig(
            "kubernetes-the-hard-way", server, ca_pem, cert, key, cn
        )
    secrets["encryption_key"] = base64.b64encode(os.urandom(32)).decode()
    return secrets


def secrets_for_cluster_file(path):
    """make_secrets for the cluster described by a pillar file (plain YAML)."""
    with open(path, encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)["k8s_control_plane"]
    addresses = [c["address"] for c in cfg["controllers"]]
    names = [c["id"] for c in cfg["controllers"]] + [cfg["vip"].get("hostname") or "k8s-controller"]
    service_cidr = (cfg.get("kubernetes") or {}).get("service_cidr", "10.32.0.0/24")
    service_ip = str(ipaddress.ip_network(service_cidr)[1])
    return make_secrets(addresses, cfg["vip"]["address"], service_ip=service_ip, names=names)


def write_secrets_sls(path, secrets):
    """Write a secrets pillar file, 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.dump({"k8s_control_plane": {"secrets": secrets}}, handle, Dumper=_BlockDumper)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PEM, kubeconfigs) as literal blocks."""


_BlockDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)
