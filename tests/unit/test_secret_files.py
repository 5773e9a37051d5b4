"""
Files that may hold secrets (make render's keys, kubeconfigs and encryption
config; the secrets pillar files of tests/support/pki.py) are written with
their mode from the first byte: never created world-readable and narrowed
afterwards. ``os.chmod`` is disabled in these tests, so a write-then-chmod
would leave the file at the umask's 0644.
"""

import os
import stat

import pytest

from tests.support import pki
from tests.support.files import write_file
from tools import render


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(autouse=True)
def no_chmod(monkeypatch):
    """A default umask, and no chmod by path: only the mode the file was written with counts."""
    old = os.umask(0o022)
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    yield
    os.umask(old)


def test_a_new_file_has_its_mode_from_the_start(tmp_path):
    write_file(tmp_path / "key.pem", "KEY", 0o600)
    assert mode_of(tmp_path / "key.pem") == 0o600
    assert (tmp_path / "key.pem").read_text() == "KEY"


def test_an_existing_readable_file_is_narrowed_before_the_text_goes_in(tmp_path, monkeypatch):
    path = tmp_path / "admin.kubeconfig"
    path.write_text("old")
    assert mode_of(path) == 0o644
    seen = []
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))  # the mode when the text is written
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    write_file(path, "new", 0o600)
    assert (mode_of(path), path.read_text(), seen) == (0o600, "new", [0o600])


def test_a_symlink_is_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched")
    (tmp_path / "key.pem").symlink_to(elsewhere)
    with pytest.raises(OSError):
        write_file(tmp_path / "key.pem", "KEY", 0o600)
    assert elsewhere.read_text() == "untouched"


@pytest.mark.parametrize(("mode", "expected"), [("0600", 0o600), ("0644", 0o644), (None, 0o644)])
def test_render_writes_each_file_with_its_mode(tmp_path, mode, expected):
    out = tmp_path / "out"
    render._write(out, "/var/lib/kubernetes/kubernetes-key.pem", "KEY", mode)
    path = out / "var/lib/kubernetes/kubernetes-key.pem"
    assert (mode_of(path), path.read_text()) == (expected, "KEY")


def test_render_narrows_a_file_left_by_an_earlier_run(tmp_path):
    out = tmp_path / "out"
    render._write(out, "/etc/encryption-config.yaml", "old", "0644")
    render._write(out, "/etc/encryption-config.yaml", "secret", "0600")
    assert mode_of(out / "etc/encryption-config.yaml") == 0o600


def test_a_secrets_pillar_file_is_0600_even_over_a_readable_one(tmp_path):
    path = tmp_path / "hardway-secrets.sls"
    path.write_text("k8s_control_plane: {}\n")
    assert mode_of(path) == 0o644
    pki.write_secrets_sls(path, {"encryption_key": "c2VjcmV0"})
    assert mode_of(path) == 0o600
    assert "encryption_key: c2VjcmV0" in path.read_text()
    pki.write_secrets_sls(tmp_path / "new-secrets.sls", {"encryption_key": "x"})
    assert mode_of(tmp_path / "new-secrets.sls") == 0o600
