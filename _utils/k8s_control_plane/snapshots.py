"""
etcd snapshots (issue 21): their names, their integrity check, their sealing for the way off
the controller, and which ones a retention keeps. Pure: no Salt, no network.

- A snapshot from etcd's Maintenance.Snapshot API is the bbolt database followed by the SHA-256
  of it (etcd server/etcdserver/api/v3rpc/maintenance.go, read at v3.7.0: ``h.Sum(nil)`` sent
  after the last chunk), which ``etcdutl snapshot restore`` checks (etcdutl/snapshot/
  v3_snapshot.go ``copyAndVerifyDB``; a file of size ``n`` has the hash when
  ``n % 512 == 32``, ``hasChecksum``). ``snapshot_digest_ok`` checks the same.
- A snapshot holds every object of the cluster (Secrets encrypted at rest by the apiserver,
  the rest in the clear). Before it leaves the controller that took it, it is sealed with
  AES-256-GCM under the cluster's backup key (the master's ext_pillar keeps it, the
  controllers get it in their pillar): Salt's ``cp.push`` leaves pushed files readable by all
  (Salt's cp module docs) and what the master publishes reaches every minion. The sealed
  format is chunked (a database may be gigabytes): a header (MAGIC, a random file id), then
  chunks of ``4-byte length || ciphertext+tag`` under the file's own key (HKDF-SHA256 of the
  backup key with the file id), each chunk's nonce its number, its associated data the
  header, the number and whether it is the last one: a reordered, dropped or truncated chunk
  fails to open.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import struct
from collections.abc import Iterable
from typing import Any, BinaryIO

MAGIC = b"K8SCPSNAP1"
SUFFIX = ".db.sealed"
CHUNK = 1 << 20  # plaintext bytes per sealed chunk
_NAME = re.compile(
    r"^(?P<cluster>[a-z0-9]([a-z0-9-]*[a-z0-9])?)_(?P<taken>\d{8}T\d{6}Z)_"
    r"(?P<member>[A-Za-z0-9][A-Za-z0-9._-]*)_r(?P<revision>\d+)" + re.escape(SUFFIX) + r"$"
)
_STAMP = "%Y%m%dT%H%M%SZ"


def snapshot_name(cluster: str, taken: datetime.datetime, member: str, revision: int) -> str:
    """The file name of a sealed snapshot of ``cluster`` taken at ``taken`` (UTC) from
    ``member`` at etcd ``revision``: names sort by cluster, then time."""
    stamp = taken.astimezone(datetime.UTC).strftime(_STAMP)
    name = f"{cluster}_{stamp}_{member}_r{int(revision)}{SUFFIX}"
    if not _NAME.match(name):
        raise ValueError(f"no valid snapshot name for {cluster!r}, {member!r}: {name!r}")
    return name


def parse_snapshot_name(name: str) -> dict[str, Any] | None:
    """{cluster, taken (aware UTC datetime), member, revision} of a snapshot file name, or None
    for any other name."""
    found = _NAME.match(os.path.basename(name))
    if not found:
        return None
    taken = datetime.datetime.strptime(found["taken"], _STAMP).replace(tzinfo=datetime.UTC)
    return {
        "cluster": found["cluster"],
        "taken": taken,
        "member": found["member"],
        "revision": int(found["revision"]),
    }


def snapshot_retention(
    names: Iterable[str], cluster: str, keep: int, max_age_days: float, now: datetime.datetime
) -> dict[str, list[str]]:
    """
    Which of ``cluster``'s snapshot files to keep and which to delete: the ``keep`` newest,
    each no older than ``max_age_days`` (0: no age limit), and whatever else the newest one
    always (a cluster whose schedule stopped keeps its last snapshot). Other files, and other
    clusters' snapshots, are in neither list.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    ours = [(parse_snapshot_name(n), n) for n in names]
    dated = sorted(
        ((info["taken"], n) for info, n in ours if info and info["cluster"] == cluster),
        reverse=True,
    )
    limit = now - datetime.timedelta(days=max_age_days) if max_age_days else None
    kept: list[str] = []
    dropped: list[str] = []
    for index, (taken, name) in enumerate(dated):
        young = limit is None or taken >= limit
        (kept if index == 0 or (index < keep and young) else dropped).append(name)
    return {"keep": kept, "drop": dropped}


def snapshot_digest_ok(stream: BinaryIO) -> bool:
    """Whether a snapshot as etcd's Snapshot API streams it ends with the SHA-256 of the rest
    (what ``etcdutl snapshot restore`` checks first)."""
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    if size % 512 != hashlib.sha256().digest_size or size < 512:
        return False
    stream.seek(0)
    digest, left = hashlib.sha256(), size - 32
    while left:
        block = stream.read(min(CHUNK, left))
        if not block:
            return False
        digest.update(block)
        left -= len(block)
    return digest.digest() == stream.read(32)


def _aead(key: bytes, file_id: bytes) -> Any:
    """
    The file's own AES-256-GCM key, derived from the backup key and the file's random
    16-byte id (HKDF-SHA256): nonces (the chunk numbers) never repeat under one key, however
    many files the never-rotated backup key seals.
    """
    from cryptography.hazmat.primitives import hashes  # Salt's own dependency
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if len(key) != 32:
        raise ValueError(f"the backup key must be 32 bytes (AES-256), not {len(key)}")
    derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=file_id, info=MAGIC)
    return AESGCM(derive.derive(key))


def _nonce(number: int) -> bytes:
    return b"\0\0\0\0" + struct.pack(">Q", number)


def _aad(header: bytes, number: int, last: bool) -> bytes:
    return header + struct.pack(">Q?", number, last)


def seal_snapshot(source: BinaryIO, target: BinaryIO, key: bytes, chunk: int = CHUNK) -> int:
    """Write ``source`` sealed under ``key`` to ``target``; returns the plaintext bytes."""
    header = MAGIC + os.urandom(16)
    aead = _aead(key, header[len(MAGIC) :])
    target.write(header)
    number, total = 0, 0
    block = source.read(chunk)
    while True:
        following = source.read(chunk) if block else b""
        last = not following
        sealed = aead.encrypt(_nonce(number), block, _aad(header, number, last))
        target.write(struct.pack(">I", len(sealed)) + sealed)
        total += len(block)
        if last:
            return total
        number, block = number + 1, following


def unseal_snapshot(source: BinaryIO, target: BinaryIO, key: bytes) -> int:
    """Write the plaintext of a sealed ``source`` to ``target``; returns its bytes. Raises
    ValueError for another format, a wrong key, or a changed, reordered or cut file."""
    from cryptography.exceptions import InvalidTag

    header = source.read(len(MAGIC) + 16)
    if len(header) != len(MAGIC) + 16 or not header.startswith(MAGIC):
        raise ValueError("not a sealed snapshot (no header)")
    aead = _aead(key, header[len(MAGIC) :])
    number, total = 0, 0
    while True:
        size = source.read(4)
        if len(size) != 4:
            raise ValueError(f"the sealed snapshot ends before its last chunk (chunk {number})")
        sealed = source.read(struct.unpack(">I", size)[0])
        nonce = _nonce(number)
        for last in (False, True):
            try:
                block = aead.decrypt(nonce, sealed, _aad(header, number, last))
            except InvalidTag:
                continue
            break
        else:
            raise ValueError(f"chunk {number} does not open: another key, or a changed file")
        target.write(block)
        total += len(block)
        if last:
            if source.read(1):
                raise ValueError("bytes after the last chunk of the sealed snapshot")
            return total
        number += 1
