"""_runners/k8s_snapshot.py (issue 21) with a stand-in for Salt's LocalClient: the snapshot
taken on the first controller that can, moved from the master's cache of pushed files into the
cluster's folder root-only, opened with the master's backup key to check it, pruned to the
cluster's retention; a changed file refused and nothing kept; no controller able: each one's
answer named."""

import base64
import datetime
import hashlib
import io
import os
import stat

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.cluster import REPO, load_file, utils_mapping

UTILS = utils_mapping()
KEY = os.urandom(32)
DATABASE = os.urandom(1024)  # etcd's file: whole pages of 512 bytes, then its SHA-256


def _sealed(data: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    UTILS["k8s_control_plane.seal_snapshot"](
        io.BytesIO(data + hashlib.sha256(data).digest()), out, key
    )
    return out.getvalue()


class _Client:
    """LocalClient.cmd: controller-1 fails, controller-2 pushes ``body`` (cp.push's path)."""

    def __init__(self, cachedir, body, keep=2, max_age_days=30):
        self.cachedir, self.body, self.calls = cachedir, body, []
        self.keep, self.max_age_days = keep, max_age_days

    def cmd(self, minion, fun, kwarg=None, timeout=None, full_return=False):
        self.calls.append((minion, fun, kwarg))
        if minion == "k8s-controller-1":
            return {minion: {"ret": "k8s_etcd: ... is not healthy", "retcode": 1}}
        stamp = datetime.datetime.now(datetime.UTC)
        name = UTILS["k8s_control_plane.snapshot_name"]("hardway", stamp, minion, 77)
        upload = f"/k8s_control_plane/hardway/{name}"
        path = os.path.join(self.cachedir, "minions", minion, "files", upload.lstrip("/"))
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as handle:  # cp.push leaves it world-readable
            handle.write(self.body)
        ret = {
            "name": name,
            "upload_path": upload,
            "bytes": 10,
            "sealed_bytes": len(self.body),
            "status": {"revision": 77, "totalKey": 5},
            "keep": self.keep,
            "max_age_days": self.max_age_days,
        }
        return {minion: {"ret": ret, "retcode": 0}}


@pytest.fixture
def runner(tmp_path, monkeypatch):
    module = load_file(REPO / "_runners" / "k8s_snapshot.py", "k8s_test_runner_k8s_snapshot")
    pki = tmp_path / "pki" / "k8s_control_plane" / "hardway"
    pki.mkdir(parents=True)
    (pki / "backup_key").write_text(base64.b64encode(KEY).decode() + "\n")
    module.__opts__ = {
        "cachedir": str(tmp_path / "cache"),
        "pki_dir": str(tmp_path / "pki"),
        "k8s_snapshots_dir": str(tmp_path / "snapshots"),
    }
    module.__utils__ = UTILS
    module.__salt__ = {
        "salt.cmd": lambda fun, name, command: {
            "cluster": "hardway",
            "controllers": ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"],
        }
    }

    def use(body):
        client = _Client(str(tmp_path / "cache"), body)
        monkeypatch.setattr(module.salt.client, "get_local_client", lambda **_kw: client)
        return client

    module.use = use
    return module


def _old(directory, days):
    taken = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    name = UTILS["k8s_control_plane.snapshot_name"]("hardway", taken, "k8s-controller-3", days)
    (directory / name).write_bytes(b"sealed")
    return name


def test_a_snapshot_is_kept_verified_root_only_and_pruned(runner, tmp_path):
    directory = tmp_path / "snapshots" / "hardway"
    directory.mkdir(parents=True)
    older = [_old(directory, days) for days in (3, 2, 1)]
    client = runner.use(_sealed(DATABASE))
    taken = runner.take(reason="scheduled")
    assert [c[0] for c in client.calls] == ["k8s-controller-1", "k8s-controller-2"]
    assert client.calls[1][1:] == ("k8s_etcd.snapshot_push", {"reason": "scheduled"})
    assert taken["from"] == "k8s-controller-2" and taken["revision"] == 77
    assert "on the master (opened, trailer)" in taken["verified"]
    # keep 2: the new one and the newest before it; the two oldest dropped
    assert taken["kept"] == 2 and sorted(taken["dropped"]) == sorted(older[:2])
    assert sorted(p.name for p in directory.iterdir()) == sorted([taken["name"], older[2]])
    for path in (tmp_path / "snapshots", directory):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / taken["name"]).stat().st_mode) == 0o600
    assert not (tmp_path / "cache" / "minions" / "k8s-controller-2" / "files").exists()
    listed = runner.list_()
    assert [s["name"] for s in listed] == [taken["name"], older[2]]  # newest first


def test_a_changed_snapshot_is_refused_and_nothing_kept(runner, tmp_path):
    body = bytearray(_sealed(DATABASE))
    body[40] ^= 1
    runner.use(bytes(body))
    with pytest.raises(CommandExecutionError, match="does not open"):
        runner.take()
    assert list((tmp_path / "snapshots" / "hardway").iterdir()) == []
    assert not list((tmp_path / "cache").rglob("*.sealed"))


def test_no_controller_able_names_each_answer(runner, monkeypatch):
    class Down:
        def cmd(self, minion, *_a, **_k):
            return (
                {} if minion == "k8s-controller-3" else {minion: {"ret": "refused", "retcode": 1}}
            )

    monkeypatch.setattr(runner.salt.client, "get_local_client", lambda **_kw: Down())
    with pytest.raises(CommandExecutionError) as raised:
        runner.take()
    message = str(raised.value)
    assert "k8s-controller-1: refused; k8s-controller-2: refused" in message
    assert "k8s-controller-3: no answer (minion down?)" in message


def test_an_unmanaged_etcd_is_skipped(runner, monkeypatch):
    class Unmanaged:
        def cmd(self, minion, *_a, **_k):
            return {minion: {"ret": {"skipped": "etcd:managed is false"}, "retcode": 0}}

    monkeypatch.setattr(runner.salt.client, "get_local_client", lambda **_kw: Unmanaged())
    assert runner.take()["skipped"] == "etcd:managed is false"


def test_the_masters_key_is_read_where_the_ext_pillar_keeps_it():
    keys_dir = UTILS["k8s_control_plane.master_keys_dir"]
    opts = {"pki_dir": "/etc/salt/pki/master"}
    assert keys_dir(opts) == "/etc/salt/pki/master/k8s_control_plane"
    assert keys_dir(opts, "/srv/keys") == "/srv/keys"  # the ext_pillar's own argument
    configured = {**opts, "ext_pillar": [{"git": "x"}, {"k8s_pki": {"dir": "/srv/keys"}}]}
    assert keys_dir(configured) == "/srv/keys"  # what the runners read from the master's config


def test_what_an_interrupted_take_pushed_is_removed_by_the_next(runner, tmp_path):
    """The master restarted between a controller's push and the move out of its cache: the
    sealed file stays in the cache until the next take of the cluster removes it."""
    left = tmp_path / "cache" / "minions" / "k8s-controller-1" / "files" / "k8s_control_plane"
    (left / "hardway").mkdir(parents=True)
    (left / "hardway" / "hardway_20261206T225145Z_k8s-controller-1_r704.db.sealed").write_bytes(
        b"sealed"
    )
    (left / "other").mkdir()
    (left / "other" / "other_20261206T225145Z_k8s-controller-1_r1.db.sealed").write_bytes(b"x")
    runner.use(_sealed(DATABASE))
    taken = runner.take()
    assert sorted(p.name for p in (tmp_path / "snapshots" / "hardway").iterdir()) == [taken["name"]]
    # this cluster's leftover gone (its empty folders too), another cluster's untouched
    assert [p.name for p in (tmp_path / "cache").rglob("*.sealed")] == [
        "other_20261206T225145Z_k8s-controller-1_r1.db.sealed"
    ]
    assert not (left / "hardway").exists()
