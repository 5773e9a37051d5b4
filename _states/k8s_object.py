"""
Kubernetes API objects as Salt states: created when absent, the fields we
own replaced when they differ, nothing sent when they match. Test mode asks
the server for a dry run (``dryRun=All``) when the object would change.
"""

import logging
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_object"


def __virtual__():
    if "k8s_api.get" not in __salt__:
        return (False, "k8s_object: the k8s_api execution module is not loaded")
    return __virtualname__


def present(
    name: str, manifest: dict[str, Any], kubeconfig: str | None = None, server: str | None = None
) -> dict[str, Any]:
    """
    Ensure an object exists as ``manifest`` describes.

    name
        The object's name (for the state's output).

    manifest
        The object: apiVersion, kind, metadata, and its fields.

    kubeconfig
        Credentials; default /var/lib/kubernetes/admin.kubeconfig

    server
        Override the kubeconfig's server URL.

    .. code-block:: yaml

        k8s_control_plane-rbac-k8s_object-present-ClusterRole:
          k8s_object.present:
            - name: system:kube-apiserver-to-kubelet
            - manifest: {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, ...}
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    kwargs = {"server": server}
    if kubeconfig:
        kwargs["kubeconfig"] = kubeconfig
    label = f"{manifest.get('kind')} {name}"
    try:
        live = __salt__["k8s_api.get"](manifest, **kwargs)
    except CommandExecutionError as exc:
        if not __opts__["test"]:
            ret["result"] = False
            ret["comment"] = f"{label}: {exc}"
            return ret
        # Before the first apply there is no API server to ask: predict.
        ret["result"] = None
        ret["changes"] = {"object": {"old": None, "new": name}}
        ret["comment"] = f"{label} would be applied (the API server is not reachable yet)"
        return ret
    try:
        changes = __utils__["k8s_control_plane.object_diff"](manifest, live)
        log.debug("k8s_object: %s differs in %s", label, sorted(changes) or "nothing")
        if not changes:
            ret["comment"] = f"{label} is as described"
            return ret
        if __opts__["test"]:
            __salt__["k8s_api.apply"](manifest, dry_run=True, **kwargs)
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = f"{label} would be {'created' if live is None else 'updated'}"
            return ret
        result = __salt__["k8s_api.apply"](manifest, **kwargs)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"{label}: {exc}"
        return ret
    ret["changes"] = result["changes"]
    ret["comment"] = f"{label} {result['action']}"
    return ret


def absent(
    name: str, manifest: dict[str, Any], kubeconfig: str | None = None, server: str | None = None
) -> dict[str, Any]:
    """
    Ensure an object does not exist.

    .. code-block:: yaml

        k8s_control_plane-rbac-clean-k8s_object-absent-ClusterRole:
          k8s_object.absent:
            - name: system:kube-apiserver
            - manifest: {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding,
                         metadata: {name: system:kube-apiserver}}
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    kwargs = {"server": server}
    if kubeconfig:
        kwargs["kubeconfig"] = kubeconfig
    label = f"{manifest.get('kind')} {name}"
    try:
        if __salt__["k8s_api.get"](manifest, **kwargs) is None:
            ret["comment"] = f"{label} is absent"
            return ret
        if __opts__["test"]:
            ret["result"] = None
            ret["changes"] = {"deleted": name}
            ret["comment"] = f"{label} would be deleted"
            return ret
        path = __utils__["k8s_control_plane.object_path"](manifest)
        resp = __salt__["k8s_api.request"]("DELETE", path, **kwargs)
        if resp["status"] not in (200, 202, 404):
            raise CommandExecutionError(f"DELETE {path}: {resp['status']} {resp['body']}")
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"{label}: {exc}"
        return ret
    ret["changes"] = {"deleted": name}
    ret["comment"] = f"{label} deleted"
    return ret
