"""Load the project's Salt modules as plain Python modules, dunders injected."""

import pytest

from tests.support import cluster
from tests.support.cluster import REPO, load_file, utils_mapping


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
    """_utils/k8s_control_plane.py, the cluster's pure rules."""
    return cluster.rules()


@pytest.fixture
def objects():
    """_utils/k8s_objects.py, the Kubernetes objects' pure rules."""
    return cluster.objects()
