"""What the three components share, and kube-controller-manager and kube-scheduler.

The controller-manager and the scheduler check their flags and files (kubeconfigs, the scheduler's
KubeSchedulerConfiguration of the right API version) and serve ``/healthz``, ``/livez`` and
``/readyz`` on their secure port (self-signed without ``--tls-cert-file``), which is what
k8s_health.summary reads. They run no controllers and schedule nothing.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import ssl
import tempfile
import threading
import urllib.parse

from . import Fatal, Log, aggregate, go_err
from .checks import Checker, self_signed
from .flags import SCHEDULER_CONFIG_VERSIONS, exists_in
from .serve import Server, health_body, listen, status_object


class Component:
    """Validation, serving, SIGTERM and the private temporary directory."""

    secure_port_default = 0
    insecure_port_default = 0

    def __init__(self, name: str, version: str, minor: int, opts: dict, log: Log):
        self.name = name
        self.version = version
        self.minor = minor
        self.opts = opts
        self.log = log
        self.tmpdir = tempfile.mkdtemp(prefix=f"{name}-double-")  # mode 0700
        self.stop = threading.Event()
        self.servers: list[Server] = []

    def cleanup(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def checker(self) -> Checker:
        return Checker(self.name, self.minor, self.opts, self.tmpdir)

    def validate(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def serve(self, server: Server) -> None:
        self.servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        self.log.info(f"Serving securely on {host}:{port}")

    def run(self) -> int:
        self.validate()
        if os.environ.get("KUBE_DOUBLE_VALIDATE_ONLY") == "1":
            self.log.info("flags and files are valid; not serving (KUBE_DOUBLE_VALIDATE_ONLY=1)")
            return 0
        received = []

        def on_signal(signum, _frame):
            received.append(signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not self.stop.wait(0.5):
            pass
        self.log.info(f"Received {signal.Signals(received[0]).name}, shutting down")
        for server in self.servers:
            server.shutdown()
            server.server_close()
        return 0

    # -- shared checks ----------------------------------------------------------------------
    def port_errors(self, secure_required: bool) -> list[str]:
        secure = self.opts.get("secure-port", self.secure_port_default)
        if secure_required and not 1 <= secure <= 65535:
            return [
                f"--secure-port {secure} must be between 1 and 65535, inclusive. "
                "It cannot be turned off with 0"
            ]
        if not 0 <= secure <= 65535:
            return [
                f"--secure-port {secure} must be between 0 and 65535, inclusive. "
                "0 for turning off secure port"
            ]
        return []

    def insecure_port_errors(self, flag: str, last_serving: int) -> list[str]:
        """Insecure serving: allowed below ``last_serving``, only 0 until the flags went away.

        The double checks the value but serves nothing insecurely: nothing in the project
        connects to an insecure port.
        """
        default = self.insecure_port_default if self.minor < last_serving else 0
        port = self.opts.get(flag, default)
        if self.minor >= last_serving and port != 0:
            return [f"invalid port value {port}: only zero is allowed"]
        if not 0 <= port <= 65535:
            return [
                f"--{flag} {port} must be between 0 and 65535, inclusive. 0 for turning off "
                "insecure (HTTP) port"
            ]
        return []

    def serving_context(self, client_ca: str | None) -> ssl.SSLContext:
        cert, key = self.opts.get("tls-cert-file"), self.opts.get("tls-private-key-file")
        if not cert:
            directory = self.opts.get("cert-dir") or self.tmpdir
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise Fatal(
                    f"error creating self-signed certificates: mkdir {directory}: {go_err(exc)}"
                ) from None
            cert, key = self_signed(directory, self.name.replace("kube-", ""))
            self.log.info(f"Generated self-signed cert ({cert}, {key})")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if client_ca:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(cafile=client_ca)
        return ctx


class ClientComponent(Component):
    """kube-controller-manager and kube-scheduler: a kubeconfig, and health on the secure port."""

    def __init__(self, *args):
        super().__init__(*args)
        self.leader_elect = bool(self.opts.get("leader-elect", True))

    def require_server(self, files: dict) -> None:
        if not files.get("kubeconfig") and not self.opts.get("master"):
            raise Fatal(
                "invalid configuration: no configuration has been provided, try setting "
                "KUBERNETES_MASTER environment variable"
            )

    def start(self) -> None:
        port = self.opts.get("secure-port", self.secure_port_default)
        if port:
            ctx = self.serving_context(self.opts.get("client-ca-file"))
            self.serve(listen(self, self.opts.get("bind-address", "0.0.0.0"), port, ctx))

    def handle(self, req) -> None:
        url = urllib.parse.urlsplit(req.path)
        path = url.path.rstrip("/") or "/"
        allowed = self.opts.get("authorization-always-allow-paths") or (
            ["/healthz", "/readyz", "/livez"] if self.minor >= 22 else ["/healthz"]
        )
        if path in allowed and path in ("/healthz", "/livez", "/readyz"):
            checks = [("ping", lambda: None)]
            if self.leader_elect:
                checks.append(("leaderElection", lambda: None))
            verbose = "verbose" in urllib.parse.parse_qs(url.query, keep_blank_values=True)
            return req.reply_text(*health_body(path.strip("/"), checks, verbose))
        # Anything else needs delegated authorization, which the double does not do.
        message = f'forbidden: User "system:anonymous" cannot get path "{path}"'
        req.reply_json(403, status_object(403, "Forbidden", message, {}))


class ControllerManager(ClientComponent):
    secure_port_default = 10257
    insecure_port_default = 10252

    def validate(self) -> None:
        opts, errors = self.opts, self.port_errors(secure_required=False)
        if self.minor < 24:
            errors += self.insecure_port_errors("port", 22)
        if not opts.get("kubeconfig") and not opts.get("master"):
            errors.append(
                "invalid configuration: no configuration has been provided, try setting "
                "KUBERNETES_MASTER environment variable"
            )
        for flag in ("cluster-cidr", "service-cluster-ip-range"):
            for text in filter(None, (opts.get(flag) or "").split(",")):
                try:
                    ipaddress.ip_network(text.strip(), strict=False)
                except ValueError:
                    errors.append(f'--{flag}: invalid CIDR address: "{text}"')
        if errors:
            raise Fatal(aggregate(errors))
        self.require_server(self.checker().check_all())


class Scheduler(ClientComponent):
    secure_port_default = 10259
    insecure_port_default = 10251
    SCHEME = "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme/scheme.go:30"

    def validate(self) -> None:
        opts, errors = self.opts, self.port_errors(secure_required=False)
        if self.minor < 24:
            errors += self.insecure_port_errors("port", 22)
        if errors:
            raise Fatal(aggregate(errors))
        checker = self.checker()
        path = opts.get("config")
        if not path:
            return self.require_server(checker.check_all())
        doc = checker.load_yaml("config", path)
        if not isinstance(doc, dict):
            raise Fatal(f'couldn\'t decode "{path}" as KubeSchedulerConfiguration')
        api, kind = doc.get("apiVersion"), doc.get("kind")
        if not api:
            raise Fatal(f"Object 'apiVersion' is missing in '{json.dumps(doc)}'")
        if not kind:
            raise Fatal(f"Object 'Kind' is missing in '{json.dumps(doc)}'")
        span = SCHEDULER_CONFIG_VERSIONS.get(api)
        if kind != "KubeSchedulerConfiguration" or not span or not exists_in(*span, self.minor):
            raise Fatal(
                f'no kind "{kind}" is registered for version "{api}" in scheme "{self.SCHEME}"'
            )
        self.leader_elect = bool((doc.get("leaderElection") or {}).get("leaderElect", True))
        checker.check_all(ignored=("kubeconfig",))  # with --config the flag is ignored
        kubeconfig = (doc.get("clientConnection") or {}).get("kubeconfig")
        if not kubeconfig and not opts.get("master"):
            raise Fatal(
                "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                "KUBERNETES_SERVICE_PORT must be defined"
            )
        if kubeconfig:
            checker.kubeconfig(
                "config (clientConnection.kubeconfig)", kubeconfig, opts.get("master")
            )
        ignored = [f for f in ("kubeconfig", "leader-elect", "kube-api-qps") if f in opts]
        if ignored:
            self.log.warning(f"--config is set: ignoring the deprecated flags {ignored}")
