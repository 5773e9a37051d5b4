"""The files the flags point at, checked the way the real components load them.

A unit whose file is missing, unreadable or wrong fails to start, as the real one would: the
states' PKI, kubeconfigs, encryption config and scheduler config are observable this way.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import ssl
import subprocess
import time

import yaml

from . import Fatal, aggregate, go_err
from .flags import FLAGS, PAIRS


def run_openssl(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def self_signed(directory: str, name: str) -> tuple[str, str]:
    """A self-signed serving certificate for localhost/127.0.0.1, made by the openssl CLI."""
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    proc = run_openssl(
        [
            "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", key, "-out", cert, "-days", "365",
            "-subj", f"/CN=localhost@{int(time.time())}",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
    )  # fmt: skip
    if proc.returncode != 0:
        raise Fatal(f"error creating self-signed certificates: {proc.stderr.strip()}")
    return cert, key


class Checker:
    """Checks the files flags point at, like the real component does when it loads them."""

    def __init__(self, component: str, minor: int, opts: dict, tmpdir: str):
        self.component = component
        self.minor = minor
        self.opts = opts
        self.tmpdir = tmpdir

    # -- plain files ------------------------------------------------------------------------
    def read(self, flag: str, path: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except IsADirectoryError:
            raise Fatal(f'--{flag}: read {path}: is a directory (flag value "{path}")') from None
        except OSError as exc:
            raise Fatal(f"--{flag}: open {path}: {go_err(exc)}") from None

    def ca(self, flag: str, path: str) -> None:
        data = self.read(flag, path)
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise Fatal(
                f'--{flag}: unable to load CA bundle "{path}": data does not contain any '
                "valid RSA or ECDSA certificates"
            )
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        except ssl.SSLError as exc:
            raise Fatal(f'--{flag}: unable to load CA bundle "{path}": {exc}') from None

    def pair(self, cert_flag: str, cert: str, key_flag: str, key: str) -> None:
        self.read(cert_flag, cert)
        self.read(key_flag, key)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
                why = "tls: private key does not match public key"
            else:
                why = f"tls: failed to load certificate/key: {exc}"
            raise Fatal(
                f'unable to load --{cert_flag}="{cert}" and --{key_flag}="{key}": {why}'
            ) from None

    def private_key(self, flag: str, path: str) -> None:
        self.read(flag, path)
        proc = run_openssl(["pkey", "-in", path, "-noout", "-passin", "pass:"])
        if proc.returncode != 0:
            raise Fatal(
                f'--{flag}: error reading private key file "{path}": '
                "data does not contain a valid RSA or ECDSA private key"
            )

    def public_keys(self, flag: str, path: str) -> None:
        self.read(flag, path)
        for args in (
            ["pkey", "-pubin", "-in", path, "-noout"],
            ["pkey", "-in", path, "-noout", "-passin", "pass:"],
            ["x509", "-in", path, "-noout"],
        ):
            if run_openssl(args).returncode == 0:
                return
        raise Fatal(
            f'--{flag}: failed to parse service account key file "{path}": '
            "data does not contain any valid RSA or ECDSA public keys"
        )

    def creatable_file(self, flag: str, path: str) -> None:
        if path == "-":
            return
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "a"):
                pass
        except OSError as exc:
            raise Fatal(f"--{flag}: open {path}: {go_err(exc)}") from None

    # -- structured files -------------------------------------------------------------------
    def load_yaml(self, flag: str, path: str):
        data = self.read(flag, path)
        try:
            return yaml.safe_load(data)
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())
            raise Fatal(f'--{flag}: error loading "{path}": yaml: {detail}') from None

    def _b64_file(self, flag: str, path: str, field: str, data, name: str) -> str:
        try:
            raw = base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError):
            raise Fatal(
                f'--{flag}: error loading config file "{path}": {field}: illegal base64 data'
            ) from None
        target = os.path.join(self.tmpdir, name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        return target

    def kubeconfig(self, flag: str, path: str, master: str | None = None) -> str:
        """Check a kubeconfig like client-go loads it; returns the server URL."""
        doc = self.load_yaml(flag, path)
        where = f'--{flag}: invalid configuration in "{path}"'
        if not isinstance(doc, dict):
            raise Fatal(f"{where}: no configuration has been provided")
        base = os.path.dirname(os.path.abspath(path))

        def named(section: str, name: str) -> dict:
            for item in doc.get(section) or []:
                if isinstance(item, dict) and item.get("name") == name:
                    return item.get(section[:-1]) or {}
            raise Fatal(f'{where}: {section[:-1]} "{name}" not found')

        current = doc.get("current-context")
        if not current:
            raise Fatal(f"{where}: no current-context is set")
        context = named("contexts", current)
        cluster = named("clusters", context.get("cluster") or "")
        user = named("users", context.get("user") or "")
        server = master or cluster.get("server")
        if not server:
            raise Fatal(f"{where}: cluster has no server defined")
        stem = re.sub(r"[^A-Za-z0-9]+", "-", flag)
        insecure = bool(cluster.get("insecure-skip-tls-verify"))
        ca_file = None
        if cluster.get("certificate-authority-data"):
            ca_file = self._b64_file(
                flag,
                path,
                "certificate-authority-data",
                cluster["certificate-authority-data"],
                f"{stem}-ca.crt",
            )
        elif cluster.get("certificate-authority"):
            ca_file = os.path.join(base, cluster["certificate-authority"])
        elif not insecure:
            raise Fatal(
                f"{where}: cluster has neither certificate-authority-data nor "
                "certificate-authority (the test double requires one)"
            )
        if ca_file:
            self.ca(flag, ca_file)
        if user.get("client-certificate-data") and user.get("client-key-data"):
            cert = self._b64_file(
                flag,
                path,
                "client-certificate-data",
                user["client-certificate-data"],
                f"{stem}-client.crt",
            )
            key = self._b64_file(
                flag, path, "client-key-data", user["client-key-data"], f"{stem}-client.key"
            )
        elif user.get("client-certificate") and user.get("client-key"):
            cert = os.path.join(base, user["client-certificate"])
            key = os.path.join(base, user["client-key"])
        else:
            raise Fatal(
                f'{where}: user "{context.get("user")}" has no client certificate and '
                "key (the test double requires certificate authentication)"
            )
        self.pair(f"{flag} client-certificate", cert, f"{flag} client-key", key)
        return server

    def encryption_config(self, flag: str, path: str) -> None:
        doc = self.load_yaml(flag, path)
        where = f'--{flag}: error while parsing file "{path}"'
        if not isinstance(doc, dict):
            raise Fatal(f"{where}: not a YAML object")
        kind, api = doc.get("kind"), doc.get("apiVersion")
        # apiserver.config.k8s.io/v1 EncryptionConfiguration, and the legacy v1 EncryptionConfig
        # that Kubernetes registers "due to a docs bug" (the form KTHW uses).
        accepted = {
            ("EncryptionConfig", "v1"),
            ("EncryptionConfiguration", "apiserver.config.k8s.io/v1"),
        }
        if (kind, api) not in accepted:
            raise Fatal(f'{where}: no kind "{kind}" is registered for version "{api}"')
        errors = []
        resources = doc.get("resources")
        if not isinstance(resources, list) or not resources:
            errors.append(
                "resources: Required value: EncryptionConfiguration.Resources must "
                "contain at least one resource"
            )
            resources = []
        for i, entry in enumerate(resources):
            entry = entry if isinstance(entry, dict) else {}
            names = entry.get("resources") or []
            if not names:
                errors.append(
                    f"resources[{i}].resources: Required value: at least one resource is required"
                )
            providers = entry.get("providers") or []
            if not providers:
                errors.append(
                    f"resources[{i}].providers: Required value: at least one provider is required"
                )
            for j, provider in enumerate(providers):
                errors.extend(self._provider_errors(f"resources[{i}].providers[{j}]", provider))
        if errors:
            raise Fatal(f"{where}: {aggregate(errors)}")

    @staticmethod
    def _provider_errors(field: str, provider) -> list[str]:
        kinds = ("aescbc", "aesgcm", "secretbox", "identity", "kms")
        if not isinstance(provider, dict) or len([k for k in provider if k in kinds]) != 1:
            return [f"{field}: Invalid value: provider must contain exactly one of {kinds}"]
        kind = next(k for k in provider if k in kinds)
        if kind in ("identity", "kms"):
            return []
        sizes = (32,) if kind == "secretbox" else (16, 24, 32)
        errors = []
        keys = (provider[kind] or {}).get("keys") or []
        if not keys:
            errors.append(f"{field}.{kind}.keys: Required value: at least one key is required")
        seen = set()
        for k, key in enumerate(keys):
            key = key if isinstance(key, dict) else {}
            name, secret = key.get("name"), key.get("secret")
            where = f"{field}.{kind}.keys[{k}]"
            if not name:
                errors.append(f"{where}.name: Required value: key name is required")
            elif name in seen:
                errors.append(f'{where}.name: Duplicate value: "{name}"')
            seen.add(name)
            try:
                size = len(base64.b64decode(str(secret), validate=True)) if secret else None
            except (binascii.Error, ValueError):
                size = -1
            if size is None:
                errors.append(f"{where}.secret: Required value: secret is required")
            elif size == -1:
                errors.append(
                    f"{where}.secret: Invalid value: REDACTED: secrets must be base64 encoded"
                )
            elif size not in sizes:
                errors.append(
                    f"{where}.secret: Invalid value: REDACTED: secret is not of the "
                    f"expected length, got {size}, expected one of {list(sizes)}"
                )
        return errors

    def audit_policy(self, flag: str, path: str) -> None:
        doc = self.load_yaml(flag, path)
        if not isinstance(doc, dict) or doc.get("kind") != "Policy":
            raise Fatal(f'--{flag}: loading audit policy file "{path}": not a Policy object')
        versions = ["audit.k8s.io/v1"] + (["audit.k8s.io/v1beta1"] if self.minor < 24 else [])
        if doc.get("apiVersion") not in versions:
            raise Fatal(
                f'--{flag}: loading audit policy file "{path}": no kind "Policy" is '
                f'registered for version "{doc.get("apiVersion")}"'
            )
        if not doc.get("rules"):
            raise Fatal(
                f'--{flag}: loading audit policy file "{path}": loaded illegal policy with 0 rules'
            )

    # -- driver -----------------------------------------------------------------------------
    def check_all(self, ignored: tuple[str, ...] = ()) -> dict:
        """Check every file flag that was given (but ``ignored``); {kubeconfig flag: server}."""
        table = FLAGS[self.component]
        opts = {k: v for k, v in self.opts.items() if k not in ignored}
        results: dict = {}
        paired = set()
        for cert_flag, key_flag in PAIRS[self.component]:
            cert, key = opts.get(cert_flag), opts.get(key_flag)
            if bool(cert) != bool(key):
                given, missing = (cert_flag, key_flag) if cert else (key_flag, cert_flag)
                raise Fatal(f"--{given} was given without --{missing}: both must be specified")
            if cert:
                self.pair(cert_flag, cert, key_flag, key)
            paired.update((cert_flag, key_flag))
        for flag in sorted(opts):
            check = table.get(flag, (None, 0, None, None))[3]
            value = opts[flag]
            if not check or flag in paired or value in ("", [], None):
                continue
            for path in value if isinstance(value, list) else [value]:
                if check == "file":
                    self.read(flag, path)
                elif check == "ca":
                    self.ca(flag, path)
                elif check == "privkey":
                    self.private_key(flag, path)
                elif check == "pubkey":
                    self.public_keys(flag, path)
                elif check == "audit-log":
                    self.creatable_file(flag, path)
                elif check == "audit-policy":
                    self.audit_policy(flag, path)
                elif check == "encryption":
                    self.encryption_config(flag, path)
                elif check == "kubeconfig":
                    master = opts.get("master") if flag == "kubeconfig" else None
                    results[flag] = self.kubeconfig(flag, path, master)
                elif check in ("cert", "key"):
                    self.read(flag, path)
        return results
