"""
The cluster PKI on a controller: which files it holds and how each is made
(:func:`plan`) and what is on disk (:func:`certificates`). The rules are in
_utils/k8s_control_plane/pki.py; the pki SLS files' state data in pki_states.py beside it;
docs/pki.md tells the whole design. No function returns a private key, the
CA key or the encryption key.
"""

import base64
import datetime
import logging
import os
from typing import Any

import yaml

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization

    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

log = logging.getLogger(__name__)

__virtualname__ = "k8s_pki"


def __virtual__():
    if not HAS_CRYPTOGRAPHY:
        return (False, "k8s_pki needs the cryptography library (a dependency of Salt's x509)")
    return __virtualname__


def _cfg():
    return __salt__["k8s_cluster.config"]()


def plan(sls: str | None = None) -> list[dict[str, Any]]:
    """
    Return this controller's PKI files in the order they are made, each with
    how it is made (``kind``: directory, pillar, key, certificate, kubeconfig,
    template), its path and mode; a certificate with its signing policy and
    SANs. Nothing secret.

    sls
        Only the files of one pki SLS file: ``ca``, ``init`` or ``etcd``.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_pki.plan
        salt k8s-controller-1 k8s_pki.plan sls=etcd
    """
    entries = __utils__["k8s_control_plane.pki_plan"](_cfg(), __grains__["id"])
    return [e for e in entries if sls is None or e["sls"] == sls]


def watch(service: str, root: str | None = None) -> list[dict[str, str]]:
    """
    Return the requisites on the PKI files ``service`` reads
    (etcd, kube-apiserver, kube-controller-manager, kube-scheduler): a change
    to one of them restarts that service only.

    root
        The formula's root (default: the k8s_control_plane_root option, else
        k8s_control_plane).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_pki.watch kube-scheduler
    """
    if root is None:
        root = __utils__["k8s_control_plane.formula_root"](__salt__["config.get"])
    return __utils__["k8s_control_plane.pki_watch_for"](root, plan(), service)


def etcd_files() -> list[str]:
    """
    Return the (CA, certificate, key) paths a managed etcd serves with, which
    the health checks present to it too: etcd's own certificate with
    pki:source salt, the apiserver's with pillar (the seed's chapter 07).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_pki.etcd_files
    """
    return list(__utils__["k8s_control_plane.etcd_check_files"](_cfg()))


_EKU = {"serverAuth": "SERVER_AUTH", "clientAuth": "CLIENT_AUTH"}


def _as_planned(entry, cert, policy):
    """The certificate's subject, usages and SANs are the policy's and the plan's."""
    oid = x509.oid
    names = {
        "CN": [a.value for a in cert.subject.get_attributes_for_oid(oid.NameOID.COMMON_NAME)],
        "O": [a.value for a in cert.subject.get_attributes_for_oid(oid.NameOID.ORGANIZATION_NAME)],
    }
    if any(names[k] != [policy[k]] for k in ("CN", "O")) or len(cert.subject) != 2:
        return False
    wanted = {
        getattr(oid.ExtendedKeyUsageOID, _EKU[u.strip()])
        for u in policy["extendedKeyUsage"].split(",")
    }
    ext = cert.extensions
    expected = {
        x509.BasicConstraints,
        x509.KeyUsage,
        x509.ExtendedKeyUsage,
        x509.SubjectKeyIdentifier,
        x509.AuthorityKeyIdentifier,
    }
    if entry.get("sans"):
        expected.add(x509.SubjectAlternativeName)
    if {type(e.value) for e in ext} != expected or len(ext) != len(expected):
        return False  # an extension missing or one more (x509 would re-issue)
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    key_usage = ext.get_extension_for_class(x509.KeyUsage)
    usage = key_usage.value
    bits = (
        usage.content_commitment,
        usage.data_encipherment,
        usage.key_agreement,
        usage.key_cert_sign,
        usage.crl_sign,
    )
    if not (basic.critical and key_usage.critical) or basic.value.ca:
        return False
    if not (usage.digital_signature and usage.key_encipherment) or any(bits):
        return False
    if set(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) != wanted:
        return False
    if cert.signature_hash_algorithm is None or cert.signature_hash_algorithm.name != "sha256":
        return False
    return _sans(cert) == list(entry.get("sans") or [])  # in order, as x509 compares


def _regular(path, mode):
    """A regular root-owned file (not a link) with exactly ``mode``."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (
        os.path.isfile(path)
        and not os.path.islink(path)
        and (info.st_uid, info.st_gid) == (0, 0)
        and (info.st_mode & 0o7777) == int(mode, 8)
    )


def current(path: str) -> bool:
    """
    Return True when the key or certificate at ``path`` (this controller's
    plan) is exactly as planned, so that its x509 state has nothing to do:
    the pki SLS makes it the state's ``unless``, which spares a converged
    controller the x509 states' own check (a nested ``state.single`` with a
    pillar compile per file). As planned: a regular root-owned file with the
    planned mode; a key, EC P-256; a certificate, signed by the cluster CA on
    disk, of its planned key, with its policy's subject and usages and the
    planned SANs, and more than ``pki:renew_before_days`` left. Anything else
    is False, and the x509 state decides. Never raises.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_pki.current /var/lib/kubernetes/kubernetes.pem
    """
    try:
        entry = next((e for e in plan() if e["path"] == path), None)
        if entry is None or not _regular(path, entry["mode"]):
            return False
        if entry["kind"] == "key":
            with open(path, "rb") as handle:
                key = serialization.load_pem_private_key(handle.read(), password=None)
            return getattr(getattr(key, "curve", None), "name", None) == "secp256r1"
        if entry["kind"] != "certificate":
            return False
        policy = (__pillar__.get("x509_signing_policies") or {}).get(entry["policy"])
        if not policy or not _regular(entry["key"], "0600"):
            return False
        with open(path, "rb") as handle:
            text = handle.read()
        if text.count(b"-----BEGIN ") != 1:
            return False  # a chain appended: x509 would rewrite the file
        cert = x509.load_pem_x509_certificate(text)
        ca = _read_cert(entry["signing_cert"])
        cert.verify_directly_issued_by(ca)
        with open(entry["key"], "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            return False
        left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        if left <= datetime.timedelta(days=entry["days_remaining"]):
            return False
        return _as_planned(entry, cert, policy)
    except Exception:  # any doubt: the x509 state decides
        log.debug("k8s_pki.current: %s: not as planned", path, exc_info=True)
        return False


def _read_cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def _sans(cert):
    """The SANs in the certificate's order; a type other than IP or DNS shows as itself."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    shown = {x509.IPAddress: "IP", x509.DNSName: "DNS"}
    return [
        f"{shown[type(name)]}:{name.value}" if type(name) in shown else repr(name) for name in ext
    ]


def certificates() -> dict[str, dict[str, Any]]:
    """
    Return every certificate this controller's plan names, as found on disk:
    serial, subject, issuer, SANs, expiry and days left, whether its SANs are the
    planned ones, whether it is signed by the cluster CA (ca.pem) and whether
    its private key matches. ``missing`` when the file is not there. Public
    facts only.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_pki.certificates
    """
    entries = plan()
    ca_path = f"{_cfg()['controlplane']['pki_dir']}/ca.pem"
    ca = _read_cert(ca_path) if os.path.isfile(ca_path) else None
    now = datetime.datetime.now(datetime.UTC)
    report: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry["kind"] not in ("certificate", "pillar") or not entry["name"].endswith(".pem"):
            continue
        if entry["name"].endswith("-key.pem"):
            continue
        path = entry["path"]
        if not os.path.isfile(path) or os.path.islink(path):
            report[path] = {"missing": True}
            continue
        try:
            cert = _read_cert(path)
        except (OSError, ValueError) as exc:
            report[path] = {"unreadable": str(exc)}
            continue
        found = {
            "serial": f"{cert.serial_number:x}",
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "sans": _sans(cert),
            "not_after": f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}",
            "days_left": (cert.not_valid_after_utc - now).days,
        }
        if ca is not None and cert.subject != ca.subject:
            try:
                cert.verify_directly_issued_by(ca)
                found["signed_by_ca"] = True
            except (ValueError, TypeError, Exception):
                found["signed_by_ca"] = False
        if entry.get("sans"):
            found["sans_as_planned"] = sorted(found["sans"]) == sorted(entry["sans"])
        key = entry.get("key") or path.replace(".pem", "-key.pem")
        if os.path.isfile(key):
            with open(key, "rb") as handle:
                private = serialization.load_pem_private_key(handle.read(), password=None)
            spki = serialization.PublicFormat.SubjectPublicKeyInfo
            der = serialization.Encoding.DER
            found["key_matches"] = private.public_key().public_bytes(der, spki) == (
                cert.public_key().public_bytes(der, spki)
            )
        report[path] = found
    return report


def _pem_certificates(text):
    """Every certificate in a PEM text (a CA bundle holds several)."""
    marker = "-----BEGIN CERTIFICATE-----"
    found = []
    for block in text.split(marker)[1:]:
        found.append(x509.load_pem_x509_certificate((marker + block).encode()))
    return found


def _kubeconfig_certificates(path):
    """(what, certificate) for a kubeconfig's embedded CA and client certificates."""
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    found = []
    for what, entries, field, key in (
        ("its CA", config.get("clusters") or [], "cluster", "certificate-authority-data"),
        ("its client", config.get("users") or [], "user", "client-certificate-data"),
    ):
        for entry in entries:
            data = ((entry or {}).get(field) or {}).get(key)
            if data:
                text = base64.b64decode(data).decode()
                found += [(what, cert) for cert in _pem_certificates(text)]
    return found


def expiry(margin_days: int | None = None) -> dict[str, Any]:
    """
    Return every certificate this controller holds from the formula, with its days left:
    the CA, the apiserver's and the other leaves, etcd's, and the ones embedded in each
    kubeconfig (its CA and its client certificate). ``due`` names those with no more days
    left than the margin (``pki:renew_before_days`` unless given); ``renew`` those of them
    the next ``orch.control_plane`` re-issues (the leaves Salt signs with ``pki:source
    salt``; a CA, or a certificate the pillar gives, is named to be replaced by a person).
    ``soonest`` is the one that expires first. Public facts only.

    margin_days
        Warn below this many days left (default: pki:renew_before_days).

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_pki.expiry
        salt 'k8s-controller-*' k8s_pki.expiry margin_days=90
    """
    cfg = _cfg()
    margin = int(cfg["pki"]["renew_before_days"] if margin_days is None else margin_days)
    # what the formula re-issues itself: the leaves it signs with pki:source salt
    issues = __utils__["k8s_control_plane.pki_source"](cfg) == "salt"
    now = datetime.datetime.now(datetime.UTC)
    listed, unreadable = [], []
    for entry in plan():
        path, name = entry["path"], entry["name"]
        if not os.path.isfile(path) or os.path.islink(path) or name.endswith("-key.pem"):
            continue
        try:
            if name.endswith(".kubeconfig"):
                found = _kubeconfig_certificates(path)
            elif name.endswith(".pem"):
                with open(path, encoding="utf-8") as handle:
                    found = [("", cert) for cert in _pem_certificates(handle.read())]
            else:
                continue
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            unreadable.append(f"{path}: {exc}")
            continue
        for what, cert in found:
            left = (cert.not_valid_after_utc - now).total_seconds() / 86400
            is_ca = cert.subject == cert.issuer
            listed.append(
                {
                    "file": path + (f" ({what})" if what else ""),
                    "subject": cert.subject.rfc4514_string(),
                    "ca": is_ca,
                    "not_after": f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}",
                    "days_left": round(left, 1),
                    "due": left <= margin,
                    "renewable": issues and not is_ca,
                }
            )
    listed.sort(key=lambda c: c["days_left"])
    due = [c["file"] for c in listed if c["due"]]
    renew = [c["file"] for c in listed if c["due"] and c["renewable"]]
    soonest = listed[0] if listed else None
    if soonest is None:
        comment = "no certificate found"
    else:
        comment = f"soonest {soonest['file']} in {soonest['days_left']:.0f} days"
        if due:
            comment += f"; {len(due)} within the {margin}-day margin: {', '.join(due)}"
    if unreadable:
        comment += "; unreadable: " + "; ".join(unreadable)
    return {
        "margin_days": margin,
        "certificates": listed,
        "due": due,
        "renew": renew,
        "soonest": soonest,
        "comment": comment,
    }


def _started(unit):
    """When the unit's main process started (seconds since the epoch), or None when it runs not."""
    if not __salt__["service.status"](unit):
        return None
    out = __salt__["cmd.run_stdout"](
        ["systemctl", "show", "-p", "ExecMainStartTimestamp", "--timestamp=us+utc", unit],
        python_shell=False,
        ignore_retcode=True,
    ).strip()
    try:  # ExecMainStartTimestamp=Sun 2026-12-06 18:22:18.524440 UTC
        when = datetime.datetime.strptime(out.partition("=")[2], "%a %Y-%m-%d %H:%M:%S.%f UTC")
    except ValueError:
        return None
    return when.replace(tzinfo=datetime.UTC).timestamp()


def encryption_keys() -> dict[str, Any]:
    """
    Return the names of the keys this controller's encryption config lists, in its order
    (the first encrypts what the apiserver writes; every one decrypts), each key's digest
    (the first 16 hex digits of its SHA-256: two keys of one name differ), and whether the
    apiserver runs with that config now (its start is later than the file's last change).
    Never a key.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_pki.encryption_keys
    """
    path = next((e["path"] for e in plan("init") if e["name"] == "encryption-config.yaml"), None)
    if path is None or not os.path.isfile(path):
        return {"path": path, "names": [], "digests": [], "writes": None, "loaded": False}
    with open(path, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle) or {}
    names, digests = [], []
    for resource in doc.get("resources") or []:
        for provider in resource.get("providers") or []:
            for kind, body in provider.items():
                if kind in ("aescbc", "aesgcm", "secretbox") and isinstance(body, dict):
                    for key in body.get("keys") or []:
                        names.append(str(key.get("name")))
                        digests.append(
                            __utils__["k8s_control_plane.key_digest"](str(key.get("secret")))
                        )
    started = _started("kube-apiserver")
    changed = os.stat(path).st_mtime
    return {
        "path": path,
        "names": names,
        "digests": digests,
        "writes": names[0] if names else None,
        "loaded": started is not None and started >= changed,
    }


def _fingerprint(cert):
    """The first 16 hex digits of a certificate's SHA-256: how trust() names a CA."""
    return cert.fingerprint(hashes.SHA256()).hex()[:16]


def trust() -> dict[str, Any]:
    """
    Return which CAs this controller trusts where, and which CA signed each certificate it
    holds, by fingerprint (the first 16 hex digits of the SHA-256): what a CA rotation
    (orch.rotate_ca) must change, and proves it did. ``cas`` maps each file that holds CAs
    (ca.pem in the PKI and etcd folders, haproxy's ca_file, each kubeconfig's embedded CA)
    to its CAs in order; ``signed_by`` maps each certificate (the leaves, each kubeconfig's
    client certificate, and ca-signer.pem, the controller-manager's signing CA, which as a
    self-signed CA maps to itself) to the fingerprint of the CA, among those, that signed
    it (None: none of them). Public facts only.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_pki.trust
    """
    cfg = _cfg()
    holders, leaves = {}, {}
    for entry in plan():
        path = entry["path"]
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        if entry["name"] == "ca.pem":
            with open(path, encoding="utf-8") as handle:
                holders[path] = _pem_certificates(handle.read())
        elif entry["kind"] in ("certificate", "signer"):
            leaves[path] = _read_cert(path)
        elif entry["kind"] == "kubeconfig":
            for what, cert in _kubeconfig_certificates(path):
                if what == "its CA":
                    holders.setdefault(f"{path} (its CA)", []).append(cert)
                else:
                    leaves[f"{path} (its client)"] = cert
    haproxy = ((cfg.get("loadbalancer") or {}).get("haproxy") or {}).get("ca_file")
    if haproxy and os.path.isfile(haproxy):
        with open(haproxy, encoding="utf-8") as handle:
            holders[haproxy] = _pem_certificates(handle.read())
    known = {_fingerprint(c): c for certs in holders.values() for c in certs}
    signed_by: dict[str, str | None] = {}
    for what, cert in leaves.items():
        signed_by[what] = None
        for print_, ca in known.items():
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            signed_by[what] = print_
            break
    return {
        "cas": {what: [_fingerprint(c) for c in certs] for what, certs in holders.items()},
        "signed_by": signed_by,
    }
