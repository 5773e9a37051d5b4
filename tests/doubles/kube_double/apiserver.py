"""kube-apiserver: the API subset the project uses, stored in etcd.

What the project's states, modules and tests do against an apiserver, and so all it serves:

* ``GET /healthz``, ``/livez``, ``/readyz`` (``?verbose``): haproxy's checks, k8s_health, curl in
  the lab; failing (500) while etcd is unreachable. Public, as the bootstrap ClusterRole
  system:public-info-viewer makes them (anonymous requests when ``--anonymous-auth`` is on);
* ``GET /version``;
* clusterroles and clusterrolebindings (``rbac.authorization.k8s.io/v1``, and ``v1beta1`` before
  1.22): ``GET`` one object, ``POST`` to create, ``PUT`` to replace (resourceVersion checked),
  ``DELETE``, each with ``?dryRun=All``: k8s_api.get/apply and k8s_object.absent.

Authentication is by client certificate (CN user, O groups) against ``--client-ca-file``.
Authorization: AlwaysAllow/AlwaysDeny as given; otherwise the group system:masters may do
anything and everyone may GET the public paths. Stored RBAC objects are kept, not evaluated.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import re
import sys
import threading
import urllib.parse
import uuid

from . import MARK, Fatal, aggregate
from .components import Component
from .flags import ADMISSION_PLUGINS, AUTHORIZATION_MODES, exists_in
from .serve import health_body, listen, status_object
from .store import Etcd, EtcdUnavailable

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_KINDS = {"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding"}
RBAC_FIELDS = {
    "ClusterRole": ("rules", "aggregationRule"),
    "ClusterRoleBinding": ("subjects", "roleRef"),
}
META_FIELDS = (
    "name",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "uid",
    "resourceVersion",
    "creationTimestamp",
)
RULE_FIELDS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")
# The non-resource URLs of the bootstrap ClusterRole system:public-info-viewer, which binds them
# to system:authenticated and system:unauthenticated.
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")
RESOURCE_PATH = re.compile(
    rf"/apis/{re.escape(RBAC_GROUP)}/(v1|v1beta1)/(clusterroles|clusterrolebindings)(?:/([^/]+))?/?"
)


def rbac_versions(minor: int) -> list[str]:
    return ["v1"] + (["v1beta1"] if minor < 22 else [])


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def go_value(value) -> str:
    """Roughly Go's %#v for the values the validation messages print."""
    if isinstance(value, dict) and set(value) <= {"apiGroup", "kind", "name"}:
        return (
            f'rbac.RoleRef{{APIGroup:"{value.get("apiGroup", "")}", '
            f'Kind:"{value.get("kind", "")}", Name:"{value.get("name", "")}"}}'
        )
    return json.dumps(value)


class FieldErrors:
    def __init__(self):
        self.items: list[tuple[str, str, str]] = []  # (field, reason, message)

    def required(self, field: str, detail: str = "") -> None:
        self.items.append(
            (field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))
        )

    def invalid(self, field: str, value, detail: str) -> None:
        self.items.append(
            (field, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")
        )

    def not_supported(self, field: str, value, supported: list[str]) -> None:
        valid = ", ".join(f'"{s}"' for s in supported)
        message = f'Unsupported value: "{value}": supported values: {valid}'
        self.items.append((field, "FieldValueNotSupported", message))

    def raise_if_any(self, kind: str, name: str) -> None:
        if not self.items:
            return
        texts = [f"{field}: {msg}" for field, _, msg in self.items]
        raise ApiError(
            422,
            "Invalid",
            f'{kind}.{RBAC_GROUP} "{name}" is invalid: {aggregate(texts)}',
            {
                "name": name,
                "group": RBAC_GROUP,
                "kind": kind,
                "causes": [{"reason": r, "message": m, "field": f} for f, r, m in self.items],
            },
        )


def validate_path_segment(errors: FieldErrors, field: str, name: str) -> None:
    if name in (".", ".."):
        errors.invalid(field, name, f"may not be '{name}'")
    for bad in ("/", "%"):
        if bad in name:
            errors.invalid(field, name, f"may not contain '{bad}'")


def validate_rbac(obj: dict, old: dict | None) -> None:
    kind, meta = obj["kind"], obj["metadata"]
    name = meta.get("name", "")
    errors = FieldErrors()
    if not name:
        errors.required("metadata.name", "name or generateName is required")
    else:
        validate_path_segment(errors, "metadata.name", name)
    if kind == "ClusterRole":
        for i, rule in enumerate(obj.get("rules") or []):
            field = f"rules[{i}]"
            if not rule.get("verbs"):
                errors.required(f"{field}.verbs", "verbs must contain at least one value")
            if rule.get("nonResourceURLs"):
                if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                    errors.invalid(
                        f"{field}.nonResourceURLs",
                        rule["nonResourceURLs"],
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                continue
            if not rule.get("apiGroups"):
                errors.required(
                    f"{field}.apiGroups", "resource rules must supply at least one api group"
                )
            if not rule.get("resources"):
                errors.required(
                    f"{field}.resources", "resource rules must supply at least one resource"
                )
    else:
        ref = obj.get("roleRef") or {}
        if ref.get("apiGroup") != RBAC_GROUP:
            errors.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP])
        if ref.get("kind") != "ClusterRole":
            errors.not_supported("roleRef.kind", ref.get("kind", ""), ["ClusterRole"])
        if not ref.get("name"):
            errors.required("roleRef.name")
        else:
            validate_path_segment(errors, "roleRef.name", ref["name"])
        for i, subject in enumerate(obj.get("subjects") or []):
            field = f"subjects[{i}]"
            if not subject.get("name"):
                errors.required(f"{field}.name")
            skind = subject.get("kind")
            if skind == "ServiceAccount":
                if subject.get("apiGroup"):
                    errors.not_supported(f"{field}.apiGroup", subject["apiGroup"], [""])
                if not subject.get("namespace"):
                    errors.required(f"{field}.namespace")
            elif skind in ("User", "Group"):
                if subject.get("apiGroup") != RBAC_GROUP:
                    errors.not_supported(
                        f"{field}.apiGroup", subject.get("apiGroup", ""), [RBAC_GROUP]
                    )
            else:
                errors.not_supported(
                    f"{field}.kind", skind or "", ["ServiceAccount", "User", "Group"]
                )
        if old is not None and old.get("roleRef") != obj.get("roleRef"):
            errors.invalid("roleRef", obj.get("roleRef"), "cannot change roleRef")
    errors.raise_if_any(kind, name)


class ApiServer(Component):
    secure_port_default = 6443
    insecure_port_default = 8080

    def __init__(self, *args):
        super().__init__(*args)
        self.etcd: Etcd | None = None
        self.prefix = "/registry"
        self.modes: list[str] = []
        self.anonymous = True

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        opts, minor = self.opts, self.minor
        errors = []
        servers = opts.get("etcd-servers") or []
        if not servers:
            errors.append("--etcd-servers must be specified")
        for server in servers:
            url = urllib.parse.urlsplit(server)
            if url.scheme not in ("http", "https") or not url.hostname:
                errors.append(f'--etcd-servers: "{server}" is not a valid http(s) URL')
        issuers = opts.get("service-account-issuer") or []
        if minor >= 20:
            if not issuers:
                errors.append("service-account-issuer is a required flag")
            if not issuers or not opts.get("service-account-signing-key-file"):
                errors.append(
                    "--service-account-signing-key-file and --service-account-issuer "
                    "are required flags"
                )
        for issuer in issuers:
            url = urllib.parse.urlsplit(issuer)
            if ":" in issuer and not (url.scheme and url.netloc):
                errors.append(
                    f"service-account-issuer {issuer!r} contained a ':' but was not a valid URL"
                )
        # Structured authorization (KEP-3221): alpha 1.29 behind the feature gate
        # StructuredAuthorizationConfiguration, beta (on) 1.30, GA 1.32; exclusive with the legacy
        # flags, and then the only authorization error reported
        # (pkg/kubeapiserver/options/authorization.go, Validate).
        authz_config = opts.get("authorization-config")
        legacy = "authorization-mode" in opts or any(
            flag.startswith("authorization-webhook-") for flag in opts
        )
        gated = (opts.get("feature-gates") or {}).get("StructuredAuthorizationConfiguration")
        if authz_config and minor < 30 and gated != "true":
            errors.append(
                "--authorization-config cannot be used without enabling "
                "StructuredAuthorizationConfiguration feature flag"
            )
        elif authz_config and legacy:
            errors.append(
                "--authorization-config can not be specified when --authorization-mode or "
                "--authorization-webhook-* flags are defined"
            )
        self.modes = opts.get("authorization-mode") or ["AlwaysAllow"]
        for mode in dict.fromkeys([] if authz_config else self.modes):
            if mode not in AUTHORIZATION_MODES:
                errors.append(f'authorization-mode "{mode}" is not a valid mode')
            elif self.modes.count(mode) > 1:
                errors.append(f'authorization-mode "{mode}" has mode specified more than once')
        if "Webhook" in self.modes and not opts.get("authorization-webhook-config-file"):
            errors.append("authorization-mode Webhook's authorization config file not passed")
        if "ABAC" in self.modes and not opts.get("authorization-policy-file"):
            errors.append("authorization-mode ABAC's authorization policy file not passed")
        for flag in ("enable-admission-plugins", "disable-admission-plugins", "admission-control"):
            for plugin in opts.get(flag) or []:
                span = ADMISSION_PLUGINS.get(plugin)
                if not span or not exists_in(span[0], span[1], minor):
                    errors.append(f'{flag} plugin "{plugin}" is unknown')
        errors += self.port_errors(secure_required=True)
        if minor < 24:
            flag = "insecure-port" if "insecure-port" in opts else "port"
            errors += self.insecure_port_errors(flag, 20)
        ranges = (opts.get("service-cluster-ip-range") or "10.0.0.0/24").split(",")
        for text in ranges:
            try:
                net = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                errors.append(f'--service-cluster-ip-range "{text}" is not a valid CIDR')
                continue
            if net.max_prefixlen - net.prefixlen > 20:
                errors.append("specified --service-cluster-ip-range is too large")
        if len(ranges) > 2:
            errors.append("--service-cluster-ip-range must not contain more than two entries")
        if errors:
            raise Fatal(aggregate(errors))
        checker = self.checker()
        checker.check_all()
        if authz_config:
            doc = checker.load_yaml("authorization-config", authz_config)
            authorizers = (doc or {}).get("authorizers") if isinstance(doc, dict) else None
            self.modes = [a.get("type") for a in authorizers or [] if isinstance(a, dict)]
        self.prefix = "/" + (opts.get("etcd-prefix") or "/registry").strip("/")
        self.anonymous = opts.get("anonymous-auth", True)
        if self.anonymous and "AlwaysAllow" in self.modes:
            self.log.warning(
                "AnonymousAuth is not allowed with the AlwaysAllow authorizer. "
                "Resetting AnonymousAuth to false. You should use a different "
                "authorizer"
            )
            self.anonymous = False

    # -- serving ----------------------------------------------------------------------------
    def start(self) -> None:
        opts = self.opts
        self.etcd = Etcd(
            opts["etcd-servers"],
            opts.get("etcd-cafile"),
            opts.get("etcd-certfile"),
            opts.get("etcd-keyfile"),
        )
        ctx = self.serving_context(opts.get("client-ca-file"))
        port = opts.get("secure-port", self.secure_port_default)
        self.serve(listen(self, opts.get("bind-address", "0.0.0.0"), port, ctx))
        threading.Thread(target=self.report_etcd, daemon=True).start()

    def report_etcd(self) -> None:
        """Log etcd's health when it changes: what the journal tells a reader of the lab."""
        healthy = None
        while not self.stop.wait(0 if healthy is None else 2.0):
            error = self.etcd.health_error()
            if (error is None) != healthy:
                if error:
                    self.log.error(f"etcd is unreachable or unhealthy: {error}")
                else:
                    self.log.info("etcd is healthy")
            healthy = error is None

    def checks(self) -> list:
        return [
            ("ping", lambda: None),
            ("log", lambda: None),
            ("etcd", self.etcd.health_error),
        ]

    # -- requests ---------------------------------------------------------------------------
    def authorize(self, groups: list[str], method: str, path: str) -> bool:
        if "system:masters" in groups:
            return True
        for mode in self.modes:
            if mode == "AlwaysAllow":
                return True
            if mode == "AlwaysDeny":
                return False
            if mode == "RBAC" and method == "GET" and path in PUBLIC_PATHS:
                return True
        return False

    @staticmethod
    def forbidden(user: str, verb: str, path: str, target) -> ApiError:
        if target is None:
            message = f'forbidden: User "{user}" cannot {verb} path "{path}"'
            return ApiError(403, "Forbidden", message, {})
        _, resource, name = target
        subject = f'{resource}.{RBAC_GROUP} "{name}"' if name else f"{resource}.{RBAC_GROUP}"
        details = {"group": RBAC_GROUP, "kind": resource}
        if name:
            details = {"name": name, **details}
        return ApiError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
            f'group "{RBAC_GROUP}" at the cluster scope',
            details,
        )

    def handle(self, req) -> None:
        url = urllib.parse.urlsplit(req.path)
        path = url.path or "/"
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            identity = req.peer_identity()
            if identity:
                user, groups = identity[0], identity[1] + ["system:authenticated"]
            elif self.anonymous:
                user, groups = "system:anonymous", ["system:unauthenticated"]
            else:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            match = RESOURCE_PATH.fullmatch(path)
            target = match.groups("") if match else None
            verb = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}
            verb = verb[req.command]
            if target and verb == "get" and not target[2]:
                verb = "list"
            self.log.v(4, f"{req.command} {path} user={user!r} groups={groups} verb={verb}")
            if not self.authorize(groups, req.command, path):
                raise self.forbidden(user, verb, path, target)
            self.route(req, path, query, target, verb)
        except ApiError as exc:
            req.reply_json(exc.code, status_object(exc.code, exc.reason, exc.message, exc.details))
        except EtcdUnavailable as exc:
            self.log.error(f"request {req.command} {path} failed: etcd unavailable: {exc}")
            message = f"Internal error occurred: etcd is unavailable: {exc}"
            details = {"causes": [{"message": str(exc)}]}
            req.reply_json(500, status_object(500, "InternalError", message, details))

    def route(self, req, path: str, query: dict, target, verb: str) -> None:
        health = re.fullmatch(r"/(healthz|livez|readyz)/?", path)
        if health and verb == "get":
            code, body = health_body(health.group(1), self.checks(), "verbose" in query)
            if code != 200:
                self.log.v(2, f"{health.group(1)} check failed:\n{body.strip()}")
            return req.reply_text(code, body)
        if path in ("/version", "/version/") and verb == "get":
            return req.reply_json(200, self.version_info())
        discovery = self.discovery(path.rstrip("/")) if verb == "get" else None
        if discovery is not None:
            return req.reply_json(200, discovery)
        if target is None or target[0] not in rbac_versions(self.minor):
            return req.reply_text(404, "404 page not found\n")
        version, resource, name = target
        dry_run = False
        for value in query.get("dryRun", []):
            if value != "All":
                message = f'dryRun: Unsupported value: "{value}": supported values: "All"'
                raise ApiError(400, "BadRequest", message, {})
            dry_run = True
        ctx = {"req": req, "version": version, "resource": resource, "dry_run": dry_run}
        if verb == "get":
            current = self.load(resource, name)
            if current is None:
                raise self.not_found(resource, name)
            return req.reply_json(200, self.present(current, version))
        if verb == "create" and not name:
            return self.rbac_create(ctx, self.decode(req, RBAC_KINDS[resource], version))
        if verb == "update" and name:
            return self.rbac_update(ctx, name, self.decode(req, RBAC_KINDS[resource], version))
        if verb == "delete" and name:
            return self.rbac_delete(ctx, name)
        message = f"{MARK}: {verb} of {resource} is not implemented (the project does not use it)"
        raise ApiError(405, "MethodNotAllowed", message, {})

    def discovery(self, path: str) -> dict | None:
        """
        The legacy discovery documents kubectl reads before it GETs an object
        (the lab reads the RBAC objects back with the real kubectl): the core
        group with no resources, the RBAC group at this minor's versions and
        its two cluster-scoped resources. Served as application/json, so a
        kubectl that asks for aggregated discovery (1.26+) falls back to these.
        """
        versions = rbac_versions(self.minor)
        verbs = ["create", "delete", "get", "update"]
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/api/v1":
            return {"kind": "APIResourceList", "groupVersion": "v1", "resources": []}
        if path == "/apis":
            group = {
                "name": RBAC_GROUP,
                "versions": [{"groupVersion": f"{RBAC_GROUP}/{v}", "version": v} for v in versions],
                "preferredVersion": {"groupVersion": f"{RBAC_GROUP}/v1", "version": "v1"},
            }
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}
        match = re.fullmatch(rf"/apis/{re.escape(RBAC_GROUP)}/(\w+)", path)
        if match and match.group(1) in versions:
            resources = [
                {
                    "name": plural,
                    "singularName": kind.lower(),
                    "namespaced": False,
                    "kind": kind,
                    "verbs": verbs,
                }
                for plural, kind in RBAC_KINDS.items()
            ]
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{RBAC_GROUP}/{match.group(1)}",
                "resources": resources,
            }
        return None

    def version_info(self) -> dict:
        return {
            "major": "1",
            "minor": str(self.minor),
            "gitVersion": f"v{self.version}",
            "gitCommit": "test-double",
            "gitTreeState": "test-double",
            "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": f"python{sys.version_info[0]}.{sys.version_info[1]} ({MARK})",
            "compiler": "test-double",
            "platform": "linux/amd64",
            "testDouble": True,
        }

    # -- the RBAC objects -------------------------------------------------------------------
    def key(self, resource: str, name: str) -> str:
        return f"{self.prefix}/{resource}/{name}"

    @staticmethod
    def not_found(resource: str, name: str) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            f'{resource}.{RBAC_GROUP} "{name}" not found',
            {"name": name, "group": RBAC_GROUP, "kind": resource},
        )

    @staticmethod
    def already_exists(resource: str, name: str) -> ApiError:
        return ApiError(
            409,
            "AlreadyExists",
            f'{resource}.{RBAC_GROUP} "{name}" already exists',
            {"name": name, "group": RBAC_GROUP, "kind": resource},
        )

    @staticmethod
    def conflict(resource: str, name: str) -> ApiError:
        return ApiError(
            409,
            "Conflict",
            f"Operation cannot be fulfilled on {resource}.{RBAC_GROUP} "
            f'"{name}": the object has been modified; please apply your changes to the '
            "latest version and try again",
            {"name": name, "group": RBAC_GROUP, "kind": resource},
        )

    def load(self, resource: str, name: str):
        """(stored object, resourceVersion) or None."""
        found = self.etcd.get(self.key(resource, name))
        if found is None:
            return None
        return json.loads(found[0]), found[1]

    @staticmethod
    def present(stored: tuple, version: str) -> dict:
        obj, revision = stored
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(revision)
        rest = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion", "metadata")}
        order = ("name", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations")
        meta = {k: obj["metadata"][k] for k in order if k in obj["metadata"]}
        meta.update({k: v for k, v in obj["metadata"].items() if k not in meta})
        head = {"kind": obj["kind"], "apiVersion": f"{RBAC_GROUP}/{version}"}
        return {**head, "metadata": meta, **rest}

    def decode(self, req, kind: str, version: str) -> dict:
        """The request's JSON body as the object the server stores (unknown fields dropped,
        defaults set), as the real decoding does."""
        try:
            body = json.loads(req.read_body() or b"null")
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the body could not be decoded: {exc}", {}) from None
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a JSON object", {})
        expected = f"{RBAC_GROUP}/{version}"
        if body.get("apiVersion") and body["apiVersion"] != expected:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body['apiVersion']}) "
                f"does not match the expected API version ({expected})",
                {},
            )
        if body.get("kind") and body["kind"] != kind:
            raise ApiError(
                400,
                "BadRequest",
                f"the kind in the data ({body['kind']}) does not match the expected kind ({kind})",
                {},
            )
        meta_in = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        obj = {"kind": kind, "apiVersion": f"{RBAC_GROUP}/v1"}
        obj["metadata"] = {k: copy.deepcopy(meta_in[k]) for k in META_FIELDS if k in meta_in}
        obj["metadata"].pop("namespace", None)  # cluster-scoped: the namespace is dropped
        if kind == "ClusterRole":
            rules = [rule if isinstance(rule, dict) else {} for rule in body.get("rules") or []]
            obj["rules"] = [{k: list(r[k]) for k in RULE_FIELDS if r.get(k)} for r in rules]
            if body.get("aggregationRule") is not None:
                obj["aggregationRule"] = copy.deepcopy(body["aggregationRule"])
            return obj
        ref = body.get("roleRef") if isinstance(body.get("roleRef"), dict) else {}
        ref = {k: ref.get(k, "") for k in ("apiGroup", "kind", "name")}
        ref["apiGroup"] = ref["apiGroup"] or RBAC_GROUP  # SetDefaults_ClusterRoleBinding
        obj["roleRef"] = ref
        subjects = []
        for subject in body.get("subjects") or []:
            fields = ("kind", "apiGroup", "name", "namespace")
            subject = {k: v for k, v in dict(subject or {}).items() if k in fields and v}
            if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = RBAC_GROUP  # SetDefaults_Subject
            subjects.append(subject)
        if subjects:
            obj["subjects"] = subjects
        return obj

    def rbac_create(self, ctx: dict, obj: dict) -> None:
        meta, resource, req = obj["metadata"], ctx["resource"], ctx["req"]
        validate_rbac(obj, None)
        if meta.pop("resourceVersion", None):
            raise ApiError(
                500,
                "InternalError",
                "Internal error occurred: resourceVersion should not be set on objects to be "
                "created",
                {},
            )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        name = meta["name"]
        if ctx["dry_run"]:
            if self.load(resource, name) is not None:
                raise self.already_exists(resource, name)
            return req.reply_json(201, self.present((obj, 0), ctx["version"]))
        done, revision = self.etcd.put_if(self.key(resource, name), json.dumps(obj).encode(), 0)
        if not done:
            raise self.already_exists(resource, name)
        self.log.v(2, f"created {resource}/{name} (resourceVersion {revision})")
        req.reply_json(201, self.present((obj, revision), ctx["version"]))

    def rbac_update(self, ctx: dict, name: str, obj: dict) -> None:
        resource, meta, req = ctx["resource"], obj["metadata"], ctx["req"]
        if meta.get("name", "") != name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name', '')}) does not "
                f"match the name on the URL ({name})",
                {},
            )
        current = self.load(resource, name)
        wanted = meta.pop("resourceVersion", None)
        if current is None:  # AllowCreateOnUpdate is true for RBAC objects
            if wanted:
                raise self.not_found(resource, name)
            return self.rbac_create(ctx, obj)
        old, revision = current
        if wanted and str(wanted) != str(revision):
            raise self.conflict(resource, name)
        validate_rbac(obj, old)
        meta["uid"] = old["metadata"].get("uid")
        meta["creationTimestamp"] = old["metadata"].get("creationTimestamp")
        if json.dumps(obj, sort_keys=True) == json.dumps(old, sort_keys=True):
            return req.reply_json(200, self.present(current, ctx["version"]))  # nothing written
        if ctx["dry_run"]:
            return req.reply_json(200, self.present((obj, revision), ctx["version"]))
        key = self.key(resource, name)
        done, new_revision = self.etcd.put_if(key, json.dumps(obj).encode(), revision)
        if not done:
            raise self.conflict(resource, name)
        self.log.v(2, f"updated {resource}/{name} (resourceVersion {new_revision})")
        req.reply_json(200, self.present((obj, new_revision), ctx["version"]))

    def rbac_delete(self, ctx: dict, name: str) -> None:
        resource = ctx["resource"]
        current = self.load(resource, name)
        if current is None:
            raise self.not_found(resource, name)
        if not ctx["dry_run"]:
            if not self.etcd.delete(self.key(resource, name)):
                raise self.not_found(resource, name)
            self.log.v(2, f"deleted {resource}/{name}")
        uid = current[0]["metadata"].get("uid")
        details = {"name": name, "group": RBAC_GROUP, "kind": resource, "uid": uid}
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        ctx["req"].reply_json(200, {**body, "details": details})
