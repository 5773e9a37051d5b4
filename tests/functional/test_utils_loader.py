"""
The utils package through Salt's own loader, as a minion or the master gets it after
``saltutil.sync_utils`` (a copy of the folder in extmods/utils): the loader imports
_utils/k8s_control_plane/ as a package, its submodules import each other relatively, and
exactly the public functions its ``__init__`` holds are packed as ``__utils__``.
"""

import shutil

import salt.config
import salt.loader

from tests.support.cluster import utils_mapping
from tests.support.minion import REPO


def _utils(utils_dir, tmp_path):
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "utils_dirs": [str(utils_dir)],
            "cachedir": str(tmp_path / "cache"),
            "extension_modules": str(tmp_path / "extmods"),
        }
    )
    return salt.loader.utils(opts)


def _synced(tmp_path):
    """The package in a directory of its own, as sync_utils puts it in extmods/utils."""
    target = tmp_path / "synced" / "utils"
    target.mkdir(parents=True)
    shutil.copytree(
        REPO / "_utils" / "k8s_control_plane",
        target / "k8s_control_plane",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return target


def test_the_package_through_the_loader(tmp_path):
    utils = _utils(_synced(tmp_path), tmp_path)
    rows = [{"since": "1.33", "api": "new"}, {"since": "1.18", "api": "old"}]
    assert utils["k8s_control_plane.row_at"](rows, (1, 34))["api"] == "new"
    assert utils["k8s_control_plane.row_at"](rows, (1, 17)) is None
    running = {"c1": {"kube-apiserver": "1.35.4"}}
    # orchestration.py reads versions with facts.parse_minor: a relative import that works
    assert utils["k8s_control_plane.skew_errors"]("1.37.0", running) == [
        "c1: kube-apiserver runs 1.35.4; 1.37.0 is more than one minor ahead: "
        "upgrade one minor at a time (next: 1.36.x)"
    ]
    assert utils["k8s_control_plane.pillar_key"]() == "k8s_control_plane"


def test_the_loader_packs_what_the_tests_mapping_says(tmp_path):
    """tests/support/cluster.py utils_mapping (what the unit tests hand modules as __utils__)
    is what the loader packs: every public function of __init__, nothing private, no
    submodule, no constant."""
    utils = _utils(_synced(tmp_path), tmp_path)
    loaded = {name for name in utils if name.startswith("k8s_control_plane.")}
    assert loaded == set(utils_mapping())
    assert not [name for name in loaded if name.split(".", 1)[1].startswith("_")]
    assert "k8s_control_plane.PILLAR_KEY" not in loaded
    assert "k8s_control_plane.schema" not in loaded


def test_the_rules_come_from_the_synced_directory_not_the_repository(tmp_path):
    """Without the package in the synced directory nothing is found (nothing elsewhere)."""
    empty = tmp_path / "synced" / "utils"
    empty.mkdir(parents=True)
    utils = _utils(empty, tmp_path)
    assert "k8s_control_plane.skew_errors" not in utils


def test_a_resync_loads_the_new_submodules(tmp_path):
    """A minion that syncs a changed submodule and loads its utils again runs the new code
    (the loader re-runs __init__ into the same module; stale submodules are dropped)."""
    synced = _synced(tmp_path)
    assert _utils(synced, tmp_path)["k8s_control_plane.pillar_key"]() == "k8s_control_plane"
    names = synced / "k8s_control_plane" / "names.py"
    names.write_text(
        names.read_text().replace('PILLAR_KEY = "k8s_control_plane"', 'PILLAR_KEY = "changed"')
    )
    assert _utils(synced, tmp_path)["k8s_control_plane.pillar_key"]() == "changed"
