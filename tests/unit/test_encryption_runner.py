"""_runners/k8s_encryption.py (issue 21) with Salt stood in: the controllers' configs follow the
master's key list when orch.control_plane rolls it out, etcd's counts follow the rewrite. A whole
rotation, a resumed one, and the refusals that change nothing."""

import json

import pytest
import salt.client
from salt.exceptions import CommandExecutionError

from tests.support.cluster import REPO, load_file, utils_mapping, utils_package

IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]
KEY1 = "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE="


class World:
    """The master's folder, the apiservers' key names, etcd's Secrets by key."""

    def __init__(self, base):
        self.base = base
        self.dir = base / "hardway"
        self.dir.mkdir(parents=True)
        (self.dir / "encryption_key").write_text(KEY1 + "\n")
        self.configs = {m: [("key1", KEY1)] for m in IDS}
        self.etcd = {"key1": 3}
        self.pending: dict = {}
        self.rolls: list = []
        self.snapshots: list = []
        self.roll_breaks = False

    def keys(self):
        path = self.dir / "encryption_keys.json"
        state = json.loads(path.read_text()) if path.exists() else None
        return [(k["name"], k["secret"]) for k in state["keys"]] if state else [("key1", KEY1)]

    def names(self):
        return [name for name, _ in self.keys()]

    def roll(self, sls, pillar=None):
        self.rolls.append(self.names())
        if not self.roll_breaks:
            self.configs = {m: self.keys() for m in IDS}
        return {"data": {"master": {"a": {"__id__": "orch-verify", "result": True}}}}

    def answer(self, minion, fun):
        if fun == "k8s_pki.encryption_keys":
            digest = utils_package().key_digest
            names = [n for n, _ in self.configs[minion]]
            digests = [digest(k) for _, k in self.configs[minion]]
            return {"names": names, "digests": digests, "writes": names[0], "loaded": True}
        if fun == "k8s_etcd.secret_keys":
            return {"total": sum(self.etcd.values()), "by_key": dict(self.etcd)}
        if fun == "k8s_api.rewrite_secrets":
            writer = self.configs[minion][0][0]
            total = sum(self.etcd.values())
            self.etcd = {writer: total}
            return {"rewritten": total, "changed_since_listed": 0, "deleted_since_listed": 0}
        raise AssertionError(fun)


class _Client:
    def __init__(self, world):
        self.world = world

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def cmd(self, tgt, fun, **_kwargs):
        return {m: {"ret": self.world.answer(m, fun), "retcode": 0} for m in tgt}


@pytest.fixture
def world(tmp_path, monkeypatch):
    world = World(tmp_path / "keys")
    module = load_file(REPO / "_runners" / "k8s_encryption.py", "k8s_test_runner_k8s_encryption")
    module.__opts__ = {"ext_pillar": [{"k8s_pki": {"dir": str(world.base)}}]}
    utils = dict(utils_mapping())
    module.__utils__ = utils

    def salt_cmd(fun, *args, **kwargs):
        if fun == "k8s_orchestration.cluster":
            return {"cluster": "hardway", "controllers": IDS, "root": "k8s_control_plane"}
        assert fun == "k8s_orchestration.pending"
        return {"pending": world.pending}

    def take(cluster, reason):
        world.snapshots.append(reason)
        return {"name": "snap"}

    module.__salt__ = {
        "salt.cmd": salt_cmd,
        "state.orchestrate": world.roll,
        "k8s_snapshot.take": take,
    }
    monkeypatch.setattr(salt.client, "get_local_client", lambda **_k: _Client(world))
    world.runner = module
    return world


def test_a_whole_rotation(world):
    runner = world.runner
    added = runner.rotate("add")
    assert added["keys"] == ["key1", "key2"] and world.snapshots == ["encryption-key rotation"]
    assert {m: [n for n, _ in c] for m, c in world.configs.items()} == {
        m: ["key1", "key2"] for m in IDS
    }
    assert runner.rotate("promote")["keys"] == ["key2", "key1"]
    rewritten = runner.rotate("rewrite")
    assert rewritten["rewritten"] == 3 and rewritten["etcd"] == {"key2": 3}
    done = runner.rotate("retire")
    assert done["keys"] == ["key2"] and done["retired"] == ["key1"]
    assert world.rolls == [["key1", "key2"], ["key2", "key1"], ["key2"]]
    status = runner.status()
    assert status["keys"] == ["key2"] and status["phase"] == "steady"
    assert status["controllers"] == {m: ["key2"] for m in IDS}
    # the master keeps the old key, retired, and no answer holds a key, old or new
    kept = json.loads((world.dir / "encryption_keys.json").read_text())
    assert kept["retired"][0]["secret"] == KEY1 and "finishing" not in kept
    new = kept["keys"][0]["secret"]
    for answer in (added, rewritten, done, status):
        assert KEY1 not in json.dumps(answer) and new not in json.dumps(answer)


def test_a_step_where_the_rotation_stands_changes_nothing_and_it_resumes(world):
    runner = world.runner
    runner.rotate("add")
    again = runner.rotate("add")  # a re-run: the key added before stays the new one
    assert again["keys"] == ["key1", "key2"] and len(world.snapshots) == 1
    runner.rotate("promote")
    runner.rotate("promote")
    assert world.names() == ["key2", "key1"]


def test_out_of_order_steps_are_refused(world):
    runner = world.runner
    with pytest.raises(CommandExecutionError, match="add first"):
        runner.rotate("promote")
    runner.rotate("add")
    with pytest.raises(CommandExecutionError, match="add, then promote"):
        runner.rotate("rewrite")
    runner.rotate("promote")
    with pytest.raises(CommandExecutionError, match="still holds Secrets under"):
        runner.rotate("retire")  # not rewritten yet: the old key is still needed
    assert world.names() == ["key2", "key1"]
    with pytest.raises(CommandExecutionError, match="unknown step"):
        runner.rotate("drop")


def test_a_start_is_refused_while_anything_else_is_pending_or_configs_differ(world):
    runner = world.runner
    world.pending = {"k8s-controller-2": ["k8s_control_plane-keepalived-file-managed: would"]}
    with pytest.raises(CommandExecutionError, match="other changes to make first"):
        runner.rotate("add")
    world.pending = {}
    world.configs["k8s-controller-3"] = [("key1", "bWluZQ==")]  # the pillar's own key1
    with pytest.raises(CommandExecutionError, match="do not all run with the master's keys"):
        runner.rotate("add")
    assert not (world.dir / "encryption_keys.json").exists()
    assert world.rolls == [] and world.snapshots == []


def test_a_roll_that_does_not_reach_every_apiserver_fails_the_step(world):
    world.roll_breaks = True
    with pytest.raises(CommandExecutionError, match="do not run with"):
        world.runner.rotate("add")


def test_a_restore_of_a_snapshot_from_before_the_rotation_lists_the_old_key_again(world):
    runner = world.runner
    for step in ("add", "promote", "rewrite", "retire"):
        runner.rotate(step)
    before = "hardway_20200101T000000Z_k8s-controller-1_r7.db.sealed"
    relisted = runner.relist(before)
    assert relisted["relisted"] == ["key1"] and relisted["keys"] == ["key2", "key1"]
    assert "orch.rotate_encryption_key" in relisted["comment"]
    assert KEY1 not in json.dumps(relisted)
    # the rotation resumes at promoted: rewrite, then retire key1 once more
    world.configs = {m: world.keys() for m in IDS}  # the restore's control-plane step
    world.etcd = {"key1": 2, "key2": 1}  # the snapshot's Secrets
    runner.rotate("rewrite")
    assert runner.rotate("retire")["keys"] == ["key2"]
    # a snapshot taken after the rotation needs nothing
    after = "hardway_29991231T000000Z_k8s-controller-1_r9.db.sealed"
    assert runner.relist(after)["relisted"] == []
    with pytest.raises(CommandExecutionError, match="no snapshot of hardway"):
        runner.relist("other_20200101T000000Z_k8s-controller-1_r7.db.sealed")


def test_a_step_before_the_last_reached_every_apiserver_is_refused(world):
    runner = world.runner
    world.roll_breaks = True
    with pytest.raises(CommandExecutionError, match="do not run with"):
        runner.rotate("add")  # written, but its roll-out missed the apiservers
    world.roll_breaks = False
    with pytest.raises(CommandExecutionError, match="refused, nothing changed: the apiservers"):
        runner.rotate("promote")  # would make some write a key the others cannot read
    assert world.names() == ["key1", "key2"]
    runner.rotate("add")  # re-run: rolls it out, then promote may go
    assert runner.rotate("promote")["keys"] == ["key2", "key1"]


def test_a_failed_retire_roll_out_is_finished_by_a_rerun_not_a_new_rotation(world):
    runner = world.runner
    for step in ("add", "promote", "rewrite"):
        runner.rotate(step)
    world.roll_breaks = True
    with pytest.raises(CommandExecutionError, match="do not run with"):
        runner.rotate("retire")
    world.roll_breaks = False
    assert runner.status()["phase"] == "retiring"
    # the orchestration run again: add, promote and rewrite are no-ops, retire finishes
    assert runner.rotate("add")["keys"] == ["key2"]
    assert runner.rotate("promote")["keys"] == ["key2"]
    assert runner.rotate("rewrite")["skipped"] == "the old key is retiring"
    assert runner.rotate("retire")["keys"] == ["key2"]
    assert runner.status()["phase"] == "steady"
    assert runner.rotate("add")["keys"] == ["key2", "key3"]  # only now a new rotation


def test_no_snapshot_means_no_rotation(world):
    world.runner.__salt__["k8s_snapshot.take"] = lambda **_k: {"skipped": "etcd:managed false"}
    with pytest.raises(CommandExecutionError, match="no etcd snapshot could be taken"):
        world.runner.rotate("add")
    assert not (world.dir / "encryption_keys.json").exists()


def test_a_second_step_while_one_runs_is_refused(world):
    directory = str(world.dir)
    with (
        utils_package().rotation_locked(directory),
        pytest.raises(CommandExecutionError, match="another rotation step"),
    ):
        world.runner.rotate("add")


def test_a_rewrite_etcd_shows_nothing_of_is_not_proof(world):
    """etcd counted where the apiserver does not write (another --etcd-prefix): the rewrite
    step fails instead of letting retire drop a key etcd may still hold Secrets under."""
    runner = world.runner
    runner.rotate("add")
    runner.rotate("promote")
    answer = world.answer

    def elsewhere(minion, fun):
        if fun == "k8s_etcd.secret_keys":
            return {"total": 0, "by_key": {}}
        return answer(minion, fun)

    world.answer = elsewhere
    with pytest.raises(CommandExecutionError, match="3 Secrets rewritten, but etcd shows none"):
        runner.rotate("rewrite")
    with pytest.raises(CommandExecutionError):
        runner.rotate("retire")  # still at promote: nothing proves the old key unused
