"""
Helpers of the PKI functional tests (pki:source salt): the master's CA and
the cluster's service-account signing key made by the real ext_pillar
(_pillar/k8s_pki.py) through Salt's own x509 module, and a controller (an
in-process masterless minion) whose pillar holds what that ext_pillar gives,
with the PKI directories in a temporary directory.
"""

import base64
import copy
import pathlib
import shutil

import salt.config
import salt.loader
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.cluster import REPO, load_file, utils_mapping, utils_package
from tests.support.minion import Minion, controller_grains

CLUSTER_FILE = "hardway"
MINION = "k8s-controller-1"
PKI_SLS = "k8s_control_plane.pki,k8s_control_plane.pki.etcd"


def cluster_file():
    """The seed's cluster as the lab runs it: etcd managed (the master makes a CA only then)."""
    text = (REPO / "pillar" / f"{CLUSTER_FILE}.sls").read_text(encoding="utf-8")
    cfg = yaml.safe_load(text)["k8s_control_plane"]
    cfg["etcd"] = {**cfg.get("etcd", {}), "managed": True}
    return cfg


def x509_module(pillar=None):
    """Salt's x509 execution module (x509_v2) through Salt's loader, with ``pillar``."""
    opts = salt.config.minion_config(None)
    opts.update({"file_client": "local", "pillar": pillar or {}})
    return salt.loader.minion_mods(opts, whitelist=["x509", "pillar", "config"])


def ext_pillar_module(pki_dir):
    """_pillar/k8s_pki.py as the master loads it: the real x509 functions, the real utils."""
    module = load_file(REPO / "_pillar" / "k8s_pki.py", "k8s_test_pillar_k8s_pki")
    mods = x509_module()
    module.__salt__ = {
        "x509.create_private_key": mods["x509.create_private_key"],
        "x509.create_certificate": mods["x509.create_certificate"],
    }
    module.__utils__ = utils_mapping()
    module.__opts__ = {"pki_dir": str(pki_dir)}
    return module


def master_pillar(master_dir, minion_id=MINION):
    """What the master's ext_pillar k8s_pki gives ``minion_id`` of the hardway cluster."""
    module = ext_pillar_module(master_dir)
    given = module.ext_pillar(minion_id, {"k8s_control_plane": cluster_file()})
    assert given, "the ext_pillar gave nothing to a listed controller"
    return given


class Controller:
    """
    One controller (``minion_id``, k8s-controller-1 unless told) of the
    hardway cluster with pki:source salt and a managed etcd: its pillar is the
    cluster file, what the master gives and ``overrides``; the PKI and etcd
    directories are under ``base``.
    """

    def __init__(self, base, given, overrides=None, minion_id=MINION):
        self.minion_id = minion_id
        self.base = pathlib.Path(base)
        self.given = copy.deepcopy(given)
        self.pki_dir = self.base / "var-lib-kubernetes"
        self.etcd_dir = self.base / "etc-etcd"
        self.pillar_root = self.base / "pillar"
        self.pillar_root.mkdir(parents=True, exist_ok=True)
        (self.pillar_root / "top.sls").write_text(
            f"base:\n  '*':\n    - {CLUSTER_FILE}\n    - pki\n", encoding="utf-8"
        )
        self._write(overrides or {})
        controller = next(c for c in cluster_file()["controllers"] if c["id"] == minion_id)
        interface = cluster_file()["vip"]["interface"]
        self.minion = Minion(
            minion_id,
            self.base / "minion",
            [self.pillar_root, REPO / "pillar"],
            controller_grains(controller, interface),
        )

    def _write(self, overrides):
        cfg = {
            "pki": {"source": "salt"},
            "controlplane": {"pki_dir": str(self.pki_dir)},
            "etcd": {
                "managed": True,
                "version": "3.4.23",
                "release_url": "https://example.invalid/etcd",
                "config_dir": str(self.etcd_dir),
                "data_dir": str(self.base / "var-lib-etcd"),
            },
        }
        _merge(cfg, copy.deepcopy(self.given["k8s_control_plane"]))
        _merge(cfg, copy.deepcopy(overrides))
        doc = {
            "k8s_control_plane": cfg,
            "x509_signing_policies": self.given["x509_signing_policies"],
        }
        (self.pillar_root / "pki.sls").write_text(yaml.safe_dump(doc), encoding="utf-8")

    def reconfigure(self, overrides):
        """Replace the overrides and recompile the pillar (as a pillar refresh does)."""
        self._write(overrides)
        self.minion.refresh_pillar()
        return self

    def apply(self, test=False):
        ret = self.minion.modules["state.sls"](PKI_SLS, test=test)
        assert isinstance(ret, dict), ret
        return ret

    def seed_from(self, other):
        """Start from another controller's applied PKI (modes kept): saves an apply."""
        for src, dst in ((other.pki_dir, self.pki_dir), (other.etcd_dir, self.etcd_dir)):
            shutil.copytree(src, dst, symlinks=True)
            shutil.copystat(src, dst)
        return self

    def secret_texts(self):
        """Every private key on disk, the CA key and the encryption key, as they would leak."""
        texts = [k["secret"] for k in self.given["k8s_control_plane"]["secrets"]["encryption_keys"]]
        for directory in (self.pki_dir, self.etcd_dir):
            for path in sorted(directory.glob("*-key.pem")):
                pem = path.read_text(encoding="utf-8")
                texts.append(pem)
                texts.append(base64.b64encode(pem.encode()).decode())
        return texts


def _merge(dst, src):
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = value
    return dst


# --------------------------------------------------------------------------
# State returns
# --------------------------------------------------------------------------


def by_id(ret):
    """{state id: [returns]} (x509 states add their file.managed as a sub-state run)."""
    found = {}
    for value in ret.values():
        found.setdefault(value["__id__"], []).append(value)
    return found


def changed_ids(ret):
    return {sid for sid, values in by_id(ret).items() if any(v["changes"] for v in values)}


def failed(ret):
    return {k: v for k, v in ret.items() if v["result"] is False}


def state_id(entry):
    return utils_package().pki.pki_state_id("k8s_control_plane", entry)


# --------------------------------------------------------------------------
# Reading what was made
# --------------------------------------------------------------------------


def load_cert(path):
    return x509.load_pem_x509_certificate(pathlib.Path(path).read_bytes())


def load_key(path):
    return serialization.load_pem_private_key(pathlib.Path(path).read_bytes(), password=None)


def public_der(key):
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def subject(cert):
    """{"CN": ..., "O": ...} of a certificate's subject."""
    names = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O"}
    return {names[a.oid]: a.value for a in cert.subject if a.oid in names}


def ekus(cert):
    value = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    names = {
        ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
        ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    }
    return {names.get(oid, oid.dotted_string) for oid in value}


def sans(cert):
    """The subjectAltName entries as x509_v2 writes them: IP:..., DNS:..."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *(f"IP:{ip}" for ip in ext.get_values_for_type(x509.IPAddress)),
        *(f"DNS:{name}" for name in ext.get_values_for_type(x509.DNSName)),
    ]


def kubeconfig_parts(path):
    """(server, ca, cert, key) embedded in a kubeconfig, decoded."""
    doc = yaml.safe_load(pathlib.Path(path).read_text(encoding="utf-8"))
    cluster = doc["clusters"][0]["cluster"]
    user = doc["users"][0]["user"]

    def decode(value):
        return base64.b64decode(value).decode()

    return (
        doc,
        cluster["server"],
        decode(cluster["certificate-authority-data"]),
        decode(user["client-certificate-data"]),
        decode(user["client-key-data"]),
    )
