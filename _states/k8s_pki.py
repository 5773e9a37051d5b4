"""
States of the cluster PKI on a controller (docs/pki.md): the guard that
refuses symlinks where secrets are written, the kubeconfigs built from
the certificates on this host, and the signing CA alone (ca-signer.pem) taken
from the CA bundle. None ever returns a key or a kubeconfig's content.
"""

import logging
import os
import tempfile
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

__virtualname__ = "k8s_pki"


def __virtual__():
    # Reads and writes local files only; the kubeconfig text comes from the utils (pki.py).
    return __virtualname__


def no_symlinks(name: str, paths: Sequence[str] = ()) -> dict[str, Any]:
    """
    Fail, naming each link and where it points, when the directory ``name``
    or any of ``paths`` is a symbolic link: the PKI states write secrets and
    set modes, and through a link they would do it to whatever it points to.
    A check: it changes nothing, and fails in test mode too.

    name
        The PKI directory.

    paths
        The files the PKI states write in it.

    .. code-block:: yaml

        k8s_control_plane-pki-ca-k8s_pki-no_symlinks-var_lib_kubernetes:
          k8s_pki.no_symlinks:
            - name: /var/lib/kubernetes
            - paths:
              - /var/lib/kubernetes/ca-key.pem
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    links = [p for p in (name, *paths) if os.path.islink(p)]
    if links:
        ret["result"] = False
        shown = "; ".join(f"{p} -> {os.readlink(p)}" for p in links)
        ret["comment"] = (
            f"Refused: {shown}. Secrets are never written through a symbolic link; "
            "remove the link (the next run writes a regular file)."
        )
        return ret
    ret["comment"] = f"No symbolic link in {name} among the {len(paths)} PKI files"
    return ret


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _write(name, text, mode):
    """Write ``name`` root-owned with ``mode``, atomically: a temporary file, then a rename
    (which replaces a path and never follows a link)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(name), prefix=f".{os.path.basename(name)}-")
    try:
        os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, name)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _ensure(ret, name, wanted, mode, content, comments):
    """
    The shared end of the file states here: ``name`` holds the text ``wanted``, root-owned
    with ``mode``. ``content`` is (the change's key, what a rewrite says), ``comments`` is
    (when nothing changes, when written). Changes named, predicted in test mode, never the
    text; written atomically (``_write``); a mode or owner alone fixed in place.
    """
    key, rewritten = content
    current = _read(name) if os.path.isfile(name) else None
    want_mode = int(str(mode), 8)
    info = os.stat(name) if current is not None else None
    changes = {}
    if current is None:
        changes[key] = "created"
    elif current != wanted:
        changes[key] = rewritten
    if info is not None and info.st_mode & 0o7777 != want_mode:
        changes["mode"] = f"{info.st_mode & 0o7777:04o} -> {want_mode:04o}"
    if info is not None and (info.st_uid, info.st_gid) != (0, 0):
        changes["owner"] = f"{info.st_uid}:{info.st_gid} -> root:root"
    if not changes:
        ret["comment"] = comments[0]
        return ret
    ret["changes"] = changes
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"{name} would be updated"
        return ret
    try:
        if key in changes:
            _write(name, wanted, want_mode)
        else:  # not a link: the states check that first
            os.chown(name, 0, 0)
            os.chmod(name, want_mode)
    except OSError as exc:
        ret["result"] = False
        ret["changes"] = {}
        ret["comment"] = f"Could not write {name}: {exc.strerror or exc}"
        return ret
    log.debug("k8s_pki: %s %s", name, sorted(changes))
    ret["comment"] = comments[1]
    return ret


def kubeconfig_managed(
    name: str,
    ca: str,
    cert: str,
    key: str,
    server: str,
    cluster: str,
    user: str,
    mode: str = "0600",
) -> dict[str, Any]:
    """
    Ensure a kubeconfig at ``name`` embeds the CA ``ca``, the client
    certificate ``cert`` and its key ``key`` (files on this controller), for
    ``server``: rewritten (atomically, root-only, never through a symlink)
    when any of them changed. The change reports which parts differ, never
    their content. In test mode, when a file it embeds is still to be made,
    it predicts the write.

    .. code-block:: yaml

        k8s_control_plane-pki-k8s_pki-kubeconfig_managed-admin.kubeconfig:
          k8s_pki.kubeconfig_managed:
            - name: /var/lib/kubernetes/admin.kubeconfig
            - ca: /var/lib/kubernetes/ca.pem
            - cert: /var/lib/kubernetes/admin.pem
            - key: /var/lib/kubernetes/admin-key.pem
            - server: https://127.0.0.1:6443
            - cluster: kubernetes
            - user: admin
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if os.path.islink(name):
        ret["result"] = False
        ret["comment"] = f"Refused: {name} is a symbolic link to {os.readlink(name)}"
        return ret
    absent = [p for p in (ca, cert, key) if not os.path.isfile(p)]
    if absent:
        if __opts__["test"]:
            ret["result"] = None
            ret["changes"] = {"kubeconfig": "would be written"}
            ret["comment"] = f"{name} would be written once {', '.join(absent)} exist"
            return ret
        ret["result"] = False
        ret["comment"] = f"Cannot build {name}: missing {', '.join(absent)}"
        return ret
    wanted = __utils__["k8s_control_plane.kubeconfig_text"](
        cluster, server, _read(ca), _read(cert), _read(key), user
    )
    return _ensure(
        ret,
        name,
        wanted,
        mode,
        ("kubeconfig", "rewritten (its server, CA or client credentials changed)"),
        (f"{name} is up to date", f"{name} written"),
    )


def _signing_certificate(bundle, key):
    """The PEM of the certificate in the PEM text ``bundle`` whose public key is the PEM
    private key ``key``'s, or None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    def spki(public):
        return public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    wanted = spki(serialization.load_pem_private_key(key.encode(), None).public_key())
    for cert in x509.load_pem_x509_certificates(bundle.encode()):
        if spki(cert.public_key()) == wanted:
            return cert.public_bytes(serialization.Encoding.PEM).decode()
    return None


def signer_managed(
    name: str, bundle_pillar: str, key_pillar: str, mode: str = "0644"
) -> dict[str, Any]:
    """
    Ensure ``name`` holds exactly one certificate: the CA of the bundle at the pillar key
    ``bundle_pillar`` whose public key is that of the key at ``key_pillar``, that is the
    CA that signs. kube-controller-manager's ``--cluster-signing-cert-file`` takes exactly
    one certificate (its CSR signer refuses a bundle, "expected 1 certificate", and the
    elected controller-manager then exits), while ``ca.pem`` holds two during a CA
    rotation. Read from the pillar, as ``ca.pem`` and ``ca-key.pem`` are written from it,
    so test mode predicts exactly; written atomically, root-owned, never through a symbolic
    link; the comment names pillar keys and files, never the key.

    .. code-block:: yaml

        k8s_control_plane-pki-ca-k8s_pki-signer_managed-ca-signer.pem:
          k8s_pki.signer_managed:
            - name: /var/lib/kubernetes/ca-signer.pem
            - bundle_pillar: k8s_control_plane:secrets:ca.pem
            - key_pillar: k8s_control_plane:secrets:ca-key.pem
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if os.path.islink(name):
        ret["result"] = False
        ret["comment"] = f"Refused: {name} is a symbolic link to {os.readlink(name)}"
        return ret
    # unmask: Salt 3008 masks pillar.get's values unless asked (salt/utils/secret.py)
    bundle = __salt__["pillar.get"](bundle_pillar, unmask=True)
    key = __salt__["pillar.get"](key_pillar, unmask=True)
    absent = [k for k, v in ((bundle_pillar, bundle), (key_pillar, key)) if not v]
    if absent:
        ret["result"] = False
        ret["comment"] = f"Cannot write {name}: no pillar {', '.join(absent)}"
        return ret
    try:
        wanted = _signing_certificate(str(bundle), str(key))
    except (ValueError, TypeError) as exc:
        ret["result"] = False
        ret["comment"] = f"Cannot read pillar {bundle_pillar} or {key_pillar}: {type(exc).__name__}"
        return ret
    if wanted is None:
        ret["result"] = False
        ret["comment"] = (
            f"No certificate in pillar {bundle_pillar} matches the key {key_pillar}: "
            "the CA cannot sign"
        )
        return ret
    return _ensure(
        ret,
        name,
        wanted,
        mode,
        ("signer", "rewritten (the signing CA changed)"),
        (
            f"{name} is the signing CA of {bundle_pillar}",
            f"{name} written: the signing CA of {bundle_pillar}",
        ),
    )


def mod_watch(name: str, sfun: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """
    A file a kubeconfig embeds changed in this run (a certificate re-issued,
    the CA replaced). Salt calls this only when ``kubeconfig_managed`` itself
    found nothing to do: in test mode the new files do not exist yet, so the
    rewrite is predicted here; in a real run the state already saw them, and
    this runs it again (a no-op).
    """
    if sfun != "kubeconfig_managed":
        return {
            "name": name,
            "changes": {},
            "result": False,
            "comment": f"k8s_pki.{sfun} does not support watch",
        }
    if __opts__["test"]:
        return {
            "name": name,
            "changes": {"kubeconfig": "would be rewritten (a file it embeds changes)"},
            "result": None,
            "comment": f"{name} would be rewritten: a certificate, key or the CA it embeds changes",
        }
    fields = ("ca", "cert", "key", "server", "cluster", "user", "mode")
    return kubeconfig_managed(name, **{k: kwargs[k] for k in fields if k in kwargs})
