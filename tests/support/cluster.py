"""
Shared helpers of the unit tests: the project's _utils loaded as plain Python
(and as the ``__utils__`` mapping Salt's loader would build), the clusters of
pillar/ merged as ``k8s_cluster.config`` merges them, and small editors of a
configuration.

The merged configurations are built from the repository's parameter files
(defaults, os_family, the cluster's profile) under the cluster's pillar file,
plus a throwaway PKI as the secrets.
"""

import copy
import functools
import importlib.util
import pathlib
import sys
import types

import yaml

from tests.support import pki

REPO = pathlib.Path(__file__).resolve().parents[2]
# The formula's root under salt/ (k8s_cluster's default k8s_control_plane_root).
ROOT = "k8s_control_plane"
PREFIX = "k8s_control_plane:"
DELETE = object()


# --------------------------------------------------------------------------
# Loading the project's files
# --------------------------------------------------------------------------


def load_file(path, name):
    """Import a Python file as module ``name`` (not registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def utils_package():
    """
    _utils/k8s_control_plane/ as plain Python: the package Salt syncs as a utils module (its
    submodules import each other relatively, so it is registered in sys.modules under a name
    of its own).
    """
    name = "k8s_test_utils_k8s_control_plane"
    path = REPO / "_utils" / "k8s_control_plane"
    spec = importlib.util.spec_from_file_location(
        name, path / "__init__.py", submodule_search_locations=[str(path)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def utils_mapping():
    """
    ``__utils__`` as Salt's loader builds it from _utils/: ``"k8s_control_plane.<function>"``
    for each public function the package's ``__init__`` holds (names starting with ``_``
    are not packed).
    """
    package = utils_package()
    return {
        f"k8s_control_plane.{attr}": value
        for attr, value in vars(package).items()
        if isinstance(value, types.FunctionType) and not attr.startswith("_")
    }


def rules():
    """_utils/k8s_control_plane/: the cluster's pure rules."""
    return utils_package()


def objects():
    """_utils/k8s_control_plane/objects.py: the Kubernetes objects' pure rules."""
    return utils_package().objects


# --------------------------------------------------------------------------
# The salt/ tree
# --------------------------------------------------------------------------


def salt_path(rel):
    """salt/<rel>; before the formula moved under salt/k8s_control_plane/, the old place."""
    path = REPO / "salt" / rel
    old = REPO / "salt" / rel.removeprefix(f"{ROOT}/")
    return path if path.exists() or not old.exists() else old


@functools.cache
def _read_doc(rel):
    path = salt_path(rel)
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None


def read_doc(rel):
    """salt://<rel> as YAML (a fresh copy), None when the file does not exist."""
    return copy.deepcopy(_read_doc(rel))


def salt_tree(saltenv=None, prefix=""):
    """What cp.list_master lists for file_roots [salt/] (symlinked dirs skipped)."""
    base = REPO / "salt"
    found = []
    for path in base.rglob("*.*"):
        rel = str(path.relative_to(base))
        if not rel.startswith("_") and rel.startswith(prefix):
            found.append(rel)
    return sorted(found)


def versions_table():
    """The version table: salt/k8s_control_plane/controlplane/parameters/versions.yaml."""
    return read_doc(f"{ROOT}/controlplane/parameters/versions.yaml")


# --------------------------------------------------------------------------
# The clusters of pillar/
# --------------------------------------------------------------------------


def parameter_layers(os_family, profile):
    """(defaults, os_layers, profile_layers) as k8s_cluster.config reads them."""

    def layer(kind, value=None):
        return [(rel, read_doc(rel)) for rel in rules().layer_files(ROOT, kind, value)]

    return layer("defaults"), layer("os_family", os_family), layer("profile", profile)


@functools.cache
def cluster_secrets(cluster):
    """The secrets of a cluster: one throwaway PKI per cluster and test session."""
    return pki.secrets_for_cluster_file(REPO / "pillar" / f"{cluster}.sls")


def cluster_pillar(cluster):
    """pillar/<cluster>.sls's k8s_control_plane, with its secrets (a fresh copy)."""
    text = (REPO / "pillar" / f"{cluster}.sls").read_text(encoding="utf-8")
    pillar = yaml.safe_load(text)["k8s_control_plane"]
    pillar["secrets"] = copy.deepcopy(cluster_secrets(cluster))
    pillar["pki"] = {"source": "pillar"}  # the throwaway PKI supplies every file
    return pillar


def cluster_config(cluster, os_family="Debian"):
    """The merged configuration of a cluster, built as k8s_cluster.config does."""
    return merged_config(cluster_pillar(cluster), os_family)


def merged_config(pillar, os_family="Debian"):
    """The parameter layers with ``pillar`` (a k8s_control_plane mapping) merged over them."""
    defaults, os_layers, _ = parameter_layers(os_family, None)
    profile = rules().profile_of(pillar, defaults)
    _, _, profile_layers = parameter_layers(os_family, profile)
    return rules().merge_layers(defaults, os_layers, profile_layers, pillar)


def set_path(cfg, path, value):
    """Set cfg at 'a:0:b' (list indexes as numbers); DELETE removes the key."""
    parts = [int(p) if p.isdigit() else p for p in path.split(":")]
    node = cfg
    for part in parts[:-1]:
        node = node[part]
    if value is DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return cfg


def errors_for(errors, key):
    """The errors filed under exactly this key."""
    return [e for e in errors if e.startswith(f"{PREFIX}{key}: ")]


def cluster_dunders(pillar, minion_id, os_family="Debian", config_opts=None):
    """
    Dunders for k8s_cluster.config/validate: cp reads the repository's salt/
    tree; config.get answers from ``config_opts`` (else the default); the
    grains carry the controller's address on the VIP interface.
    """
    controllers = pillar.get("controllers") if isinstance(pillar, dict) else None
    controllers = controllers if isinstance(controllers, list) else []
    address = next(
        (c.get("address") for c in controllers if isinstance(c, dict) and c.get("id") == minion_id),
        None,
    )
    vip = pillar.get("vip") if isinstance(pillar, dict) else None
    interface = (vip.get("interface") if isinstance(vip, dict) else None) or "eth0"
    ip4 = {"lo": ["127.0.0.1"], interface: [address] if address else []}

    def get_file_str(url):
        return salt_path(url.removeprefix("salt://")).read_text(encoding="utf-8")

    def cache_files(urls):
        return [str(salt_path(url.removeprefix("salt://"))) for url in urls]

    def config_get(key, default=None):
        return (config_opts or {}).get(key, default)

    return {
        "__salt__": {
            "cp.list_master": salt_tree,
            "cp.get_file_str": get_file_str,
            "cp.cache_files": cache_files,
            "config.get": config_get,
        },
        "__pillar__": {"k8s_control_plane": pillar},
        "__grains__": {"id": minion_id, "os_family": os_family, "ip4_interfaces": ip4},
        "__opts__": {"test": False},
        "__context__": {},
    }
