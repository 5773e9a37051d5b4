"""write_private (_utils/k8s_control_plane/files.py): the master's secret files, 0600, whole
or not at all; made once where asked."""

import os
import stat

import pytest

from tests.support.cluster import utils_mapping

write_private = utils_mapping()["k8s_control_plane.write_private"]


def test_written_root_only_and_replaced_whole(tmp_path):
    path = tmp_path / "state.json"
    write_private(str(path), "one\n")
    write_private(str(path), "two\n")
    assert path.read_text() == "two\n"
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary left


def test_made_once_never_replaces_an_existing_file(tmp_path):
    path = tmp_path / "ca-key.pem"
    write_private(str(path), "first\n", replace=False)
    with pytest.raises(FileExistsError):
        write_private(str(path), "second\n", replace=False)
    assert path.read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca-key.pem"]


def test_a_link_at_the_temporary_name_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    path = tmp_path / "state.json"
    os.symlink(target, f"{path}.tmp-{os.getpid()}")
    with pytest.raises(FileExistsError):
        write_private(str(path), "secret\n")
    assert not target.exists() and not path.exists()
