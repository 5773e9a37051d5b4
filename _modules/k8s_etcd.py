"""
A managed etcd's membership, seen and changed from a controller (issue 20): the member
list, a member added as a learner, promoted, removed, and this controller's own state
(data or an empty disk). Calls go to etcd's v3 JSON gateway (``/v3/cluster/member/*``,
the same API ``etcdctl member`` uses) over TLS with etcd's own client certificate,
trying this controller's member first, then the others in list order.

The orchestration (``k8s_cluster.etcd_members``) decides what changes, one member at a
time; the rules are in ``_utils/k8s_control_plane/membership.py``.
"""

import base64
import contextlib
import datetime
import http.client
import json
import logging
import os
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_etcd"


def __virtual__():
    # Pure Python (urllib, ssl): it loads everywhere; each function says when etcd is
    # not managed or its client certificate is not there yet.
    return __virtualname__


class OtherTrust(CommandExecutionError):
    """Every member asked failed the TLS handshake on its certificate: they run with
    another CA than the files here (a CA change between the files written and the members
    restarted)."""


def _etcd():
    cfg = __salt__["k8s_cluster.config"]()
    if not cfg["etcd"].get("managed"):
        raise CommandExecutionError("k8s_etcd: etcd:managed is false; etcd is not ours to change")
    return cfg


def _endpoints(cfg):
    """This controller's client URL first, then the others' in list order."""
    me = __grains__["id"]
    port = cfg["etcd"]["client_port"]
    ordered = sorted(cfg["controllers"], key=lambda c: c["id"] != me)
    return [f"https://{c['address']}:{port}" for c in ordered]


def _tls(cfg):
    """A TLS client context with etcd's CA and client certificate (k8s_pki.etcd_files)."""
    ca_file, cert, key = __utils__["k8s_control_plane.etcd_check_files"](cfg)
    context = ssl.create_default_context(cafile=ca_file)
    context.load_cert_chain(cert, key)
    return context


def _post(cfg, path, body, timeout, endpoints=None):
    """POST ``body`` to the first member that answers; raise naming every answer."""
    ca_file, cert, key = __utils__["k8s_control_plane.etcd_check_files"](cfg)
    missing = [p for p in (ca_file, cert, key) if not os.path.exists(p)]
    if missing:
        raise CommandExecutionError(f"k8s_etcd: no etcd client certificate ({', '.join(missing)})")
    context = _tls(cfg)
    errors, refused_tls = [], []
    for endpoint in endpoints or _endpoints(cfg):
        request = urllib.request.Request(
            f"{endpoint}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read(2048).decode("utf-8", "replace")
            try:
                message = json.loads(text).get("message") or text
            except ValueError:
                message = text
            # etcd refused the change itself (not a member that is down): say so at once
            raise CommandExecutionError(f"k8s_etcd: {endpoint}{path}: {message}") from exc
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            errors.append(f"{endpoint}: {reason}")
            refused_tls.append(isinstance(reason, ssl.SSLError))
    message = f"k8s_etcd: no etcd member answered {path}: {'; '.join(errors)}"
    if refused_tls and all(refused_tls):
        raise OtherTrust(message)
    raise CommandExecutionError(message)


def _runs_other_trust(cfg, timeout):
    """
    Whether this controller's own member serves a certificate that the CA file here does
    not verify: the member still runs with the CA the files had before a CA change. Read
    from the member itself, so it holds however far the other controllers are in the same
    change (a status call needs no quorum).
    """
    mine = _endpoints(cfg)[:1]
    try:
        _post(cfg, "/v3/maintenance/status", {}, timeout, mine)
    except OtherTrust:
        return True
    except CommandExecutionError:
        return False  # down, or another error: the usual checks say what
    return False


def trust_changed(timeout: float = 2) -> dict[str, Any]:
    """
    Say whether this controller's etcd member runs with another CA than the etcd files
    here: its serving certificate does not verify against the CA file it restarts with
    (a CA change, such as ``pki:source`` switched). Such a restart cannot be gated: the
    members still on the old CA refuse the new files, and no turn or quorum check can be
    read, while every member restarts in the same change (the orchestration restarts them
    together).

    timeout
        Seconds to wait for this controller's member.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.trust_changed
    """
    cfg = _etcd()
    changed = _runs_other_trust(cfg, float(timeout))
    return {
        "changed": changed,
        "comment": (
            "this member runs with another CA than the files here (a CA change)"
            if changed
            else "this member's certificate verifies against the CA file here, or it is down"
        ),
    }


def secret_keys(prefix: str = "/registry/secrets/", timeout: float = 10) -> dict[str, Any]:
    """
    Count the Secrets in etcd by the key they are stored under, read from each value's
    prefix (``k8s:enc:aescbc:v1:<name>:``; ``identity`` for a value not encrypted): what an
    encryption-key rotation must change, and proves it did. Counts and names only, never a
    value. Reads every Secret's value, a page of 100 at a time.

    prefix
        The apiserver's etcd keys of Secrets (its ``--etcd-prefix``, /registry, then secrets/).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.secret_keys
    """
    cfg = _etcd()
    start = prefix.encode()
    end = start[:-1] + bytes([start[-1] + 1])
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    key = start
    while True:
        body = {
            "key": base64.b64encode(key).decode(),
            "range_end": base64.b64encode(end).decode(),
            "limit": 100,
        }
        page = _post(cfg, "/v3/kv/range", body, timeout)
        kvs = page.get("kvs") or []
        for kv in kvs:
            name = __utils__["k8s_control_plane.stored_under"](base64.b64decode(kv["value"]))
            counts[name] = counts.get(name, 0) + 1
            examples.setdefault(name, base64.b64decode(kv["key"]).decode()[len(prefix) :])
        if not page.get("more") or not kvs:
            break
        key = base64.b64decode(kvs[-1]["key"]) + b"\x00"
    return {"total": sum(counts.values()), "by_key": counts, "example": examples}


def _member(raw):
    return {
        "id": f"{int(raw.get('ID', 0)):x}",
        "name": raw.get("name", ""),
        "peer_urls": list(raw.get("peerURLs") or []),
        "client_urls": list(raw.get("clientURLs") or []),
        "learner": bool(raw.get("isLearner")),
    }


def members(timeout: float = 5) -> list[dict[str, Any]]:
    """
    Return etcd's member list as a member sees it: per member its id (hex, as etcdctl
    shows it), name (empty until an added member first starts), peer and client URLs and
    whether it is a learner.

    timeout
        Seconds per member asked.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.members
    """
    cfg = _etcd()
    answer = _post(cfg, "/v3/cluster/member/list", {"linearizable": True}, float(timeout))
    return [_member(m) for m in answer.get("members", [])]


def status(timeout: float = 2) -> dict[str, Any]:
    """
    Return what the orchestration needs to plan membership from this controller, and
    never raise: whether etcd is managed, whether this controller's data directory holds
    a member (``data``: an empty disk has none), its peer URL and every controller's
    (``wanted``, from the pillar), whether its own member
    answered a linearizable member list (``healthy``: it sees a leader), and the member
    list (``members``, from its own member, else another; None with ``error`` when none
    answers, for example on a fresh cluster or without quorum).

    timeout
        Seconds per member asked.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_etcd.status
    """
    cfg = __salt__["k8s_cluster.config"]()
    etcd = cfg["etcd"]
    result: dict[str, Any] = {"managed": bool(etcd.get("managed"))}
    if not result["managed"]:
        return result
    me = __salt__["k8s_cluster.controller"]()
    result["name"] = me["id"]
    result["peer_url"] = f"https://{me['address']}:{etcd['peer_port']}"
    # every controller's peer URL, from the pillar (the members the list wants)
    result["wanted"] = {
        c["id"]: f"https://{c['address']}:{etcd['peer_port']}" for c in cfg["controllers"]
    }
    result["data"] = os.path.isdir(os.path.join(etcd["data_dir"], "member"))
    result["healthy"], result["members"] = False, None
    mine, *others = _endpoints(cfg)
    body = {"linearizable": True}
    for endpoints in ([mine], others):
        try:
            answer = _post(cfg, "/v3/cluster/member/list", body, float(timeout), endpoints)
        except CommandExecutionError as exc:
            result["error"] = str(exc)
            continue
        result["members"] = [_member(m) for m in answer.get("members", [])]
        result["healthy"] = endpoints == [mine]  # its own member answered, linearizably
        result.pop("error", None)
        break
    return result


def add(name: str, peer_url: str, learner: bool = True, timeout: float = 10) -> dict[str, Any]:
    """
    Add a member (``etcdctl member add --learner``) and return its id and the
    ``initial_cluster`` it must start with (every member's name=peer URL, itself
    included), with ``--initial-cluster-state existing``.

    name
        The new member's name (its controller id).

    peer_url
        Its peer URL, https://ADDRESS:PEER_PORT.

    learner
        Add it as a learner (the default; promote it once it has caught up).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.add k8s-controller-4 https://10.240.0.14:2380
    """
    cfg = _etcd()
    body = {"peerURLs": [peer_url], "isLearner": bool(learner)}
    answer = _post(cfg, "/v3/cluster/member/add", body, float(timeout))
    added = _member(answer.get("member") or {})
    listed = [_member(m) for m in answer.get("members", [])]
    pairs = [
        f"{name if m['id'] == added['id'] else m['name']}={url}"
        for m in listed
        for url in m["peer_urls"]
        if m["name"] or m["id"] == added["id"]
    ]
    return {"id": added["id"], "initial_cluster": ",".join(pairs)}


def remove(member_id: str, timeout: float = 10) -> dict[str, Any]:
    """
    Remove a member by its hex id (``etcdctl member remove``).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.remove 8e9e05c52164694d
    """
    cfg = _etcd()
    _post(cfg, "/v3/cluster/member/remove", {"ID": str(int(member_id, 16))}, float(timeout))
    return {"removed": member_id}


def promote(member_id: str, timeout: float = 10) -> dict[str, Any]:
    """
    Promote a learner to a voting member (``etcdctl member promote``). etcd refuses a
    learner that has not caught up with the leader yet; the error says so.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.promote 8e9e05c52164694d
    """
    cfg = _etcd()
    _post(cfg, "/v3/cluster/member/promote", {"ID": str(int(member_id, 16))}, float(timeout))
    return {"promoted": member_id}


def join(initial_cluster: str) -> dict[str, Any]:
    """
    Prepare this controller to join a running etcd as the member just added for it:
    write the unit's environment file with ``initial_cluster`` and
    ``ETCD_INITIAL_CLUSTER_STATE=existing``. Refuses when its data directory already
    holds a member (that member would ignore the file; remove it first).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-4 k8s_etcd.join \\
            'k8s-controller-1=https://10.240.0.11:2380,k8s-controller-4=https://10.240.0.14:2380'
    """
    cfg = _etcd()
    etcd = cfg["etcd"]
    if os.path.isdir(os.path.join(etcd["data_dir"], "member")):
        raise CommandExecutionError(
            f"k8s_etcd: {etcd['data_dir']} already holds a member; it would not join"
        )
    path = __utils__["k8s_control_plane.etcd_environment_file"](cfg)
    text = __utils__["k8s_control_plane.etcd_environment"](initial_cluster, "existing")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return {"written": path, "initial_cluster": initial_cluster, "state": "existing"}


def environment() -> dict[str, str]:
    """
    Return the etcd unit's environment file (``path``) and the text a new cluster's
    member starts with (``text``: every controller, state new), which the etcd SLS
    writes once and never replaces.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.environment
    """
    cfg = __salt__["k8s_cluster.config"]()
    rules = "k8s_control_plane."
    return {
        "path": __utils__[rules + "etcd_environment_file"](cfg),
        "text": __utils__[rules + "etcd_environment"](
            __utils__[rules + "initial_cluster"](cfg), "new"
        ),
    }


def _healthy(cfg, url, timeout):
    """A member's /health says true (it sees a leader), with etcd's client certificate."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout, context=_tls(cfg)) as resp:
            return '"health":"true"' in resp.read(512).decode().replace(" ", "")
    except (OSError, ssl.SSLError, ValueError):
        return False


def restart_safe(timeout: float = 2) -> dict[str, Any]:
    """
    Say whether this controller's etcd member may stop now (a restart) without etcd
    losing quorum: the other voting members that answer ``/health`` must be a quorum of
    all voters on their own. Safe as well when etcd is not managed, not running here (a
    start stops nothing), holds no data (a new member) or is a learner.

    timeout
        Seconds per member asked.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.restart_safe
    """
    cfg = __salt__["k8s_cluster.config"]()
    etcd = cfg["etcd"]
    if not etcd.get("managed"):
        return {"safe": True, "comment": "etcd is not managed here"}
    if not __salt__["service.status"]("etcd"):
        return {"safe": True, "comment": "etcd is not running here: starting it stops nothing"}
    if not os.path.isdir(os.path.join(etcd["data_dir"], "member")):
        return {"safe": True, "comment": "a new member (no data yet)"}
    me = __grains__["id"]
    if _runs_other_trust(cfg, timeout):
        return {
            "safe": True,
            "comment": "this member runs with another CA than its new files (a CA change): "
            "every member restarts in it, and the others cannot be checked until they do",
        }
    try:
        listed = members(timeout)
    except OtherTrust:
        return {
            "safe": True,
            "comment": "the members refuse this controller's new etcd certificates (a CA "
            "change): they cannot be checked until they restart with it",
        }
    except CommandExecutionError as exc:
        return {"safe": False, "comment": f"no member list: {exc}"}
    voters = [m for m in listed if not m["learner"]]
    if not any(m["name"] == me for m in voters):
        return {"safe": True, "comment": "a learner (does not count for quorum)"}
    others = [m for m in voters if m["name"] != me]
    up = [
        m["name"]
        for m in others
        if m["client_urls"] and _healthy(cfg, m["client_urls"][0], timeout)
    ]
    need = len(voters) // 2 + 1
    down = sorted({m["name"] or m["id"] for m in others} - set(up))
    comment = (
        f"{len(up)} of the {len(others)} other voting members healthy, {need} needed for "
        f"quorum while this one restarts" + (f" (not healthy: {', '.join(down)})" if down else "")
    )
    return {"safe": len(up) >= need, "comment": comment, "healthy": up, "quorum": need}


def _lock_file(name):
    return os.path.join("/run/k8s_control_plane/turns", name.replace("/", "_") + ".json")


def _lock_name(cfg, name):
    return f"k8s_control_plane/{cfg.get('cluster', 'cluster')}/turn/{name}"


def take_turn(name: str, ttl: int = 300, timeout: float = 600) -> dict[str, Any]:
    """
    Wait (bounded) for this cluster's turn ``name`` and take it: an etcd lock (v3 lock API)
    on a lease of ``ttl`` seconds, so that only one controller at a time restarts its
    ``name`` (an apiserver, an etcd member), however the state runs were started. The
    turn is given back with give_turn once the restarted service is ready; a run that
    dies holding it lets it go when the lease expires. Returns the seconds waited.

    name
        What restarts: ``kube-apiserver`` or ``etcd``.

    ttl
        Seconds the turn lasts at most (the lease).

    timeout
        Seconds to wait for it.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.take_turn kube-apiserver
    """
    cfg = __salt__["k8s_cluster.config"]()
    endpoints = _endpoints(cfg)
    start = time.monotonic()
    skipped = {"name": name, "waited": 0.0, "skipped": "etcd's members run with another CA"}
    if _runs_other_trust(cfg, 2):
        # this controller's member still runs with the CA the files had (a CA change): no
        # turn can be kept across such a change, and it restarts every member anyway
        return skipped
    try:
        lease = _post(cfg, "/v3/lease/grant", {"TTL": int(ttl)}, 10, endpoints)["ID"]
    except OtherTrust as exc:
        # a CA change: no member accepts the new client files until it restarts, so no turn
        # can be kept; such a change restarts every member and apiserver anyway
        log.debug("k8s_etcd: no turn for %s: %s", name, exc)
        return skipped
    key = base64.b64encode(_lock_name(cfg, name).encode()).decode()
    try:
        answer = _post(cfg, "/v3/lock/lock", {"name": key, "lease": lease}, timeout, endpoints)
    except CommandExecutionError as exc:
        with contextlib.suppress(CommandExecutionError):  # else it expires by itself
            _post(cfg, "/v3/lease/revoke", {"ID": lease}, 10, endpoints)
        raise CommandExecutionError(
            f"k8s_etcd: no turn to restart {name} within {timeout}s (another controller "
            f"holds it: its restart or its readiness is taking long): {exc}"
        ) from exc
    path = _lock_file(name)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump({"key": answer["key"], "lease": lease}, handle)
    waited = round(time.monotonic() - start, 2)
    log.debug("k8s_etcd: took the turn for %s after %ss", name, waited)
    return {"name": name, "waited": waited}


def give_turn(name: str) -> dict[str, Any]:
    """
    Give back the turn ``name`` this controller took (take_turn): unlock and revoke its
    lease. Nothing to do when it holds none.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_etcd.give_turn kube-apiserver
    """
    path = _lock_file(name)
    try:
        with open(path, encoding="utf-8") as handle:
            held = json.load(handle)
    except (OSError, ValueError):
        return {"name": name, "given": False}
    cfg = __salt__["k8s_cluster.config"]()
    try:
        _post(cfg, "/v3/lock/unlock", {"key": held["key"]}, 10)
    finally:
        with contextlib.suppress(CommandExecutionError):  # else it expires by itself
            _post(cfg, "/v3/lease/revoke", {"ID": held["lease"]}, 10)
        os.unlink(path)
    log.debug("k8s_etcd: gave the turn for %s back", name)
    return {"name": name, "given": True}


def _work_dir(cfg):
    """
    A private folder for one snapshot or restore, under ``<data_dir>.snapshots`` (0700,
    beside etcd's data: root-only, on its disk): its own per call, so that a scheduled
    snapshot, one before an upgrade and a restore never touch each other's files.
    etcd.clean removes the parent.
    """
    parent = f"{cfg['etcd']['data_dir'].rstrip('/')}.snapshots"
    os.makedirs(parent, mode=0o700, exist_ok=True)
    os.chmod(parent, 0o700)
    return tempfile.mkdtemp(dir=parent, prefix="work-")


def _tidy(directory):
    """Remove a work folder and what it holds; its parent too once empty."""
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(directory))


def snapshot_save(directory: str, timeout: float = 600) -> dict[str, Any]:
    """
    Take a snapshot of etcd from this controller's own member, which must be healthy (it sees
    a leader), through etcd's Maintenance.Snapshot API (what ``etcdctl snapshot save`` calls),
    into ``directory`` (which must exist; the file 0600), and check etcd's SHA-256 trailer as
    ``etcdutl snapshot restore`` does. Returns its ``path``, ``bytes`` and the member's
    ``revision`` before it was taken. A failed or refused snapshot leaves no file. The
    file holds etcd's data unsealed: snapshot_push is what takes one off the controller.

    directory
        An existing, root-only folder the snapshot is written to.

    timeout
        Seconds without a byte from etcd after which the snapshot fails.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-2 k8s_etcd.snapshot_save /root/etcd-snapshots
    """
    cfg = _etcd()
    if not os.path.isdir(directory) or os.stat(directory).st_mode & 0o077:
        raise CommandExecutionError(f"k8s_etcd: {directory} must be an existing 0700 folder")
    mine = _endpoints(cfg)[0]
    if not _healthy(cfg, mine, 5):
        raise CommandExecutionError(f"k8s_etcd: {mine} is not healthy: no snapshot from it")
    header = _post(cfg, "/v3/maintenance/status", {}, 10, [mine]).get("header") or {}
    revision = int(header.get("revision") or 0)
    handle, part = tempfile.mkstemp(dir=directory, prefix=".snapshot-", suffix=".part")
    request = urllib.request.Request(
        f"{mine}/v3/maintenance/snapshot",
        data=b"{}",
        headers={"Content-Type": "application/json"},
    )
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(request, timeout=timeout, context=_tls(cfg)) as resp,
        ):
            # grpc-gateway streams one JSON object per message and line: {"result": {...}}
            # or, when the stream fails, {"error": {...}}
            for line in resp:
                if not line.strip():
                    continue
                message = json.loads(line)
                if "error" in message:
                    raise CommandExecutionError(f"k8s_etcd: snapshot: {message['error']}")
                out.write(base64.b64decode(message.get("result", {}).get("blob") or ""))
        with open(part, "rb") as taken:
            if not __utils__["k8s_control_plane.snapshot_digest_ok"](taken):
                raise CommandExecutionError(
                    "k8s_etcd: the snapshot does not end with the SHA-256 of its database"
                )
    except (OSError, ValueError, http.client.HTTPException, CommandExecutionError) as exc:
        with contextlib.suppress(OSError):
            os.remove(part)
        if isinstance(exc, CommandExecutionError):
            raise
        raise CommandExecutionError(f"k8s_etcd: snapshot from {mine}: {exc}") from exc
    return {"path": part, "bytes": os.path.getsize(part), "revision": revision, "member": mine}


def _backup_key():
    key = __utils__["k8s_control_plane.pillar_key"]()
    secrets = (__pillar__.get(key) or {}).get("secrets") or {}
    value = secrets.get("backup_key") if isinstance(secrets, dict) else None
    if not value:
        raise CommandExecutionError(
            f"k8s_etcd: {key}:secrets:backup_key is missing: the master's ext_pillar k8s_pki "
            "makes it (docs/snapshots.md); no snapshot leaves this controller unsealed"
        )
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError as exc:
        raise CommandExecutionError(
            f"k8s_etcd: {key}:secrets:backup_key is not base64 (the validation says more)"
        ) from exc


def _etcdutl(cfg, *args, timeout=600):
    binary = os.path.join(cfg["etcd"]["bin_dir"], "etcdutl")
    if not os.path.exists(binary):
        raise CommandExecutionError(
            f"k8s_etcd: no {binary}: snapshots need etcd 3.5 or later, whose release has it"
        )
    result = __salt__["cmd.run_all"](
        [binary, *args], python_shell=False, timeout=timeout, output_loglevel="debug"
    )
    if result["retcode"] != 0:
        raise CommandExecutionError(
            f"k8s_etcd: etcdutl {args[0]} {args[1]}: {result['stderr'] or result['stdout']}"
        )
    return result["stdout"]


def snapshot_push(reason: str = "manual", timeout: float = 600) -> dict[str, Any]:
    """
    Take a snapshot of etcd from this controller's own healthy member (snapshot_save),
    verify it with ``etcdutl snapshot status``, seal it (AES-256-GCM under
    ``secrets:backup_key``) and push the sealed file to the master (``cp.push``, which the
    master allows with ``file_recv: True``). Nothing unsealed leaves this controller and
    nothing is left on it. The master's runner ``k8s_snapshot.take`` stores it and keeps
    the cluster's ``etcd:snapshots`` retention. Returns the snapshot's ``name``, its
    ``upload_path`` on the master, its sizes, etcd's ``status`` of it and the retention.

    reason
        Why it was taken (scheduled, upgrade, membership, manual): logged.

    timeout
        Seconds without a byte from etcd after which the snapshot fails.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-2 k8s_etcd.snapshot_push
    """
    cfg = __salt__["k8s_cluster.config"]()
    if not cfg["etcd"].get("managed"):
        return {"skipped": "etcd:managed is false: this etcd is backed up by whoever runs it"}
    key = _backup_key()
    work = _work_dir(cfg)
    rules = "k8s_control_plane."
    try:
        taken = snapshot_save(work, timeout)
        status = json.loads(_etcdutl(cfg, "snapshot", "status", taken["path"], "-w", "json"))
        name = __utils__[rules + "snapshot_name"](
            cfg["cluster"],
            datetime.datetime.now(datetime.UTC),
            __grains__["id"],
            int(status.get("revision") or taken["revision"]),
        )
        sealed = os.path.join(work, name)
        fd = os.open(sealed, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(taken["path"], "rb") as plain, os.fdopen(fd, "wb") as out:
            __utils__[rules + "seal_snapshot"](plain, out, key)
        upload = f"/k8s_control_plane/{cfg['cluster']}/{name}"
        if not __salt__["cp.push"](sealed, upload_path=upload):
            raise CommandExecutionError(
                "k8s_etcd: the master refused the snapshot (cp.push): it needs file_recv: True "
                "and file_recv_max_size (MB) above "
                f"{os.path.getsize(sealed) // 2**20 + 1} (docs/snapshots.md)"
            )
        sealed_bytes = os.path.getsize(sealed)
    finally:
        _tidy(work)
    snapshots = cfg["etcd"]["snapshots"]
    log.info("k8s_etcd: snapshot %s (%s) pushed to the master", name, reason)
    return {
        "name": name,
        "cluster": cfg["cluster"],
        "upload_path": upload,
        "bytes": taken["bytes"],
        "sealed_bytes": sealed_bytes,
        "status": status,
        "reason": reason,
        "keep": snapshots["keep"],
        "max_age_days": snapshots["max_age_days"],
    }


# What etcd asks of a restore under a running Kubernetes (etcd-io/etcd#16028, the flags from
# PR 16029; Kubernetes' "Operating etcd clusters": restoring): the revision jumps past any a
# watcher saw, and the jumped-over ones read as compacted, so every informer relists instead
# of missing changes. 1e9 is the bump the etcd docs suggest.
BUMP_REVISION = 1_000_000_000
STOPPED_FOR_RESTORE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")


def _restored_dir(cfg, token):
    """Where snapshot_prepare restores for ``token``: in the root-only work parent."""
    return f"{cfg['etcd']['data_dir'].rstrip('/')}.snapshots/restored-{token}"


def _token_ok(token):
    return bool(token) and all(c.isalnum() or c in "-_." for c in str(token))


def snapshot_prepare(
    name: str, token: str, saltenv: str = "k8s-snapshots", timeout: float = 600
) -> dict[str, Any]:
    """
    The first half of a restore, which stops nothing: fetch the sealed snapshot ``name``
    from the master (the saltenv ``k8s-snapshots``, docs/snapshots.md), open it with
    ``secrets:backup_key``, check etcd's trailer and restore it into
    ``<data_dir>.restored-<token>`` as this controller's member of a new cluster (token
    ``token``) of every listed controller (``etcdutl snapshot restore --bump-revision
    --mark-compacted``). snapshot_swap then puts it in place. A failure leaves nothing.

    name
        The snapshot's file name (``salt-run k8s_snapshot.list``).

    token
        The new cluster's ``--initial-cluster-token``, the same on every member.

    saltenv
        The master's file_roots environment the snapshots are served from.

    timeout
        Seconds for etcdutl.

    CLI Example:

    .. code-block:: bash

        salt -L k8s-controller-1,k8s-controller-2,k8s-controller-3 k8s_etcd.snapshot_prepare \\
            hardway_20261206T120000Z_k8s-controller-1_r1234.db.sealed hardway-restore-1
    """
    cfg = _etcd()
    rules = "k8s_control_plane."
    found = __utils__[rules + "parse_snapshot_name"](name)
    if not found or found["cluster"] != cfg["cluster"]:
        raise CommandExecutionError(
            f"k8s_etcd: {name!r} is not a snapshot of cluster {cfg['cluster']!r} "
            "(salt-run k8s_snapshot.list names them)"
        )
    if not _token_ok(token):
        raise CommandExecutionError(f"k8s_etcd: {token!r} is no cluster token (letters, -_.)")
    key = _backup_key()
    etcd = cfg["etcd"]
    me = __salt__["k8s_cluster.controller"]()
    work = _work_dir(cfg)  # makes the root-only parent of the restored data too
    restored = _restored_dir(cfg, token)
    shutil.rmtree(restored, ignore_errors=True)  # what an interrupted run of this token left
    try:
        sealed = os.path.join(work, name)
        fetched = __salt__["cp.get_file"](
            f"salt://{cfg['cluster']}/{name}", sealed, saltenv=saltenv
        )
        if not fetched:
            raise CommandExecutionError(
                f"k8s_etcd: the master serves no {cfg['cluster']}/{name} in saltenv {saltenv}"
            )
        plain = os.path.join(work, "snapshot.db")
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(sealed, "rb") as source, os.fdopen(fd, "wb") as out:
            try:
                __utils__[rules + "unseal_snapshot"](source, out, key)
            except ValueError as exc:
                raise CommandExecutionError(f"k8s_etcd: {name}: {exc}") from exc
        with open(plain, "rb") as check:
            if not __utils__[rules + "snapshot_digest_ok"](check):
                raise CommandExecutionError(f"k8s_etcd: {name}: its SHA-256 trailer is wrong")
        _etcdutl(
            cfg,
            "snapshot",
            "restore",
            plain,
            "--name",
            me["id"],
            "--initial-cluster",
            __utils__[rules + "initial_cluster"](cfg),
            "--initial-cluster-token",
            token,
            "--initial-advertise-peer-urls",
            f"https://{me['address']}:{etcd['peer_port']}",
            "--data-dir",
            restored,
            "--bump-revision",
            str(BUMP_REVISION),
            "--mark-compacted",
            timeout=timeout,
        )
        os.chmod(restored, 0o700)
    except BaseException:
        shutil.rmtree(restored, ignore_errors=True)
        raise
    finally:
        _tidy(work)
    return {"prepared": name, "member": me["id"], "token": token, "restored": restored}


def _active(units):
    """The units not yet stopped: active, or still stopping (``is-active`` says no then)."""
    states = {}
    for unit in units:
        out = __salt__["cmd.run_all"](
            ["systemctl", "show", "-p", "ActiveState", "--value", unit], python_shell=False
        )
        states[unit] = out["stdout"].strip()
    return [u for u, state in states.items() if state not in ("inactive", "failed", "")]


def _stop_now(units, grace=15.0):
    """
    Stop ``units`` together, each given ``grace`` seconds, then SIGKILL the ones still up
    or stopping: an apiserver whose etcd is gone waits on it in its shutdown until
    systemd's stop timeout (90 s, measured in the lab), and it has nothing of its own to
    save. Returns how each stopped.
    """
    running = _active(units)
    if not running:
        return {}
    __salt__["cmd.run_all"](["systemctl", "stop", "--no-block", *running], python_shell=False)
    deadline = time.monotonic() + grace
    while _active(running) and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = _active(running)
    if killed:
        __salt__["cmd.run_all"](
            ["systemctl", "kill", "--signal=SIGKILL", *killed], python_shell=False
        )
        deadline = time.monotonic() + 30
        while _active(killed) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _active(killed):
            raise CommandExecutionError(f"k8s_etcd: {', '.join(_active(killed))} would not stop")
    return {u: f"killed after {grace}s" if u in killed else "stopped" for u in running}


def snapshot_swap(token: str) -> dict[str, Any]:
    """
    The second half of a restore: stop kube-apiserver, kube-controller-manager,
    kube-scheduler and etcd here (each given 15 s, then killed), move etcd's data aside
    to ``<data_dir>.before-restore/<token>`` (root-only, never removed by the formula: the
    operator deletes it once the restore is good) and put what snapshot_prepare restored
    for ``token`` in its place. Starts nothing: ``orch.restore`` starts etcd on every
    controller at once, then the control plane.

    token
        The restore's cluster token (snapshot_prepare's).

    CLI Example:

    .. code-block:: bash

        salt -L k8s-controller-1,k8s-controller-2,k8s-controller-3 k8s_etcd.snapshot_swap \\
            hardway-restore-1
    """
    cfg = _etcd()
    if not _token_ok(token):
        raise CommandExecutionError(f"k8s_etcd: {token!r} is no cluster token (letters, -_.)")
    data = cfg["etcd"]["data_dir"].rstrip("/")
    restored = _restored_dir(cfg, token)
    if not os.path.isdir(os.path.join(restored, "member")):
        raise CommandExecutionError(
            f"k8s_etcd: nothing restored for {token} ({restored}): snapshot_prepare first"
        )
    aside_root = f"{data}.before-restore"
    aside = os.path.join(aside_root, token)
    if os.path.exists(aside):
        raise CommandExecutionError(f"k8s_etcd: {aside} exists: this restore was swapped before")
    stopped = _stop_now(STOPPED_FOR_RESTORE)
    os.makedirs(aside_root, mode=0o700, exist_ok=True)
    os.chmod(aside_root, 0o700)
    os.makedirs(data, mode=0o700, exist_ok=True)
    # etcd's data is the member/ folder: moved, not the data dir itself (it may be a mount)
    # (shutil.move: a rename, or a copy where the data dir is a mount of its own)
    moved = None
    if os.path.exists(os.path.join(data, "member")):
        os.makedirs(aside, mode=0o700)
        shutil.move(os.path.join(data, "member"), os.path.join(aside, "member"))
        moved = aside
    try:
        shutil.move(os.path.join(restored, "member"), os.path.join(data, "member"))
    except OSError:
        if moved:  # put the data back as it was
            shutil.move(os.path.join(aside, "member"), os.path.join(data, "member"))
        raise
    shutil.rmtree(restored, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(restored))
    os.chmod(data, 0o700)
    log.warning("k8s_etcd: etcd's data swapped for the restore %s", token)
    return {"swapped": token, "data_dir": data, "kept_aside": moved, "stopped": stopped}
