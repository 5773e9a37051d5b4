"""The formula's names, each defined once: the pillar key, the formula root, the
components, the profiles and the files the control plane takes from its secrets."""

from collections.abc import Callable
from typing import Any

PILLAR_KEY = "k8s_control_plane"
# The formula's folder on the master (salt://k8s_control_plane/); a master or minion that
# serves it under another name sets ROOT_OPTION in its config.
DEFAULT_ROOT = "k8s_control_plane"
ROOT_OPTION = "k8s_control_plane_root"
COMPONENTS = ("cluster", "loadbalancer", "pki", "etcd", "controlplane", "rbac")
PROFILES = ("tuned", "seed")
COMPONENT_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The files the control plane takes from k8s_control_plane:secrets, in the
# order they are placed, with their modes: certificates are public (0644),
# keys and kubeconfigs (client credentials) are root-only.
PKI_FILES = (
    ("ca.pem", "0644"),
    ("ca-key.pem", "0600"),
    ("kubernetes.pem", "0644"),
    ("kubernetes-key.pem", "0600"),
    ("service-account.pem", "0644"),
    ("service-account-key.pem", "0600"),
    ("admin.kubeconfig", "0600"),
    ("kube-controller-manager.kubeconfig", "0600"),
    ("kube-scheduler.kubeconfig", "0600"),
)
SECRET_FILES = tuple(name for name, _ in PKI_FILES)
# backup_key seals the etcd snapshots that leave a controller (k8s_etcd.snapshot_push).
SECRET_KEYS = (
    *SECRET_FILES,
    "encryption_key",
    "encryption_keys",
    "vrrp_auth_pass",
    "backup_key",
)


def pillar_key() -> str:
    """The pillar key every cluster file writes under (``k8s_control_plane``)."""
    return PILLAR_KEY


def formula_root(config_get: Callable[[str, str], Any]) -> str:
    """
    The formula's root folder on the master, without slashes: ROOT_OPTION from the
    minion's or master's config (``config_get`` is ``__salt__["config.get"]``), else
    DEFAULT_ROOT.
    """
    return str(config_get(ROOT_OPTION, DEFAULT_ROOT)).strip("/")
