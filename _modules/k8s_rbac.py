"""
The seed's kubelet RBAC objects as manifests, with the API version the
cluster's Kubernetes version serves (the rule: ``_utils/k8s_objects.py``,
``rbac_manifests``).
"""

import logging

log = logging.getLogger(__name__)

__virtualname__ = "k8s_rbac"


def __virtual__():
    # Shells out to nothing: a function of the configuration.
    return __virtualname__


def manifests():
    """
    Return the ClusterRole and ClusterRoleBinding this cluster applies.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_rbac.manifests --out=yaml
    """
    cfg = __salt__["k8s_cluster.config"]()
    api_version = __salt__["k8s_controlplane.apis"]()["rbac"]
    log.debug("k8s_rbac: manifests at %s", api_version)
    return __utils__["k8s_objects.rbac_manifests"](cfg["rbac"], api_version)
