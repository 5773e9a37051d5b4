"""Shared fixtures: the clusters' pillar with a throwaway PKI."""

import pathlib
import shutil

import pytest
import salt._logging.impl

from tests.support import pki

REPO = pathlib.Path(__file__).resolve().parents[1]
CLUSTERS = ("hardway", "example")


@pytest.fixture(scope="session")
def cluster_secrets():
    """{cluster: secrets mapping} for the shipped clusters."""
    return {c: pki.secrets_for_cluster_file(REPO / "pillar" / f"{c}.sls") for c in CLUSTERS}


@pytest.fixture(scope="session")
def secrets_root(tmp_path_factory, cluster_secrets):
    """A pillar root holding <cluster>-secrets.sls for every shipped cluster."""
    root = tmp_path_factory.mktemp("secrets-pillar")
    for cluster, secrets in cluster_secrets.items():
        pki.write_secrets_sls(root / f"{cluster}-secrets.sls", secrets)
    return root


@pytest.fixture(scope="session", autouse=True)
def _quiet_salt_logging():
    """Salt prints '--- Logging error ---' at exit under pytest's capture otherwise."""
    yield
    salt._logging.impl.shutdown_temp_handler()


def copy_tree(src, dst):
    shutil.copytree(src, dst, dirs_exist_ok=True)
