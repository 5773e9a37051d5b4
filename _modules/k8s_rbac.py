"""
The seed's kubelet RBAC objects as manifests, with the API version the
cluster's Kubernetes version serves and the kubelet API subresources it
needs (k8s_flags.apis, from the version table's
``kubelet_api_resources``; the rule:
``_utils/k8s_control_plane/objects.py``, ``rbac_manifests``).
"""

import logging
from typing import Any

log = logging.getLogger(__name__)

__virtualname__ = "k8s_rbac"


def __virtual__():
    # Shells out to nothing: a function of the configuration.
    return __virtualname__


def manifests() -> list[dict[str, Any]]:
    """
    Return the ClusterRole and ClusterRoleBinding this cluster applies.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_rbac.manifests --out=yaml
    """
    cfg = __salt__["k8s_cluster.config"]()
    apis = __salt__["k8s_flags.apis"]()
    api_version = apis["rbac"]
    resources = apis.get("kubelet_api_resources") or []
    log.debug("k8s_rbac: manifests at %s, kubelet API %s", api_version, resources)
    return __utils__["k8s_control_plane.rbac_manifests"](cfg["rbac"], api_version, resources)
