"""
The utils modules through Salt's own loader, as a minion or the master gets
them after ``saltutil.sync_utils``: k8s_objects and k8s_orchestration use the
rules of k8s_control_plane.py from their own directory.
"""

import shutil

import salt.config
import salt.loader

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


def _synced(tmp_path, names):
    """The _utils files in a directory of their own, as sync_utils puts them in extmods/utils."""
    target = tmp_path / "synced" / "utils"
    target.mkdir(parents=True)
    for name in names:
        shutil.copy(REPO / "_utils" / f"{name}.py", target / f"{name}.py")
    return target


def test_the_shared_rules_through_the_loader(tmp_path):
    utils = _utils(
        _synced(tmp_path, ["k8s_control_plane", "k8s_objects", "k8s_orchestration"]), tmp_path
    )
    rows = [{"since": "1.33", "api": "new"}, {"since": "1.18", "api": "old"}]
    assert utils["k8s_objects.row_at"](rows, (1, 34))["api"] == "new"
    assert utils["k8s_objects.row_at"](rows, (1, 17)) is None
    running = {"c1": {"kube-apiserver": "1.35.4"}}
    assert utils["k8s_orchestration.skew_errors"]("1.37.0", running) == [
        "c1: kube-apiserver runs 1.35.4; 1.37.0 is more than one minor ahead: "
        "upgrade one minor at a time (next: 1.36.x)"
    ]
    # Only functions are packed: the loaded sibling and its helper are not.
    assert not [f for f in utils if f.split(".")[1].startswith("_") or "sibling" in f]


def test_the_rules_come_from_the_synced_directory_not_the_repository(tmp_path):
    """Without k8s_control_plane.py beside them, the two cannot load (nothing found elsewhere)."""
    utils = _utils(_synced(tmp_path, ["k8s_objects", "k8s_orchestration"]), tmp_path)
    assert "k8s_objects.row_at" not in utils
    assert "k8s_orchestration.skew_errors" not in utils
