"""
The encryption keys' rules (_utils/k8s_control_plane/encryption.py): the pillar's two forms, their
validation, a rotation's steps (and their resumption), the etcd prefix, the master's state file.
"""

import base64
import datetime
import os
import stat

import pytest

from tests.support.cluster import cluster_pillar, merged_config, utils_package

K = {n: base64.b64encode(bytes([n]) * 32).decode() for n in range(1, 6)}


@pytest.fixture(scope="module")
def enc():
    return utils_package().encryption


def test_the_single_key_is_key1_and_a_list_is_taken_as_written(enc):
    assert enc.encryption_keys({"encryption_key": K[1]}) == [{"name": "key1", "secret": K[1]}]
    listed = [{"name": "key2", "secret": K[2]}, {"name": "key1", "secret": K[1]}]
    assert enc.encryption_keys({"encryption_keys": listed}) == listed
    assert enc.encryption_keys({}) == []


def test_every_fault_in_the_list_is_named_at_once(enc):
    listed = [
        {"name": "key1", "secret": K[1]},
        {"name": "key1", "secret": K[2]},  # duplicate name
        {"name": "key3", "secret": K[1]},  # the same secret as entry 0
        {"name": "bad name", "secret": "not base64!"},
        {"name": "key5"},  # no secret
    ]
    errors = enc.encryption_key_errors({"encryption_keys": listed, "encryption_key": K[1]})
    assert [where for where, _ in errors] == [
        "secrets:encryption_keys",
        "secrets:encryption_keys:1:name",
        "secrets:encryption_keys:2:secret",
        "secrets:encryption_keys:3:name",
        "secrets:encryption_keys:3:secret",
        "secrets:encryption_keys:4",
    ]
    assert "not both" in errors[0][1]
    assert enc.encryption_key_errors({"encryption_keys": []})[0][1].startswith("expected")
    assert enc.encryption_key_errors({"encryption_key": K[1]}) == []
    short = base64.b64encode(b"x" * 10).decode()
    assert enc.encryption_key_errors({"encryption_key": short}) == [
        ("secrets:encryption_key", "valid: base64 of 16, 24 or 32 bytes (aescbc)")
    ]


def test_the_validation_names_a_bad_list_with_the_pillar_key(enc):
    pillar = cluster_pillar("hardway")
    key1 = pillar["secrets"].pop("encryption_key")
    pillar["secrets"]["encryption_keys"] = [
        {"name": "key1", "secret": key1},
        {"name": "key1", "secret": K[2]},
    ]
    errors = utils_package().validate_config(merged_config(pillar))
    assert errors == [
        "k8s_control_plane:secrets:encryption_keys:1:name: duplicate of entry 0 ('key1')"
    ]


def test_a_rotation_steps_add_promote_retire_and_each_step_resumes(enc):
    state = {"keys": [{"name": "key1", "secret": K[1]}], "rotating_to": None, "retired": []}
    assert enc.rotation_phase(state) == "steady"
    added = enc.rotated_keys(state, "add", K[2])
    assert [k["name"] for k in added["keys"]] == ["key1", "key2"]  # read, not written yet
    assert enc.rotation_phase(added) == "added"
    # a rotation that stopped after adding resumes with the same new key
    assert enc.rotated_keys(added, "add", K[3]) == added
    with pytest.raises(ValueError, match="promote first"):
        enc.rotated_keys(added, "retire")
    promoted = enc.rotated_keys(added, "promote")
    assert [k["name"] for k in promoted["keys"]] == ["key2", "key1"]
    assert enc.rotation_phase(promoted) == "promoted"
    assert enc.rotated_keys(promoted, "promote") == promoted
    done = enc.rotated_keys(promoted, "retire", now="2026-12-06T00:00:00Z")
    assert done["keys"] == [{"name": "key2", "secret": K[2]}]
    assert done["retired"] == [{"name": "key1", "secret": K[1], "retired": "2026-12-06T00:00:00Z"}]
    # retiring until its roll-out is checked: every step is a no-op then (a re-run finishes it)
    assert enc.rotation_phase(done) == "retiring"
    for step in ("add", "promote", "retire"):
        assert enc.rotated_keys(done, step, K[4]) == done
    done = enc.finished_keys(done)
    assert enc.rotation_phase(done) == "steady"
    with pytest.raises(ValueError, match="add first"):
        enc.rotated_keys(done, "promote")
    # the next rotation's key is numbered past every key the cluster had, retired ones too
    assert enc.next_key_name(done) == "key3"
    assert enc.rotated_keys(done, "add", K[3])["rotating_to"] == "key3"
    # the input is never changed
    assert state == {"keys": [{"name": "key1", "secret": K[1]}], "rotating_to": None, "retired": []}


def test_the_key_a_value_is_stored_under(enc):
    assert enc.stored_under(b"k8s:enc:aescbc:v1:key2:\x00\x01rest") == "key2"
    assert enc.stored_under(b"k8s:enc:kms:v2:provider:x") == "k8s:enc:kms"
    assert enc.stored_under(b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret") == "identity"


def test_the_state_file_is_root_only_and_key1_comes_from_the_old_file(enc, tmp_path):
    assert enc.read_key_state(str(tmp_path)) is None
    (tmp_path / "encryption_key").write_text(K[1] + "\n")
    state = enc.read_key_state(str(tmp_path))
    assert state == {"keys": [{"name": "key1", "secret": K[1]}], "rotating_to": None, "retired": []}
    with enc.keys_locked(str(tmp_path)):
        enc.write_key_state(str(tmp_path), enc.rotated_keys(state, "add", K[2]))
    path = tmp_path / "encryption_keys.json"
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert enc.read_key_state(str(tmp_path))["rotating_to"] == "key2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".lock",
        "encryption_key",
        "encryption_keys.json",
    ]


def test_a_restore_lists_again_the_keys_retired_after_its_snapshot(enc):
    state = {
        "keys": [{"name": "key3", "secret": K[3]}],
        "rotating_to": None,
        "retired": [
            {"name": "key1", "secret": K[1], "retired": "2026-12-01T00:00:00Z"},
            {"name": "key2", "secret": K[2], "retired": "2026-12-05T00:00:00Z"},
        ],
    }
    at = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    again = enc.relisted_keys(state, at)
    # key2 may hold the snapshot's Secrets; key1 was retired before it was taken
    assert [k["name"] for k in again["keys"]] == ["key3", "key2"]
    assert again["keys"][1] == {"name": "key2", "secret": K[2]}
    assert [k["name"] for k in again["retired"]] == ["key1"]
    # the rotation stands at promoted: its rewrite and retire steps finish the job
    assert enc.rotation_phase(again) == "promoted"
    done = enc.finished_keys(enc.rotated_keys(again, "retire", now="2026-12-07T00:00:00Z"))
    assert [k["name"] for k in done["keys"]] == ["key3"]
    assert [k["name"] for k in done["retired"]] == ["key1", "key2"]
    # a snapshot taken after every retirement needs nothing
    later = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
    assert enc.relisted_keys(state, later) == state
