"""
The cluster CA's keeper on the master (docs/pki.md): an ext_pillar that,
for a minion listed in a cluster's ``k8s_control_plane:controllers`` with
``pki:source`` salt (the default), gives

* ``k8s_control_plane:secrets:ca.pem`` and ``ca-key.pem``: the cluster's CA,
  made once on the master with Salt's x509 module (EC P-256, 10 years) and
  kept in ``<dir>/<cluster>/`` (0700, files 0600); during a CA rotation
  (``orch.rotate_ca``) a bundle of the old and the new CA and the signing one's
  key. Only with ``etcd:managed`` true: an external etcd trusts a CA of its
  own, never one made here, so with an unmanaged etcd the operator gives that
  CA (the validation says so);
* ``k8s_control_plane:secrets:encryption_keys``: the keys of Secrets at rest, the writing
  one first: ``key1`` (32 random bytes, base64) made once and kept beside it, and during or
  after a rotation (``orch.rotate_encryption_key``, docs/encryption.md) the list the rotation
  keeps in ``encryption_keys.json`` there;
* ``k8s_control_plane:secrets:service-account-key.pem``: the cluster's one
  service-account signing key (EC P-256), made once and kept beside it. One
  key per cluster, not one per controller: a ServiceAccount token signed by
  any apiserver must verify on every other (each apiserver's
  --service-account-key-file holds only its own key's certificate), as
  kubeadm copies sa.key to every control-plane node;
* ``k8s_control_plane:secrets:backup_key``: 32 random bytes, base64, made
  once and kept beside them, with either ``pki:source``: the key that seals
  the etcd snapshots before they leave a controller (k8s_etcd.snapshot_push,
  docs/snapshots.md). Not rotated with the encryption key: an old snapshot
  must stay readable;
* ``x509_signing_policies``: the cluster's signing policies (subject and key
  usages of every certificate kind, _utils/k8s_control_plane/pki.py), which the
  controllers' x509.certificate_managed states sign through.

Minions the cluster does not list get nothing, so only the cluster's
controllers can read its CA and encryption key. A value the pillar already
holds (an operator's own CA: both ca.pem and ca-key.pem, or either, which
the validation then names as incomplete; a kept encryption key) is left
alone. Files are written to a temporary name and linked into place, so a
crash never leaves a torn one.

Master configuration::

    ext_pillar:
      - k8s_pki: {}            # or {dir: /srv/k8s-pki}

with the module synced to the master (``salt-run saltutil.sync_pillar``;
the orchestration does it too). The default dir is
``<master pki_dir>/k8s_control_plane``.
"""

import base64
import contextlib
import logging
import os
import re
import secrets as random
from typing import Any

log = logging.getLogger(__name__)

__virtualname__ = "k8s_pki"

_CLUSTER_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


try:
    import cryptography  # noqa: F401 (what Salt's x509 module makes the CA with)

    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False


def __virtual__():
    if not HAS_CRYPTOGRAPHY:
        return (False, "k8s_pki needs the cryptography library for Salt's x509 module")
    return __virtualname__


def _write_new(path, data):
    """
    Create ``path`` (0600) with ``data``, whole or not at all: written to a
    temporary file, then linked into place (a link never replaces an
    existing file or follows one).
    """
    __utils__["k8s_control_plane.write_private"](path, data, replace=False)


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _cluster_dir(base, cluster):
    """The cluster's directory (0700), or None when it or the base is a symlink (refused)."""
    if os.path.islink(base):
        log.error("k8s_pki: %s is a symlink: refused, no CA given (remove the link)", base)
        return None
    os.makedirs(base, mode=0o700, exist_ok=True)
    directory = os.path.join(base, cluster)
    if not os.path.islink(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    for path in (base, directory):
        if os.path.islink(path):
            log.error("k8s_pki: %s is a symlink: refused, no CA given (remove the link)", path)
            return None
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o700)
    return directory


def _ensure_ca(directory, cluster, prefix="ca", label=None):
    """The CA (``ca.pem``), or the one a rotation moves to (``ca-next.pem``, OU with its label)."""
    cert_path = os.path.join(directory, f"{prefix}.pem")
    key_path = os.path.join(directory, f"{prefix}-key.pem")
    if not os.path.exists(cert_path):
        key = __salt__["x509.create_private_key"](algo="ec", keysize=256)
        unit = f"CA {cluster}" + (f" {label}" if label else "")
        cert = __salt__["x509.create_certificate"](
            signing_private_key=key,
            subject={"CN": "Kubernetes", "O": "Kubernetes", "OU": unit},
            basicConstraints="critical, CA:true",
            keyUsage="critical, cRLSign, keyCertSign",
            subjectKeyIdentifier="hash",
            days_valid=3650,
        )
        # the key first: a crash between the two leaves no certificate without its key
        with contextlib.suppress(FileNotFoundError):
            os.unlink(key_path)
        _write_new(key_path, key)
        _write_new(cert_path, cert)
        log.info("k8s_pki: made the CA of cluster %s in %s (%s)", cluster, directory, cert_path)
    return _read(cert_path), _read(key_path)


def _ca(directory, cluster):
    """(ca.pem, ca-key.pem) as a CA rotation stands (orch.rotate_ca; ca_rotation.py)."""
    old = _ensure_ca(directory, cluster)
    rotation = __utils__["k8s_control_plane.read_ca_rotation"](directory) or {}
    phase = rotation.get("phase")
    new = None
    if phase in ("trust", "sign"):
        new = _ensure_ca(directory, cluster, "ca-next", rotation.get("label"))
    elif phase == "drop":  # the new CA, from before or after the master's swap of its files
        new = tuple(
            _read(os.path.join(directory, n if os.path.exists(os.path.join(directory, n)) else o))
            for n, o in (("ca-next.pem", "ca.pem"), ("ca-next-key.pem", "ca-key.pem"))
        )
    return __utils__["k8s_control_plane.ca_given"](phase, old, new)


def _ensure_encryption_key(directory, cluster):
    path = os.path.join(directory, "encryption_key")
    if not os.path.exists(path):
        _write_new(path, base64.b64encode(random.token_bytes(32)).decode() + "\n")
        log.info("k8s_pki: made the encryption key of cluster %s", cluster)
    return _read(path).strip()


def _ensure_backup_key(directory, cluster):
    path = os.path.join(directory, "backup_key")
    if not os.path.exists(path):
        _write_new(path, base64.b64encode(random.token_bytes(32)).decode() + "\n")
        log.info("k8s_pki: made the snapshot backup key of cluster %s", cluster)
    return _read(path).strip()


def _ensure_service_account_key(directory, cluster):
    path = os.path.join(directory, "service-account-key.pem")
    if not os.path.exists(path):
        _write_new(path, __salt__["x509.create_private_key"](algo="ec", keysize=256))
        log.info("k8s_pki: made the service-account signing key of cluster %s", cluster)
    return _read(path)


def ext_pillar(minion_id: str, pillar: dict[str, Any], dir: str | None = None) -> dict[str, Any]:
    """
    The CA, the encryption key, the service-account signing key and the
    signing policies of the cluster that
    lists ``minion_id`` among its controllers; nothing for any other minion.
    """
    key = __utils__["k8s_control_plane.pillar_key"]()
    cfg = pillar.get(key) if isinstance(pillar, dict) else None
    if not isinstance(cfg, dict):
        return {}
    source = __utils__["k8s_control_plane.pki_source"](cfg)
    if source not in ("salt", "pillar"):
        return {}  # the validation names the value
    cluster = cfg.get("cluster")
    if not isinstance(cluster, str) or not _CLUSTER_RE.match(cluster):
        return {}  # the validation names the key
    if minion_id not in __utils__["k8s_control_plane.controller_ids"](cfg):
        return {}
    given: Any = cfg.get("secrets") if isinstance(cfg.get("secrets"), dict) else {}
    base = __utils__["k8s_control_plane.master_keys_dir"](__opts__, dir)
    directory = _cluster_dir(base, cluster)
    if directory is None:
        return {}  # the validation names the missing CA
    found = {}
    # one master worker at a time (they compile pillars in parallel), and not while the
    # k8s_encryption runner steps a rotation
    with __utils__["k8s_control_plane.keys_locked"](directory):
        if not given.get("backup_key"):
            found["backup_key"] = _ensure_backup_key(directory, cluster)
        if source != "salt":  # pillar: every other secret is the operator's
            return {key: {"secrets": found}}
        etcd: Any = cfg.get("etcd") if isinstance(cfg.get("etcd"), dict) else {}
        if etcd.get("managed") is True and not (given.get("ca.pem") or given.get("ca-key.pem")):
            found["ca.pem"], found["ca-key.pem"] = _ca(directory, cluster)
        if not given.get("encryption_key") and given.get("encryption_keys") is None:
            _ensure_encryption_key(directory, cluster)
            state = __utils__["k8s_control_plane.read_key_state"](directory)
            found["encryption_keys"] = [
                {"name": k["name"], "secret": k["secret"]} for k in state["keys"]
            ]
        if not given.get("service-account-key.pem"):
            found["service-account-key.pem"] = _ensure_service_account_key(directory, cluster)
    return {
        key: {"secrets": found},
        "x509_signing_policies": __utils__["k8s_control_plane.signing_policies"](cluster),
    }
