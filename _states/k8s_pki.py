"""
States of the cluster PKI on a controller (docs/pki.md): the guard that
refuses symlinks where secrets are written, and the kubeconfigs built from
the certificates on this host. Neither ever returns a key or a kubeconfig's
content.
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
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(name), prefix=".kubeconfig-")
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
    current = _read(name) if os.path.isfile(name) else None
    want_mode = int(str(mode), 8)
    info = os.stat(name) if current is not None else None
    changes = {}
    if current is None:
        changes["kubeconfig"] = "created"
    elif current != wanted:
        changes["kubeconfig"] = "rewritten (its server, CA or client credentials changed)"
    if info is not None and info.st_mode & 0o7777 != want_mode:
        changes["mode"] = f"{info.st_mode & 0o7777:04o} -> {want_mode:04o}"
    if info is not None and (info.st_uid, info.st_gid) != (0, 0):
        changes["owner"] = f"{info.st_uid}:{info.st_gid} -> root:root"
    if not changes:
        ret["comment"] = f"{name} is up to date"
        return ret
    ret["changes"] = changes
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"{name} would be updated"
        return ret
    try:
        if "kubeconfig" in changes:
            _write(name, wanted, want_mode)
        else:  # not a link: checked above
            os.chown(name, 0, 0)
            os.chmod(name, want_mode)
    except OSError as exc:
        ret["result"] = False
        ret["changes"] = {}
        ret["comment"] = f"Could not write {name}: {exc.strerror or exc}"
        return ret
    log.debug("k8s_pki.kubeconfig_managed: %s %s", name, sorted(changes))
    ret["comment"] = f"{name} written"
    return ret


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
