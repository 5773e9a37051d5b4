"""
etcd snapshots kept on the master (docs/snapshots.md): taken on one healthy controller,
sealed there (``k8s_etcd.snapshot_push``: AES-256-GCM under the cluster's backup key) and
pushed here; verified here (opened with the key, etcd's SHA-256 trailer checked), kept
root-only, pruned to the cluster's ``etcd:snapshots`` retention, and served back to the
controllers by ``orch.restore`` through a file_roots environment that holds only sealed
files.

    salt-run k8s_snapshot.take                 # one snapshot now (what the schedule runs)
    salt-run k8s_snapshot.list                 # newest first

On the master, off the controllers: a lost controller, or two, loses no snapshot.

Master configuration (the lab's is in tools/lab/master.py)::

    file_recv: True                  # cp.push from the controllers
    file_recv_max_size: 100          # MB: above the sealed snapshot's size
    k8s_snapshots_dir: /var/lib/k8s_control_plane/snapshots   # the default
    file_roots:
      base: [...]
      k8s-snapshots: [/var/lib/k8s_control_plane/snapshots]  # for orch.restore
    schedule:
      k8s-etcd-snapshot:
        function: k8s_snapshot.take
        kwargs: {reason: scheduled}
        hours: 1
        run_on_start: False     # Salt's default runs it at every master start
"""

import base64
import contextlib
import datetime
import fcntl
import glob
import logging
import os
import shutil
import tempfile
from typing import Any

import salt.client
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_snapshot"

DEFAULT_DIR = "/var/lib/k8s_control_plane/snapshots"
# Seconds without a return before the client asks the controller whether the job still runs
# (saltutil.find_job): a long snapshot is waited for as long as it runs, and a publish the
# controller never got (it was reconnecting to a restarted master, seen in the lab) moves on
# to the next controller after this, not after a long fixed wait.
ANSWER_TIMEOUT = 30


def __virtual__():
    return __virtualname__


def _rules(name):
    return __utils__[f"k8s_control_plane.{name}"]


def _base():
    return __opts__.get("k8s_snapshots_dir") or DEFAULT_DIR


def _directory(cluster, create=False):
    """The cluster's folder of sealed snapshots (0700 like its parent); symlinks refused."""
    base = _base()
    directory = os.path.join(base, cluster)
    for path in (base, directory):
        if os.path.islink(path):
            raise CommandExecutionError(f"k8s_snapshot: {path} is a symlink: refused")
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chmod(path, 0o700)
    return directory


def _cluster(name):
    """The cluster and its controllers, found on the master as the orchestrations do."""
    return __salt__["salt.cmd"]("k8s_orchestration.cluster", name, "k8s_snapshot.take")


def _backup_key(cluster):
    """The cluster's backup key as the master keeps it (the ext_pillar k8s_pki), or None when
    the operator's pillar gives it instead."""
    key_dir = os.path.join(_rules("master_keys_dir")(__opts__), cluster)
    try:
        with open(os.path.join(key_dir, "backup_key"), encoding="utf-8") as handle:
            return base64.b64decode(handle.read().strip(), validate=True)
    except OSError:
        return None


def _verify(path, cluster):
    """Open the sealed file with the cluster's key and check etcd's trailer in what it holds;
    returns how it was verified."""
    key = _backup_key(cluster)
    if key is None:
        return "on the controller (the backup key is the pillar's, not the master's)"
    with (
        open(path, "rb") as source,
        tempfile.TemporaryFile(dir=os.path.dirname(path)) as plain,
    ):
        try:
            _rules("unseal_snapshot")(source, plain, key)
        except ValueError as exc:
            raise CommandExecutionError(f"k8s_snapshot: {os.path.basename(path)}: {exc}") from exc
        plain.seek(0)
        if not _rules("snapshot_digest_ok")(plain):
            raise CommandExecutionError(
                f"k8s_snapshot: {os.path.basename(path)}: etcd's SHA-256 trailer is wrong"
            )
    return "on the controller (etcdutl snapshot status) and on the master (opened, trailer)"


def _store(cluster, minion, taken):
    """Move the pushed file from the master's cache into the cluster's folder, verified and
    root-only, then prune; returns what was kept and dropped."""
    name = taken["name"]
    found = _rules("parse_snapshot_name")(name)
    if not found or found["cluster"] != cluster:
        raise CommandExecutionError(f"k8s_snapshot: {minion} pushed {name!r}: not {cluster}'s")
    pushed = os.path.join(
        __opts__["cachedir"], "minions", minion, "files", taken["upload_path"].lstrip("/")
    )
    directory = _directory(cluster, create=True)
    target = os.path.join(directory, name)
    partial = f"{target}.part"
    try:
        shutil.move(pushed, partial)
        os.chmod(partial, 0o600)
        verified = _verify(partial, cluster)
        os.replace(partial, target)
    finally:
        for leftover in (pushed, partial):
            if os.path.exists(leftover):
                os.remove(leftover)
        with contextlib.suppress(OSError):  # the empty folders cp.push made in the cache
            os.removedirs(os.path.dirname(pushed))
    now = datetime.datetime.now(datetime.UTC)
    plan = _rules("snapshot_retention")(
        os.listdir(directory), cluster, int(taken["keep"]), float(taken["max_age_days"]), now
    )
    for old in plan["drop"]:
        os.remove(os.path.join(directory, old))
    return {"verified": verified, "kept": len(plan["keep"]), "dropped": plan["drop"]}


def take(cluster: str | None = None, reason: str = "manual") -> dict[str, Any]:
    """
    Take one snapshot of the cluster's etcd on the first controller whose member is healthy
    (in the cluster's list order; the next one when it cannot), keep it here sealed and
    verified, and prune the cluster's snapshots to its retention. Raises, naming each
    controller's answer, when none could.

    cluster
        The cluster (``k8s_control_plane:cluster``); optional with one on the master.

    reason
        Why (scheduled, upgrade, membership, manual): logged and returned.

    CLI Example:

    .. code-block:: bash

        salt-run k8s_snapshot.take
        salt-run k8s_snapshot.take cluster=hardway reason=upgrade
    """
    found = _cluster(cluster)
    name = found["cluster"]
    # the cluster's folder itself is the lock (flock on its descriptor): nothing added to it
    fd = os.open(_directory(name, create=True), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one take per cluster: the sweep never meets a push
        swept = _sweep(name)
        if swept:
            log.warning(
                "k8s_snapshot: removed %s pushed by a take that did not finish: %s",
                len(swept),
                ", ".join(swept),
            )
        return _take(found, name, reason)
    finally:
        os.close(fd)


def _sweep(cluster):
    """The sealed snapshots of ``cluster`` that a take pushed into the master's cache and did
    not move out (the master restarted mid-take): removed, their names returned."""
    pattern = os.path.join(
        glob.escape(__opts__["cachedir"]),
        "minions",
        "*",
        "files",
        "k8s_control_plane",
        glob.escape(cluster),
        "*.sealed",
    )
    swept = []
    for path in sorted(glob.glob(pattern)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
            swept.append(os.path.basename(path))
        with contextlib.suppress(OSError):  # the empty folders cp.push made in the cache
            os.removedirs(os.path.dirname(path))
    return swept


def _take(found, name, reason):
    client = salt.client.get_local_client(mopts=__opts__)
    answers = {}
    for minion in found["controllers"]:
        returned = client.cmd(
            minion,
            "k8s_etcd.snapshot_push",
            kwarg={"reason": reason},
            timeout=ANSWER_TIMEOUT,
            full_return=True,
        ).get(minion)
        ret = returned.get("ret") if isinstance(returned, dict) else None
        if isinstance(ret, dict) and ret.get("skipped"):
            return {"cluster": name, "skipped": ret["skipped"], "reason": reason}
        if isinstance(returned, dict) and returned.get("retcode", 0) == 0 and isinstance(ret, dict):
            stored = _store(name, minion, ret)
            log.info("k8s_snapshot: %s from %s (%s)", ret["name"], minion, reason)
            return {
                "cluster": name,
                "name": ret["name"],
                "from": minion,
                "reason": reason,
                "revision": ret["status"].get("revision"),
                "keys": ret["status"].get("totalKey"),
                "bytes": ret["bytes"],
                "sealed_bytes": ret["sealed_bytes"],
                **stored,
            }
        answers[minion] = ret if ret is not None else "no answer (minion down?)"
    raise CommandExecutionError(
        f"k8s_snapshot: no controller of {name} took a snapshot: "
        + "; ".join(f"{m}: {a}" for m, a in answers.items())
    )


def list_(cluster: str | None = None) -> list[dict[str, Any]]:
    """
    The sealed snapshots kept here, newest first: per snapshot its cluster, name, time
    taken (UTC), member and etcd revision, and size. Every one was verified when it came.

    cluster
        Only this cluster's.

    CLI Example:

    .. code-block:: bash

        salt-run k8s_snapshot.list
        salt-run k8s_snapshot.list cluster=hardway
    """
    base = _base()
    clusters = [cluster] if cluster else (sorted(os.listdir(base)) if os.path.isdir(base) else [])
    found = []
    for name in clusters:
        directory = _directory(name)
        if not os.path.isdir(directory):
            continue
        for entry in os.listdir(directory):
            info = _rules("parse_snapshot_name")(entry)
            if info and info["cluster"] == name:
                found.append(
                    {
                        "cluster": name,
                        "name": entry,
                        "taken": info["taken"].isoformat(),
                        "member": info["member"],
                        "revision": info["revision"],
                        "bytes": os.path.getsize(os.path.join(directory, entry)),
                    }
                )
    return sorted(found, key=lambda s: (s["taken"], s["name"]), reverse=True)


__func_alias__ = {"list_": "list"}
