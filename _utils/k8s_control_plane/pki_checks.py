"""The coherence of pillar-supplied PKI (cryptography, a dependency of Salt itself):
keys match their certificates, certificates chain to the CA, the apiserver's SANs, the
kubeconfigs' embedded credentials."""

import base64
import binascii
import datetime
import ipaddress

import salt.utils.yaml

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
except ImportError:  # Salt depends on it; without it only the PKI's coherence goes unchecked
    x509 = None  # type: ignore[assignment]

from .facts import lookup
from .names import SECRET_FILES
from .schema import Errors

_PAIRS = {
    "ca-key.pem": "ca.pem",
    "kubernetes-key.pem": "kubernetes.pem",
    "service-account-key.pem": "service-account.pem",
}
_API_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _load_cert(data):
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        return None


def _load_key(data):
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _spki(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _cert_problems(cert, ca, what):
    """What is wrong with a certificate on its own and against the CA: its dates, its signer."""
    problems = []
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now:
        problems.append(f"{what} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        problems.append(
            f"{what} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if ca is not None and cert is not ca:
        if cert.issuer != ca.subject:
            problems.append(
                f"{what} is not signed by secrets:ca.pem: its issuer is "
                f"{cert.issuer.rfc4514_string()}, ca.pem is {ca.subject.rfc4514_string()}"
            )
        else:
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                problems.append(
                    f"{what} is not signed by secrets:ca.pem: its issuer has ca.pem's name, "
                    "but its signature does not verify with ca.pem's key"
                )
    return problems


def _ca_problems(cert):
    """What keeps a certificate from signing others: basicConstraints CA:true, keyCertSign."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    problems = []
    if not is_ca:
        problems.append("is not a CA certificate (basicConstraints CA:true missing)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            problems.append("its key usage lacks keyCertSign, so it cannot sign certificates")
    except x509.ExtensionNotFound:
        pass
    return problems


def _sans(cert):
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in names.get_values_for_type(x509.IPAddress)} | set(
        names.get_values_for_type(x509.DNSName)
    )


def _b64_pem(value):
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _check_kubeconfig(errors, name, text, ca):
    key = f"secrets:{name}"
    try:
        doc = salt.utils.yaml.safe_load(text)
    except Exception:  # any YAML error; its message could quote the secret
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("clusters"), list):
        errors.add(key, "is not a kubeconfig (no 'clusters')")
        return
    if x509 is None:
        return
    for entry in doc["clusters"]:
        data = lookup(entry, "cluster:certificate-authority-data")
        if data is None:
            continue
        cert = _load_cert(_b64_pem(data))
        if cert is None:
            errors.add(key, "its certificate-authority-data is not a PEM certificate")
        elif ca is not None and cert != ca:
            errors.add(key, "its certificate-authority-data is not secrets:ca.pem")
    for entry in doc.get("users") if isinstance(doc.get("users"), list) else []:
        user = lookup(entry, "name")
        cert_data, key_data = (
            lookup(entry, "user:client-certificate-data"),
            lookup(entry, "user:client-key-data"),
        )
        if cert_data is None and key_data is None:
            continue
        cert = _load_cert(_b64_pem(cert_data)) if cert_data is not None else None
        private = _load_key(_b64_pem(key_data)) if key_data is not None else None
        if cert_data is not None and cert is None:
            errors.add(key, f"user {user}: its client-certificate-data is not a PEM certificate")
        if key_data is not None and private is None:
            errors.add(key, f"user {user}: its client-key-data is not a PEM private key")
        if (
            cert is not None
            and private is not None
            and _spki(cert.public_key()) != _spki(private.public_key())
        ):
            errors.add(key, f"user {user}: its client key is not the key of its certificate")
        if cert is not None:
            for problem in _cert_problems(cert, ca, "its client certificate"):
                errors.add(key, f"user {user}: {problem}")


def check_pki(
    errors: Errors,
    texts: dict[str, str],
    addresses: list[ipaddress.IPv4Address],
    vip: ipaddress.IPv4Address | None,
    service: ipaddress.IPv4Network | None,
) -> None:
    """
    The certificates, keys and kubeconfigs agree: each parses, each
    certificate matches its key, is valid now and is signed by ca.pem, and the
    apiserver's covers every name its clients use. Errors name files, never
    their content.
    """
    if x509 is None:
        for name in SECRET_FILES:
            if name.endswith(".kubeconfig") and name in texts:
                _check_kubeconfig(errors, name, texts[name], None)
        return
    certs, keys = {}, {}
    for name, text in texts.items():
        if name in _PAIRS:
            keys[name] = _load_key(text.encode())
        elif name.endswith(".pem"):
            certs[name] = _load_cert(text.encode())
    ca = certs.get("ca.pem")
    for name in SECRET_FILES:
        if name not in texts:
            continue
        key = f"secrets:{name}"
        if name.endswith(".kubeconfig"):
            _check_kubeconfig(errors, name, texts[name], ca)
        elif name in _PAIRS:
            private, cert = keys[name], certs.get(_PAIRS[name])
            if private is None:
                errors.add(key, "is not an unencrypted PEM private key that parses")
            elif cert is not None and _spki(cert.public_key()) != _spki(private.public_key()):
                errors.add(
                    key, f"is not the key of secrets:{_PAIRS[name]} (their public keys differ)"
                )
        elif certs[name] is None:
            errors.add(
                key, "is not a PEM certificate that parses (PEM armour around something else)"
            )
        else:
            for problem in _cert_problems(certs[name], ca, "the certificate"):
                errors.add(key, problem)
            if name == "ca.pem":
                for problem in _ca_problems(certs[name]):
                    errors.add(key, problem)
            if name == "kubernetes.pem":
                wanted = [
                    *([str(vip)] if vip is not None else []),
                    *map(str, addresses),
                    "127.0.0.1",
                    *([str(service[1])] if service and service.num_addresses > 1 else []),
                    *_API_NAMES,
                ]
                have = _sans(certs[name])
                lacking = [n for n in dict.fromkeys(wanted) if n not in have]
                if lacking:
                    errors.add(
                        key,
                        f"the apiserver certificate's subject alternative names lack "
                        f"{', '.join(lacking)} (it needs the VIP, every controller address, "
                        "127.0.0.1, the first service IP and the kubernetes.default names)",
                    )
