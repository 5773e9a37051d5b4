"""Load the project's Salt modules as plain Python modules, dunders injected."""

import pytest
import salt.config
import salt.loader

from tests.support import cluster
from tests.support.cluster import (
    REPO,
    cluster_config,
    load_file,
    set_path,
    utils_mapping,
    versions_table,
)
from tests.support.pki import issue


def load(kind, name, **dunders):
    """
    Import _modules/<name>.py or _states/<name>.py with Salt's dunders set;
    ``__utils__`` holds the real functions of _utils/ unless a test passes its own.
    """
    module = load_file(REPO / kind / f"{name}.py", f"k8s_test_{kind}_{name}")
    defaults = {
        "__salt__": {},
        "__utils__": utils_mapping(),
        "__pillar__": {},
        "__grains__": {},
        "__opts__": {},
        "__context__": {},
    }
    for key, value in {**defaults, **dunders}.items():
        setattr(module, key, value)
    return module


@pytest.fixture
def modules():
    return lambda name, **dunders: load("_modules", name, **dunders)


@pytest.fixture
def state_modules():
    return lambda name, **dunders: load("_states", name, **dunders)


@pytest.fixture
def rules():
    """_utils/k8s_control_plane/, the cluster's pure rules."""
    return cluster.rules()


@pytest.fixture
def objects():
    """_utils/k8s_control_plane/objects.py, the Kubernetes objects' pure rules."""
    return cluster.objects()


@pytest.fixture(scope="module")
def cluster_at(tmp_path_factory):
    """cluster_at(version) -> (k8s_flags module loader args): the hardway cluster at
    ``version``, its PKI and rendered config files under a temporary directory."""
    made = {}

    def make(version, extra_args=None, table=None, source="pillar"):
        cfg = cluster_config("hardway")
        set_path(cfg, "pki:source", source)
        root = tmp_path_factory.mktemp(f"v{version}-{source}")
        for key, sub in (("pki_dir", "pki"), ("config_dir", "config")):
            set_path(cfg, f"controlplane:{key}", str(root / sub))
            (root / sub).mkdir()
        set_path(cfg, "controlplane:audit_log_path", str(root / "log" / "audit.log"))
        set_path(cfg, "kubernetes:version", version)
        set_path(cfg, "controlplane:extra_args", extra_args or {})
        for name, text in cfg["secrets"].items():
            if name != "encryption_key" and "." in name:
                (root / "pki" / name).write_text(text)
        # what k8s_pki.signer_managed writes from ca.pem (one CA: the same certificate)
        (root / "pki" / "ca-signer.pem").write_text(cfg["secrets"]["ca.pem"])
        if source == "salt":
            # the apiserver's own client certificate to the kubelets, as Salt issues it
            cert, key = issue(cfg["secrets"], "kubernetes", "Kubernetes", server=False)
            (root / "pki" / "apiserver-kubelet-client.pem").write_text(cert)
            (root / "pki" / "apiserver-kubelet-client-key.pem").write_text(key)
        made[version] = (cfg, table or versions_table(), root)
        return made[version]

    return make


@pytest.fixture(scope="module")
def x509_functions():
    """Salt's own x509 functions the k8s_pki ext_pillar makes keys and CAs with."""
    opts = salt.config.minion_config(None)
    opts["file_client"] = "local"
    mods = salt.loader.minion_mods(opts, whitelist=["x509"])
    return {
        "x509.create_private_key": mods["x509.create_private_key"],
        "x509.create_certificate": mods["x509.create_certificate"],
    }
