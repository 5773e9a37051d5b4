"""
A small Kubernetes API client (stdlib TLS, a kubeconfig's client
certificate): enough to read, create and replace cluster-scoped objects such
as the seed's ClusterRole and ClusterRoleBinding, idempotently, without
depending on kubectl's version. What to change is decided by
``_utils/k8s_control_plane/objects.py`` (``diff``, ``path_of``).
"""

import base64
import json
import logging
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import salt.utils.yaml
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_api"

DEFAULT_KUBECONFIG = "/var/lib/kubernetes/admin.kubeconfig"


def __virtual__():
    # Shells out to nothing (not even kubectl): stdlib TLS and HTTP.
    return __virtualname__


def _path_of(manifest):
    return __utils__["k8s_control_plane.object_path"](manifest)


def _b64_or_file(entry, key):
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"]).decode()
    if entry.get(key):
        with open(entry[key], encoding="utf-8") as handle:
            return handle.read()
    return None


def _connection(kubeconfig, server=None):
    """Return (server URL, ssl context) from a kubeconfig file."""
    try:
        with open(kubeconfig, encoding="utf-8") as handle:
            doc = salt.utils.yaml.safe_load(handle)
    except OSError as exc:
        raise CommandExecutionError(f"cannot read kubeconfig {kubeconfig}: {exc}") from exc
    context_name = doc.get("current-context")
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
    tls = ssl.create_default_context(cadata=_b64_or_file(cluster, "certificate-authority"))
    cert, key = _b64_or_file(user, "client-certificate"), _b64_or_file(user, "client-key")
    if cert and key:
        # load_cert_chain reads files only: a private directory, removed at once.
        with tempfile.TemporaryDirectory(prefix="k8s-api-") as tmp:
            os.chmod(tmp, 0o700)
            paths = []
            for name, text in (("cert.pem", cert), ("key.pem", key)):
                path = os.path.join(tmp, name)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
                paths.append(path)
            tls.load_cert_chain(*paths)
    return (server or cluster["server"]).rstrip("/"), tls


def request(
    method: str,
    path: str,
    body: Any = None,
    kubeconfig: str = DEFAULT_KUBECONFIG,
    server: str | None = None,
    timeout: float = 10,
) -> dict[str, Any]:
    """
    Send one request to the API server; return ``{"status": int, "body": ...}``
    (JSON decoded when possible).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_api.request GET /version
    """
    base, tls = _connection(kubeconfig, server)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, context=tls, timeout=float(timeout)) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError as exc:
        raise CommandExecutionError(f"{method} {base}{path}: {exc}") from exc
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = raw.decode("utf-8", "replace")
    log.debug("k8s_api: %s %s%s -> %s", method, base, path, status)  # never the bodies
    return {"status": status, "body": payload}


def get(
    manifest: dict[str, Any] | str, kubeconfig: str = DEFAULT_KUBECONFIG, server: str | None = None
) -> dict[str, Any] | None:
    """
    Return the live object for a manifest (dict or YAML), or None when absent.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_api.get \
            '{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: admin}}'
    """
    if isinstance(manifest, str):
        manifest = salt.utils.yaml.safe_load(manifest)
    resp = request("GET", _path_of(manifest), kubeconfig=kubeconfig, server=server)
    if resp["status"] == 404:
        return None
    if resp["status"] != 200:
        raise CommandExecutionError(f"GET {_path_of(manifest)}: {resp['status']} {resp['body']}")
    return resp["body"]


def apply(
    manifest: Any,  # a dict or its YAML text (Any: mypy cannot follow the parse below)
    dry_run: bool = False,
    kubeconfig: str = DEFAULT_KUBECONFIG,
    server: str | None = None,
) -> dict[str, Any]:
    """
    Create the object, or replace the fields we own when they differ.
    Returns ``{"action": "created"|"replaced"|"unchanged", "changes": {...}}``.

    dry_run
        Ask the server to validate without storing (``dryRun=All``).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_api.apply "$(cat role.yaml)" dry_run=True
    """
    if isinstance(manifest, str):
        manifest = salt.utils.yaml.safe_load(manifest)
    live = get(manifest, kubeconfig=kubeconfig, server=server)
    changes = __utils__["k8s_control_plane.object_diff"](manifest, live)
    label = f"{manifest.get('kind')} {manifest['metadata']['name']}"
    if not changes:
        log.debug("k8s_api: %s unchanged", label)
        return {"action": "unchanged", "changes": {}}
    log.debug(
        "k8s_api: %s %s%s, fields %s",
        label,
        "create" if live is None else "replace",
        " (dry run)" if dry_run else "",
        sorted(changes),
    )
    query = "?dryRun=All" if dry_run else ""
    path = _path_of(manifest)
    if live is None:
        method, url, body = "POST", path.rsplit("/", 1)[0] + query, manifest
    else:
        body = json.loads(json.dumps(manifest))
        body["metadata"]["resourceVersion"] = live["metadata"].get("resourceVersion")
        for meta in ("labels", "annotations"):
            merged = dict(live["metadata"].get(meta) or {}, **(body["metadata"].get(meta) or {}))
            if merged:
                body["metadata"][meta] = merged
        method, url = "PUT", path + query
    resp = request(method, url, body, kubeconfig=kubeconfig, server=server)
    if resp["status"] not in (200, 201):
        raise CommandExecutionError(f"{method} {url}: {resp['status']} {resp['body']}")
    return {"action": "created" if live is None else "replaced", "changes": changes}


def rewrite_secrets(
    kubeconfig: str = DEFAULT_KUBECONFIG, server: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    """
    Read every Secret and replace it unchanged, so that the apiserver stores it again under
    its encryption config's first key: the step of an encryption-key rotation that upstream
    does with ``kubectl get secrets -A -o json | kubectl replace -f -``. A Secret changed
    since it was listed (409) was stored by then under the first key already; one deleted
    since (404) needs nothing. Counts only, never a Secret's data.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_api.rewrite_secrets
    """
    base, tls = _connection(kubeconfig, server)

    def call(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, context=tls, timeout=float(timeout)) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"null")
            except ValueError:
                return exc.code, None
        except OSError as exc:
            raise CommandExecutionError(f"{method} {base}{path}: {exc}") from exc

    counts = {"rewritten": 0, "changed_since_listed": 0, "deleted_since_listed": 0}
    failed = []
    token = ""
    while True:
        query = "?limit=250" + (f"&continue={urllib.parse.quote(token)}" if token else "")
        status, page = call("GET", "/api/v1/secrets" + query)
        if status != 200 or not isinstance(page, dict):
            raise CommandExecutionError(f"GET /api/v1/secrets: {status}")
        for item in page.get("items") or []:
            meta = item["metadata"]
            path = f"/api/v1/namespaces/{meta['namespace']}/secrets/{meta['name']}"
            status, answer = call("PUT", path, {"apiVersion": "v1", "kind": "Secret", **item})
            if status == 200:
                counts["rewritten"] += 1
            elif status == 409:
                counts["changed_since_listed"] += 1
            elif status == 404:
                counts["deleted_since_listed"] += 1
            else:
                reason = answer.get("message") if isinstance(answer, dict) else None
                failed.append(f"{meta['namespace']}/{meta['name']}: {status} {reason or ''}")
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            break
    if failed:
        raise CommandExecutionError(
            f"k8s_api: {len(failed)} Secrets not rewritten: " + "; ".join(failed[:10])
        )
    return counts
