"""etcd snapshots' pure rules (_utils/k8s_control_plane/snapshots.py, issue 21): names,
retention, etcd's SHA-256 trailer, and the sealed format for the way off the controller."""

import datetime
import hashlib
import io
import os

import pytest

from tests.support.cluster import utils_package

S = utils_package().snapshots
UTC = datetime.UTC


def _at(day, hour=0):
    return datetime.datetime(2026, 12, day, hour, tzinfo=UTC)


def test_a_name_round_trips_and_sorts_by_time():
    name = S.snapshot_name("hardway", _at(6, 13), "k8s-controller-2", 4711)
    assert name == "hardway_20261206T130000Z_k8s-controller-2_r4711.db.sealed"
    assert S.parse_snapshot_name(f"/var/lib/x/{name}") == {
        "cluster": "hardway",
        "taken": _at(6, 13),
        "member": "k8s-controller-2",
        "revision": 4711,
    }
    later = S.snapshot_name("hardway", _at(6, 14), "k8s-controller-1", 1)
    assert sorted([later, name]) == [name, later]
    for other in (
        "hardway.db",
        "notes.txt",
        name + ".part",
        "Hard_20261206T130000Z_a_r1.db.sealed",
    ):
        assert S.parse_snapshot_name(other) is None, other
    with pytest.raises(ValueError, match="no valid snapshot name"):
        S.snapshot_name("hard way", _at(6), "k8s-controller-1", 1)


def test_retention_keeps_the_newest_by_count_and_age_and_always_the_last():
    names = [S.snapshot_name("hardway", _at(day), "k8s-controller-1", day) for day in range(1, 8)]
    other = S.snapshot_name("prod", _at(1), "prod-cp-1", 1)
    found = S.snapshot_retention([*names, other, "README"], "hardway", 3, 0, _at(7))
    assert found == {"keep": names[:-4:-1], "drop": names[-4::-1]}
    # at most 2 days old: days 5 (exactly 2 days), 6 and 7 of the newest 5
    found = S.snapshot_retention(names, "hardway", 5, 2, _at(7))
    assert found["keep"] == [names[6], names[5], names[4]]
    # a schedule that stopped a month ago: the newest stays, however old
    found = S.snapshot_retention(names, "hardway", 3, 2, _at(7) + datetime.timedelta(days=30))
    assert found == {"keep": [names[6]], "drop": names[5::-1]}
    with pytest.raises(ValueError, match="keep must be at least 1"):
        S.snapshot_retention(names, "hardway", 0, 0, _at(7))


def _etcd_snapshot(pages=3):
    db = os.urandom(4096 * pages)
    return db + hashlib.sha256(db).digest()


def test_the_sha256_trailer_is_checked_as_etcdutl_does():
    good = _etcd_snapshot()
    assert S.snapshot_digest_ok(io.BytesIO(good)) is True
    flipped = bytearray(good)
    flipped[100] ^= 1
    assert S.snapshot_digest_ok(io.BytesIO(bytes(flipped))) is False
    assert S.snapshot_digest_ok(io.BytesIO(good[:-32])) is False  # a data-dir copy has no trailer
    assert S.snapshot_digest_ok(io.BytesIO(good[:-1])) is False
    assert S.snapshot_digest_ok(io.BytesIO(b"")) is False


@pytest.mark.parametrize("size", [0, 1, 1000, 4096, 4097, 3 * 4096])
def test_a_sealed_snapshot_opens_to_the_same_bytes(size):
    key, data = os.urandom(32), os.urandom(size)
    sealed = io.BytesIO()
    assert S.seal_snapshot(io.BytesIO(data), sealed, key, chunk=4096) == size
    # no plaintext run in the sealed bytes (a run of 1-7 random bytes may occur by chance)
    assert data[:64] not in sealed.getvalue() or size < 8
    opened = io.BytesIO()
    assert S.unseal_snapshot(io.BytesIO(sealed.getvalue()), opened, key) == size
    assert opened.getvalue() == data


def _chunks(sealed):
    """(header, [chunk records]) of a sealed file."""
    header, rest, records = sealed[:26], sealed[26:], []
    while rest:
        size = int.from_bytes(rest[:4], "big")
        records.append(rest[: 4 + size])
        rest = rest[4 + size :]
    return header, records


def test_a_changed_cut_or_reordered_sealed_file_and_a_wrong_key_are_refused():
    key, data = os.urandom(32), os.urandom(3 * 4096)
    out = io.BytesIO()
    S.seal_snapshot(io.BytesIO(data), out, key, chunk=4096)
    sealed = out.getvalue()
    header, records = _chunks(sealed)
    assert len(records) == 3

    def opens(blob, with_key=key):
        S.unseal_snapshot(io.BytesIO(blob), io.BytesIO(), with_key)

    with pytest.raises(ValueError, match="does not open"):
        opens(sealed, os.urandom(32))
    changed = bytearray(sealed)
    changed[40] ^= 1
    with pytest.raises(ValueError, match="chunk 0 does not open"):
        opens(bytes(changed))
    with pytest.raises(ValueError, match="ends before its last chunk"):
        opens(header + b"".join(records[:2]))  # the last chunk cut off
    with pytest.raises(ValueError, match="chunk 1 does not open"):
        opens(header + records[0] + records[2] + records[1])
    with pytest.raises(ValueError, match="after the last chunk"):
        opens(sealed + b"x")
    with pytest.raises(ValueError, match="not a sealed snapshot"):
        opens(b"SQLite format 3\x00" + bytes(64))
    with pytest.raises(ValueError, match="must be 32 bytes"):
        opens(sealed, b"short")
