"""
The golden files of the functional tests (tests/functional/golden/<case>/<minion>/<path>):
which rendered files have one, and the one way to compare with them or regenerate them
(``UPDATE_GOLDEN=1``; review the diff). test_render (every controller of each cluster) and
test_versions (the hardway cluster at other Kubernetes minors) share them.
"""

import os

from tests.support.minion import REPO

GOLDEN = REPO / "tests" / "functional" / "golden"
# The files under golden/ hold no secrets; certificates and keys differ per run.
# The load balancer's files do not depend on the Kubernetes version ...
LOAD_BALANCER_FILES = (
    "etc/keepalived/keepalived.conf",
    "etc/haproxy/haproxy.cfg",
)
# ... these do (flags, config API versions, the RBAC objects' rules).
VERSIONED_FILES = (
    "etc/systemd/system/kube-apiserver.service",
    "etc/systemd/system/kube-controller-manager.service",
    "etc/systemd/system/kube-scheduler.service",
    "etc/kubernetes/config/kube-scheduler.yaml",
    "var/lib/kubernetes/encryption-config.yaml",
    "_api/ClusterRole-system_kube-apiserver-to-kubelet.yaml",
    "_api/ClusterRoleBinding-system_kube-apiserver.yaml",
)
GOLDEN_FILES = LOAD_BALANCER_FILES + VERSIONED_FILES


def updating():
    """UPDATE_GOLDEN is set: the golden files are rewritten from what is rendered."""
    return bool(os.environ.get("UPDATE_GOLDEN"))


def golden_text(golden, rendered_text):
    """The golden file's text; with UPDATE_GOLDEN set, first rewritten from ``rendered_text``."""
    if updating() and rendered_text is not None:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered_text)
    return golden.read_text()
