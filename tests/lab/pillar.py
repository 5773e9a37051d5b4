"""What the lab's master serves as pillar: the seed's cluster, the lab's settings (the mirror,
a managed etcd), the generated secrets (tests/support/pki.py) and temporary overrides.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml

from tests.support import pki as support_pki  # the project's secrets-file writer

from .common import MIRROR_URL, PILLAR_DIR, PKI_DIR, REPO, say, write_file
from .mirror import etcd_version

# ---------------------------------------------------------------------------------------------
# PKI: tests/support/pki.py, created once per lab and reused


def ensure_pki() -> dict:
    """
    The lab's secrets (CA, certificates, keys, kubeconfigs, encryption key) for
    the seed's cluster, kept in /var/lib/k8s-salt-lab/pki (0700) and made anew
    only when the cluster file changes (addresses, VIP, service CIDR).
    """
    cluster_file = REPO / "pillar" / "hardway.sls"
    generator = Path(support_pki.__file__)
    digest = hashlib.sha256(cluster_file.read_bytes() + generator.read_bytes()).hexdigest()
    cached = PKI_DIR / "secrets.yaml"
    stamp = PKI_DIR / ".cluster-sha256"
    if cached.exists() and stamp.exists() and stamp.read_text() == digest:
        say(f"pki: {PKI_DIR} (reused)")
        return yaml.safe_load(cached.read_text())
    say(f"pki: creating a CA and certificates in {PKI_DIR}")
    PKI_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(PKI_DIR, 0o700)
    secrets_ = support_pki.secrets_for_cluster_file(cluster_file)
    write_file(cached, yaml.safe_dump(secrets_), 0o600)
    stamp.write_text(digest)
    return secrets_


def lab_pillar() -> dict:
    return {
        "k8s_control_plane": {
            "kubernetes": {"release_url": MIRROR_URL},
            "etcd": {"managed": True, "version": etcd_version(), "release_url": MIRROR_URL},
        }
    }


def ensure_pillar(secrets_: dict) -> None:
    """The lab's pillar root: its own top, the lab settings and the generated secrets."""
    PILLAR_DIR.mkdir(parents=True, exist_ok=True)
    top = {"base": {"k8s-controller-*": ["hardway", "hardway-secrets", "lab", "overrides"]}}
    write_file(
        PILLAR_DIR / "top.sls",
        "# The lab's pillar top (pillar_roots: this dir first, then the repository's pillar/).\n"
        + yaml.safe_dump(top, sort_keys=False),
    )
    write_file(
        PILLAR_DIR / "lab.sls",
        "# Lab settings: the local binary mirror and a managed etcd on the controllers.\n"
        + yaml.safe_dump(lab_pillar(), sort_keys=False),
    )
    support_pki.write_secrets_sls(PILLAR_DIR / "hardway-secrets.sls", secrets_)  # 0600
    set_overrides(None)


def set_overrides(data: dict | None) -> None:
    """
    Pillar merged over everything else (bench/ switches profiles with it, the lab tests set a
    version or an invalid case's keys and secrets); `up` resets it, so the lab runs the seed's
    pillar unchanged. Written root-only: it may hold secrets. Refresh the minions' pillar after
    a change (the orchestrations do it themselves).
    """
    write_file(
        PILLAR_DIR / "overrides.sls",
        "# Temporary overrides (bench/, tests/lab); emptied by every `up`.\n"
        + yaml.safe_dump({"k8s_control_plane": data or {}}, sort_keys=False),
        0o600,
    )
