"""Load the project's Salt modules as plain Python modules, dunders injected."""

import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def load(kind, name, **dunders):
    """Import _modules/<name>.py or _states/<name>.py with Salt's dunders set."""
    path = REPO / kind / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"k8s_test_{kind}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    defaults = {
        "__salt__": {},
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
