"""What the lab's master serves as pillar: the seed's cluster, the lab's settings (the mirror,
a managed etcd) and temporary overrides. The PKI is the product's (pki:source salt: the
master's ext_pillar k8s_pki keeps the CA); tests/support/pki.py's throwaway PKI only feeds
the tests that need pillar-supplied certificates (pillar_pki_override).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import yaml

from tests.support import pki as support_pki  # the project's secrets-file writer

from .common import (
    MIRROR_URL,
    PILLAR_DIR,
    PKI_DIR,
    SEED_CONTROLLERS,
    VIP_OVERRIDE,
    cluster,
    controller_count,
    controllers,
    kube_version,
    say,
    write_file,
)
from .containers import cexec
from .mirror import etcd_version

# ---------------------------------------------------------------------------------------------
# A pillar-supplied PKI (tests/support/pki.py), for the tests that need one; created once per
# lab shape and reused


def pillar_pki_override() -> dict:
    """The overrides that switch the lab's cluster to pki:source pillar with the throwaway PKI."""
    return {"pki": {"source": "pillar"}, "secrets": ensure_pki()}


def ensure_pki() -> dict:
    """
    The lab's secrets (CA, certificates, keys, kubeconfigs, encryption key) for
    the lab's cluster, kept in /var/lib/k8s-salt-lab/pki (0700), one set per
    cluster shape (addresses, VIP, service CIDR, controller count: the seed's
    three and a CONTROLLERS=5 lab each keep theirs) and per generator version.
    """
    generator = Path(support_pki.__file__)
    shape = yaml.safe_dump(cluster(), sort_keys=True).encode()
    digest = hashlib.sha256(shape + generator.read_bytes()).hexdigest()
    cached = PKI_DIR / f"secrets-{digest[:16]}.yaml"
    if cached.exists():
        say(f"pki: {cached} (reused)")
        return yaml.safe_load(cached.read_text())
    say(f"pki: creating a CA and certificates in {cached}")
    PKI_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(PKI_DIR, 0o700)
    secrets_ = support_pki.secrets_for_cluster(cluster())
    write_file(cached, yaml.safe_dump(secrets_), 0o600)
    return secrets_


def lab_pillar() -> dict:
    return {
        "k8s_control_plane": {
            "kubernetes": {"release_url": MIRROR_URL, "version": kube_version()},
            "etcd": {"managed": True, "version": etcd_version(), "release_url": MIRROR_URL},
        }
    }


def ensure_pillar() -> None:
    """The lab's pillar root: its own top, the lab settings and the overrides (no secrets:
    the master's ext_pillar k8s_pki gives the CA and the encryption key)."""
    PILLAR_DIR.mkdir(parents=True, exist_ok=True)
    top = {"base": {"k8s-controller-*": ["hardway", "lab", "overrides"]}}
    write_file(
        PILLAR_DIR / "top.sls",
        "# The lab's pillar top (pillar_roots: this dir first, then the repository's pillar/).\n"
        + yaml.safe_dump(top, sort_keys=False),
    )
    write_file(
        PILLAR_DIR / "lab.sls",
        "# Lab settings: the local binary mirror, the Kubernetes release the lab runs"
        " (make lab VERSION=...)\n# and a managed etcd on the controllers.\n"
        + yaml.safe_dump(lab_pillar(), sort_keys=False),
    )
    (PILLAR_DIR / "hardway-secrets.sls").unlink(missing_ok=True)  # an older lab's
    # Another controller count: this root's hardway.sls (the seed's file with the lab's
    # controllers) hides the repository's; with the seed's three the repository's serves.
    generated = PILLAR_DIR / "hardway.sls"
    if controller_count() == SEED_CONTROLLERS:
        generated.unlink(missing_ok=True)
    else:
        write_file(
            generated,
            f"# pillar/hardway.sls with the lab's {controller_count()} controllers (make lab"
            f" CONTROLLERS={controller_count()}); written by tools/lab/pillar.py.\n"
            + yaml.safe_dump({"k8s_control_plane": cluster()}, sort_keys=False),
        )
    set_overrides(None)


def set_overrides(data: dict | None) -> None:
    """
    Pillar merged over everything else (bench/ switches profiles with it, the lab tests set a
    version or an invalid case's keys and secrets); `up` resets it, so the lab runs the seed's
    pillar unchanged. Written root-only: it may hold secrets. Refresh the minions' pillar after
    a change (the orchestrations do it themselves).
    """
    vip = ((data or {}).get("vip") or {}).get("address")
    VIP_OVERRIDE[:] = [vip] if vip else []
    write_file(
        PILLAR_DIR / "overrides.sls",
        "# Temporary overrides (bench/, tests/lab); emptied by every `up`.\n"
        + yaml.safe_dump({"k8s_control_plane": data or {}}, sort_keys=False),
        0o600,
    )


# ---------------------------------------------------------------------------------------------
# What the controllers hold (made there with pki:source salt)


def _read_from_controller(path: str) -> str:
    errors = []
    for name in controllers():
        proc = cexec(name, f"cat {path}")
        if proc.returncode == 0 and proc.stdout:
            return proc.stdout
        errors.append(f"{name}: {proc.stderr.strip() or 'empty'}")
    raise RuntimeError(f"no controller gave {path}: {'; '.join(errors)}")


def admin_credentials() -> dict:
    """
    {"ca.pem", "admin.pem", "admin-key.pem"} from a controller's admin.kubeconfig (the lab's
    host-side probes use them; read each time: a re-issue or a pki:source switch changes them).
    """
    admin = yaml.safe_load(_read_from_controller("/var/lib/kubernetes/admin.kubeconfig"))
    cluster_ = admin["clusters"][0]["cluster"]
    user = admin["users"][0]["user"]
    return {
        "ca.pem": base64.b64decode(cluster_["certificate-authority-data"]).decode(),
        "admin.pem": base64.b64decode(user["client-certificate-data"]).decode(),
        "admin-key.pem": base64.b64decode(user["client-key-data"]).decode(),
    }
