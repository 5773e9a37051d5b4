#!/usr/bin/env python3
"""Test double of kube-apiserver, kube-controller-manager and kube-scheduler.

The real binaries cannot be had where the project's tests and lab run, so the lab's mirror serves
this one file under the official names (``v<version>/bin/linux/amd64/kube-apiserver`` ...). It is
a test double, not Kubernetes: it says so in ``--version``, in every log line and in ``/version``.

What it reproduces, wherever the project's Salt states can tell the difference:

* the command line: exactly the flags the pretended version has (``FLAGS`` below, a data table
  with the minor version each flag appeared in and was removed in), pflag's syntax and cobra's
  ``Error: unknown flag: --x`` with exit status 1, required flags and value errors;
* the files the flags point at: they must exist and parse, certificate/key pairs must match,
  kubeconfigs must carry a usable client certificate, the encryption config and the scheduler
  config must be valid for the version;
* serving: kube-apiserver serves HTTPS health endpoints (``/healthz``, ``/livez``, ``/readyz``
  failing while etcd is unreachable), ``/version``, discovery and an RBAC API
  (clusterroles/clusterrolebindings) stored in etcd through etcd's v3 JSON gateway, with client
  certificate authentication and RBAC authorization; kube-controller-manager and kube-scheduler
  serve ``/healthz`` on their secure ports and, for old versions, their insecure ports.

The component is chosen by the program name (``os.path.basename(sys.argv[0])``) or by the
environment variable ``KUBE_DOUBLE_COMPONENT``. The version pretended is the module-level
version line below; ``stamp()`` rewrites it (the mirror builder uses it), the environment
variable ``KUBE_DOUBLE_VERSION`` overrides it. Other environment variables, for tests:
``KUBE_DOUBLE_VALIDATE_ONLY=1`` (check flags and files, then exit 0 without serving) and
``KUBE_DOUBLE_ONLY_ADDRESS=<ip>`` (refuse to bind or connect to any other address).

Runs on Debian 12's /usr/bin/python3 (3.11) with python3-yaml and the ``openssl`` CLI.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import datetime
import http.client
import http.server
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

import yaml

DOUBLE_VERSION = "1.18.6"

SUPPORTED_MINORS = (18, 34)
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
MARK = "test double"


def stamp(source_text: str, version: str) -> str:
    """Return ``source_text`` (this file's text) pretending to be Kubernetes ``version``.

    The mirror builder calls it when it copies this file to ``v<version>/bin/linux/amd64/``.
    """
    version = version.lstrip("v")
    if not re.fullmatch(r"1\.\d+\.\d+", version):
        raise ValueError(f"invalid Kubernetes version {version!r}: expected 1.MINOR.PATCH")
    pattern = re.compile(r'^DOUBLE_VERSION = "[^"\n]*"$', re.MULTILINE)
    if len(pattern.findall(source_text)) != 1:
        raise ValueError("the text has no single DOUBLE_VERSION line to stamp")
    return pattern.sub(f'DOUBLE_VERSION = "{version}"', source_text)


# --------------------------------------------------------------------------------------------
# The flag table. Each entry: (type, first minor, minor it was removed in or None, check).
# Types follow pflag: bool, int, float, string, ip, duration, strings (comma list, repeatable),
# array (repeatable), map (k=v list), portrange, version. "check" names what a file flag must
# point at (see Checker). Removal versions are given only where the changelogs are clear.
# --------------------------------------------------------------------------------------------


def _f(type_: str, since: int = 18, removed: int | None = None, check: str | None = None):
    return (type_, since, removed, check)


GLOBAL_FLAGS = {
    "help": _f("bool"),
    "version": _f("version"),
    "v": _f("int"),
    "vmodule": _f("strings"),
    "log-flush-frequency": _f("duration"),
    "logging-format": _f("string", since=19),
    # klog's own flags, deprecated in 1.23 and removed in 1.26 (KEP-2845).
    "logtostderr": _f("bool", removed=26),
    "alsologtostderr": _f("bool", removed=26),
    "log-dir": _f("string", removed=26),
    "log-file": _f("string", removed=26),
    "log-file-max-size": _f("int", removed=26),
    "log-backtrace-at": _f("string", removed=26),
    "skip-headers": _f("bool", removed=26),
    "skip-log-headers": _f("bool", removed=26),
    "stderrthreshold": _f("string", removed=26),
    "add-dir-header": _f("bool", removed=26),
    "one-output": _f("bool", removed=26),
    "feature-gates": _f("map"),
    "profiling": _f("bool"),
    "contention-profiling": _f("bool"),
}

SECURE_SERVING_FLAGS = {
    "bind-address": _f("ip"),
    "secure-port": _f("int"),
    "cert-dir": _f("string"),
    "tls-cert-file": _f("string", check="cert"),
    "tls-private-key-file": _f("string", check="key"),
    "tls-cipher-suites": _f("strings"),
    "tls-min-version": _f("string"),
    "tls-sni-cert-key": _f("array"),
    "http2-max-streams-per-connection": _f("int"),
}

REQUESTHEADER_FLAGS = {
    "client-ca-file": _f("string", check="ca"),
    "requestheader-client-ca-file": _f("string", check="ca"),
    "requestheader-allowed-names": _f("strings"),
    "requestheader-extra-headers-prefix": _f("strings"),
    "requestheader-group-headers": _f("strings"),
    "requestheader-username-headers": _f("strings"),
}

# Flags of kube-controller-manager and kube-scheduler (delegated authn/authz, leader election,
# insecure serving that 1.22 turned off and 1.24 removed).
COMPONENT_BASE_FLAGS = {
    "address": _f("ip", removed=24),
    "port": _f("int", removed=24),
    "authentication-kubeconfig": _f("string", check="kubeconfig"),
    "authentication-skip-lookup": _f("bool"),
    "authentication-token-webhook-cache-ttl": _f("duration"),
    "authentication-tolerate-lookup-failure": _f("bool"),
    "authorization-kubeconfig": _f("string", check="kubeconfig"),
    "authorization-always-allow-paths": _f("strings"),
    "authorization-webhook-cache-authorized-ttl": _f("duration"),
    "authorization-webhook-cache-unauthorized-ttl": _f("duration"),
    "kubeconfig": _f("string", check="kubeconfig"),
    "master": _f("string"),
    "kube-api-burst": _f("int"),
    "kube-api-content-type": _f("string"),
    "kube-api-qps": _f("float"),
    "leader-elect": _f("bool"),
    "leader-elect-lease-duration": _f("duration"),
    "leader-elect-renew-deadline": _f("duration"),
    "leader-elect-retry-period": _f("duration"),
    "leader-elect-resource-lock": _f("string"),
    "leader-elect-resource-name": _f("string"),
    "leader-elect-resource-namespace": _f("string"),
    **SECURE_SERVING_FLAGS,
    **REQUESTHEADER_FLAGS,
}

APISERVER_FLAGS = {
    **SECURE_SERVING_FLAGS,
    **REQUESTHEADER_FLAGS,
    "admission-control": _f("strings"),
    "admission-control-config-file": _f("string", check="file"),
    "advertise-address": _f("ip"),
    "allow-privileged": _f("bool"),
    "anonymous-auth": _f("bool"),
    "api-audiences": _f("strings"),
    "apiserver-count": _f("int"),  # deprecated, still there
    "audit-log-compress": _f("bool", since=19),
    "audit-log-format": _f("string"),
    "audit-log-maxage": _f("int"),
    "audit-log-maxbackup": _f("int"),
    "audit-log-maxsize": _f("int"),
    "audit-log-mode": _f("string"),
    "audit-log-path": _f("string", check="audit-log"),
    "audit-policy-file": _f("string", check="audit-policy"),
    "audit-webhook-config-file": _f("string", check="file"),
    "audit-webhook-mode": _f("string"),
    "authentication-config": _f("string", since=29, check="file"),
    "authentication-token-webhook-config-file": _f("string", check="file"),
    "authorization-config": _f("string", since=29, check="file"),
    "authorization-mode": _f("strings"),
    "authorization-policy-file": _f("string", check="file"),
    "authorization-webhook-config-file": _f("string", check="file"),
    "basic-auth-file": _f("string", removed=19, check="file"),
    "cloud-config": _f("string", check="file"),
    "cloud-provider": _f("string"),
    "cors-allowed-origins": _f("strings"),
    "default-not-ready-toleration-seconds": _f("int"),
    "default-unreachable-toleration-seconds": _f("int"),
    "delete-collection-workers": _f("int"),
    "disable-admission-plugins": _f("strings"),
    "egress-selector-config-file": _f("string", check="file"),
    "enable-admission-plugins": _f("strings"),
    "enable-aggregator-routing": _f("bool"),
    "enable-bootstrap-token-auth": _f("bool"),
    "enable-garbage-collector": _f("bool"),
    "enable-priority-and-fairness": _f("bool"),
    "encryption-provider-config": _f("string", check="encryption"),
    "encryption-provider-config-automatic-reload": _f("bool", since=26),
    "endpoint-reconciler-type": _f("string"),
    "etcd-cafile": _f("string", check="ca"),
    "etcd-certfile": _f("string", check="cert"),
    "etcd-compaction-interval": _f("duration"),
    "etcd-count-metric-poll-period": _f("duration"),
    "etcd-keyfile": _f("string", check="key"),
    "etcd-prefix": _f("string"),
    "etcd-servers": _f("strings"),
    "etcd-servers-overrides": _f("strings"),
    "event-ttl": _f("duration"),
    "external-hostname": _f("string"),
    "goaway-chance": _f("float"),
    # Insecure serving: only 0 allowed from 1.20, the flags are gone in 1.24.
    "insecure-bind-address": _f("ip", removed=24),
    "insecure-port": _f("int", removed=24),
    "address": _f("ip", removed=24),
    "port": _f("int", removed=24),
    "kubelet-certificate-authority": _f("string", check="ca"),
    "kubelet-client-certificate": _f("string", check="cert"),
    "kubelet-client-key": _f("string", check="key"),
    "kubelet-https": _f("bool", removed=22),
    "kubelet-preferred-address-types": _f("strings"),
    "kubelet-timeout": _f("duration"),
    "livez-grace-period": _f("duration"),
    "max-mutating-requests-inflight": _f("int"),
    "max-requests-inflight": _f("int"),
    "min-request-timeout": _f("int"),
    "oidc-ca-file": _f("string", check="ca"),
    "oidc-client-id": _f("string"),
    "oidc-groups-claim": _f("string"),
    "oidc-issuer-url": _f("string"),
    "oidc-username-claim": _f("string"),
    "proxy-client-cert-file": _f("string", check="cert"),
    "proxy-client-key-file": _f("string", check="key"),
    "request-timeout": _f("duration"),
    "runtime-config": _f("map"),
    "service-account-extend-token-expiration": _f("bool"),
    "service-account-issuer": _f("array"),
    "service-account-jwks-uri": _f("string"),
    "service-account-key-file": _f("array", check="pubkey"),
    "service-account-lookup": _f("bool"),
    "service-account-max-token-expiration": _f("duration"),
    "service-account-signing-key-file": _f("string", check="privkey"),
    "service-cluster-ip-range": _f("string"),
    "service-node-port-range": _f("portrange"),
    "shutdown-delay-duration": _f("duration"),
    "storage-backend": _f("string"),
    "storage-media-type": _f("string"),
    "strict-transport-security-directives": _f("strings"),
    "token-auth-file": _f("string", check="file"),
    "watch-cache": _f("bool"),
    "watch-cache-sizes": _f("strings"),
}

CONTROLLER_MANAGER_FLAGS = {
    **COMPONENT_BASE_FLAGS,
    "allocate-node-cidrs": _f("bool"),
    "cloud-config": _f("string", check="file"),
    "cloud-provider": _f("string"),
    "cluster-cidr": _f("string"),
    "cluster-name": _f("string"),
    "cluster-signing-cert-file": _f("string", check="cert"),
    "cluster-signing-key-file": _f("string", check="key"),
    "cluster-signing-duration": _f("duration", since=19),
    "experimental-cluster-signing-duration": _f("duration", removed=25),
    "cluster-signing-kube-apiserver-client-cert-file": _f("string", since=19, check="cert"),
    "cluster-signing-kube-apiserver-client-key-file": _f("string", since=19, check="key"),
    "cluster-signing-kubelet-client-cert-file": _f("string", since=19, check="cert"),
    "cluster-signing-kubelet-client-key-file": _f("string", since=19, check="key"),
    "cluster-signing-kubelet-serving-cert-file": _f("string", since=19, check="cert"),
    "cluster-signing-kubelet-serving-key-file": _f("string", since=19, check="key"),
    "cluster-signing-legacy-unknown-cert-file": _f("string", since=19, check="cert"),
    "cluster-signing-legacy-unknown-key-file": _f("string", since=19, check="key"),
    "concurrent-deployment-syncs": _f("int"),
    "concurrent-endpoint-syncs": _f("int"),
    "concurrent-gc-syncs": _f("int"),
    "concurrent-namespace-syncs": _f("int"),
    "concurrent-replicaset-syncs": _f("int"),
    "concurrent-service-syncs": _f("int"),
    "concurrent-serviceaccount-token-syncs": _f("int"),
    "configure-cloud-routes": _f("bool"),
    "controllers": _f("strings"),
    "horizontal-pod-autoscaler-sync-period": _f("duration"),
    "node-cidr-mask-size": _f("int"),
    "node-cidr-mask-size-ipv4": _f("int"),
    "node-cidr-mask-size-ipv6": _f("int"),
    "node-monitor-grace-period": _f("duration"),
    "node-monitor-period": _f("duration"),
    "pod-eviction-timeout": _f("duration", removed=27),
    "root-ca-file": _f("string", check="ca"),
    "service-account-private-key-file": _f("string", check="privkey"),
    "service-cluster-ip-range": _f("string"),
    "terminated-pod-gc-threshold": _f("int"),
    "use-service-account-credentials": _f("bool"),
}

SCHEDULER_FLAGS = {
    **COMPONENT_BASE_FLAGS,
    "config": _f("string", check="scheduler-config"),
    "write-config-to": _f("string"),
    # The legacy policy API went away with KubeSchedulerConfiguration v1beta1 in 1.23.
    "algorithm-provider": _f("string", removed=23),
    "policy-config-file": _f("string", removed=23, check="file"),
    "policy-configmap": _f("string", removed=23),
    "policy-configmap-namespace": _f("string", removed=23),
    "use-legacy-policy-config": _f("bool", removed=23),
}

FLAGS = {
    "kube-apiserver": {**GLOBAL_FLAGS, **APISERVER_FLAGS},
    "kube-controller-manager": {**GLOBAL_FLAGS, **CONTROLLER_MANAGER_FLAGS},
    "kube-scheduler": {**GLOBAL_FLAGS, **SCHEDULER_FLAGS},
}

# Certificate/key flags that must be given together and must match.
PAIRS = {
    "kube-apiserver": (
        ("tls-cert-file", "tls-private-key-file"),
        ("etcd-certfile", "etcd-keyfile"),
        ("kubelet-client-certificate", "kubelet-client-key"),
        ("proxy-client-cert-file", "proxy-client-key-file"),
    ),
    "kube-controller-manager": (
        ("tls-cert-file", "tls-private-key-file"),
        ("cluster-signing-cert-file", "cluster-signing-key-file"),
        (
            "cluster-signing-kube-apiserver-client-cert-file",
            "cluster-signing-kube-apiserver-client-key-file",
        ),
        ("cluster-signing-kubelet-client-cert-file", "cluster-signing-kubelet-client-key-file"),
        ("cluster-signing-kubelet-serving-cert-file", "cluster-signing-kubelet-serving-key-file"),
        ("cluster-signing-legacy-unknown-cert-file", "cluster-signing-legacy-unknown-key-file"),
    ),
    "kube-scheduler": (("tls-cert-file", "tls-private-key-file"),),
}

# KubeSchedulerConfiguration versions: (first minor, minor it was removed in).
SCHEDULER_CONFIG_VERSIONS = {
    "kubescheduler.config.k8s.io/v1alpha1": (18, 19),
    "kubescheduler.config.k8s.io/v1alpha2": (18, 19),
    "kubescheduler.config.k8s.io/v1beta1": (19, 23),
    "kubescheduler.config.k8s.io/v1beta2": (22, 28),
    "kubescheduler.config.k8s.io/v1beta3": (23, 29),
    "kubescheduler.config.k8s.io/v1": (25, None),
}

# Admission plugins the apiserver knows: (first minor, minor it was removed in).
ADMISSION_PLUGINS = {
    "AlwaysAdmit": (18, None),
    "AlwaysDeny": (18, None),
    "AlwaysPullImages": (18, None),
    "CertificateApproval": (18, None),
    "CertificateSigning": (18, None),
    "CertificateSubjectRestriction": (18, None),
    "ClusterTrustBundleAttest": (27, None),
    "DefaultIngressClass": (18, None),
    "DefaultStorageClass": (18, None),
    "DefaultTolerationSeconds": (18, None),
    "DenyEscalatingExec": (18, None),
    "DenyExecOnPrivileged": (18, None),
    "DenyServiceExternalIPs": (21, None),
    "EventRateLimit": (18, None),
    "ExtendedResourceToleration": (18, None),
    "ImagePolicyWebhook": (18, None),
    "LimitPodHardAntiAffinityTopology": (18, None),
    "LimitRanger": (18, None),
    "MutatingAdmissionPolicy": (32, None),
    "MutatingAdmissionWebhook": (18, None),
    "NamespaceAutoProvision": (18, None),
    "NamespaceExists": (18, None),
    "NamespaceLifecycle": (18, None),
    "NodeRestriction": (18, None),
    "OwnerReferencesPermissionEnforcement": (18, None),
    "PersistentVolumeClaimResize": (18, None),
    "PersistentVolumeLabel": (18, None),
    "PodNodeSelector": (18, None),
    "PodPreset": (18, 20),
    "PodSecurity": (22, None),
    "PodSecurityPolicy": (18, 25),
    "PodTolerationRestriction": (18, None),
    "Priority": (18, None),
    "ResourceQuota": (18, None),
    "RuntimeClass": (18, None),
    "SecurityContextDeny": (18, 30),
    "ServiceAccount": (18, None),
    "StorageObjectInUseProtection": (18, None),
    "TaintNodesByCondition": (18, None),
    "ValidatingAdmissionPolicy": (26, None),
    "ValidatingAdmissionWebhook": (18, None),
}

AUTHORIZATION_MODES = ("AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node")


def exists_in(since: int, removed: int | None, minor: int) -> bool:
    return since <= minor and (removed is None or minor < removed)


def flags_for(component: str, minor: int) -> dict:
    """The flags ``component`` has at ``minor``: name -> (type, since, removed, check)."""
    return {n: s for n, s in FLAGS[component].items() if exists_in(s[1], s[2], minor)}


# --------------------------------------------------------------------------------------------
# Errors, logging
# --------------------------------------------------------------------------------------------


class FlagError(Exception):
    """A command line error: cobra prints ``Error: <msg>``, exit status 1."""


class Fatal(Exception):
    """A start-up error: the component exits with status 1."""


def go_err(exc: OSError) -> str:
    """Format an OSError the way Go prints it (lower case, no errno)."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one error alone, several in brackets."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


class Log:
    """klog-like lines on stderr, each marked as coming from the test double."""

    def __init__(self, component: str, verbosity: int = 0):
        self.component = component
        self.verbosity = verbosity
        self._lock = threading.Lock()

    def _emit(self, severity: str, msg: str) -> None:
        now = datetime.datetime.now()
        line = (
            f"{severity}{now:%m%d %H:%M:%S.%f} {os.getpid():>7} kube_double.py] "
            f"[{MARK} {self.component}] {msg}\n"
        )
        with self._lock:
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def info(self, msg: str) -> None:
        self._emit("I", msg)

    def warning(self, msg: str) -> None:
        self._emit("W", msg)

    def error(self, msg: str) -> None:
        self._emit("E", msg)

    def v(self, level: int, msg: str) -> None:
        if self.verbosity >= level:
            self._emit("I", msg)


# --------------------------------------------------------------------------------------------
# Command line parsing (pflag semantics)
# --------------------------------------------------------------------------------------------

_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+)")
_BOOLS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}  # fmt: skip


def _parse_bool(text: str) -> bool:
    if text not in _BOOLS:
        raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
    return _BOOLS[text]


def _parse_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text, 10)
        except ValueError:
            raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def convert(type_: str, text: str):
    """Convert one flag value; raises ValueError with pflag's reason."""
    if type_ == "bool":
        return _parse_bool(text)
    if type_ == "version":
        return "raw" if text == "raw" else _parse_bool(text)
    if type_ == "int":
        return _parse_int(text)
    if type_ == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None
    if type_ == "ip":
        try:
            return str(ipaddress.ip_address(text.strip()))
        except ValueError:
            raise ValueError(f'failed to parse IP: "{text}"') from None
    if type_ == "duration":
        if not _DURATION.fullmatch(text):
            raise ValueError(f'time: invalid duration "{text}"')
        return text
    if type_ == "strings":
        return [part.strip() for part in text.split(",")] if text else []
    if type_ == "map":
        result = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            key, eq, value = item.partition("=")
            result[key.strip()] = value.strip() if eq else ""
        return result
    if type_ == "portrange":
        match = re.fullmatch(r"\s*(\d+)\s*([-+])\s*(\d+)\s*", text) or re.fullmatch(
            r"\s*(\d+)\s*", text
        )
        if not match:
            raise ValueError(f'unable to parse port range: "{text}"')
        base = int(match.group(1))
        if match.lastindex == 1:
            return (base, base)
        other = int(match.group(3))
        high = base + other if match.group(2) == "+" else other
        if high < base or high > 65535:
            raise ValueError(f'"{text}" is not a valid port range')
        return (base, high)
    return text


def parse_flags(args: list[str], table: dict) -> tuple[dict, list[str]]:
    """Parse ``args`` like pflag. Returns ({name: value}, positional args)."""
    values: dict = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if arg.startswith("--"):
            body = arg[2:]
            if not body or body[0] in "-=":
                raise FlagError(f"bad flag syntax: {arg}")
            name, eq, text = body.partition("=")
            name = name.replace("_", "-")  # cliflag.WordSepNormalizeFunc
            spec = table.get(name)
            if spec is None:
                raise FlagError(f"unknown flag: --{name}")
            label = f"--{name}"
        elif arg.startswith("-") and len(arg) > 1:
            short, rest = arg[1], arg[2:]
            name = {"v": "v", "h": "help"}.get(short)
            if name is None:
                raise FlagError(f"unknown shorthand flag: '{short}' in {arg}")
            spec = table[name]
            eq, text = ("=", rest[1:]) if rest.startswith("=") else ("=" if rest else "", rest)
            label = f"-{short}, --{name}"
        else:
            positional.append(arg)
            continue
        type_ = spec[0]
        if not eq:
            if type_ in ("bool", "version"):
                text = "true"
            elif i < len(args):
                text = args[i]
                i += 1
            else:
                raise FlagError(f"flag needs an argument: {label.split(', ')[-1]}")
        try:
            value = convert(type_, text)
        except ValueError as exc:
            raise FlagError(f'invalid argument "{text}" for "{label}" flag: {exc}') from None
        if type_ == "strings":
            values.setdefault(name, []).extend(value)
        elif type_ == "array":
            values.setdefault(name, []).append(value)
        elif type_ == "map":
            values.setdefault(name, {}).update(value)
        else:
            values[name] = value
    return values, positional


def usage(component: str, version: str, table: dict) -> str:
    lines = [
        f"{component} ({MARK} of Kubernetes v{version})",
        "",
        "Usage:",
        f"  {component} [flags]",
        "",
        "Flags:",
    ]
    for name in sorted(table):
        type_ = table[name][0]
        shown = "" if type_ in ("bool", "version") else f" {type_}"
        lines.append(f"      --{name}{shown}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# File checks
# --------------------------------------------------------------------------------------------


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


class Kubeconfig:
    """The parts of a kubeconfig a client needs; certificates written to the private dir."""

    def __init__(self, server: str, ca_file: str | None, cert_file: str, key_file: str, insecure):
        self.server = server
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.insecure = insecure

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_file:
            ctx.load_verify_locations(cafile=self.ca_file)
        else:
            ctx.load_default_certs()
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


class Checker:
    """Checks the files flags point at, like the real component does when it loads them."""

    def __init__(self, component: str, minor: int, opts: dict, tmpdir: str, log: Log):
        self.component = component
        self.minor = minor
        self.opts = opts
        self.tmpdir = tmpdir
        self.log = log

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

    def kubeconfig(self, flag: str, path: str, master: str | None = None) -> Kubeconfig:
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
        return Kubeconfig(server, ca_file, cert, key, insecure)

    def encryption_config(self, flag: str, path: str) -> list:
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
        covered = []
        for i, entry in enumerate(resources):
            entry = entry if isinstance(entry, dict) else {}
            names = entry.get("resources") or []
            covered.extend(names)
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
        return covered

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
        """Check every file flag that was given (but ``ignored``); returns kubeconfigs etc."""
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
                    results["encrypted"] = self.encryption_config(flag, path)
                elif check == "kubeconfig":
                    master = opts.get("master") if flag == "kubeconfig" else None
                    results[flag] = self.kubeconfig(flag, path, master)
                elif check in ("cert", "key"):
                    self.read(flag, path)
        return results


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------


def address_allowed(host: str) -> bool:
    only = os.environ.get("KUBE_DOUBLE_ONLY_ADDRESS")
    return not only or host == only


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTP(S) server; the TLS handshake happens in the connection's thread."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, handler, app, tls: ssl.SSLContext | None):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.tls = tls
        super().__init__((host, port), handler)

    def server_bind(self) -> None:  # skip HTTPServer's getfqdn(), it may wait for DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address) -> None:
        request.settimeout(30)
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.app.log.v(4, f"TLS handshake error from {client_address[0]}: {exc}")
                return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.tls is not None:
                with contextlib.suppress(OSError):
                    request.close()


def listen(app, host: str, port: int, handler, tls: ssl.SSLContext | None) -> Server:
    if not address_allowed(host):
        raise Fatal(
            f"{MARK}: refusing to bind {host}:{port} (KUBE_DOUBLE_ONLY_ADDRESS="
            f"{os.environ.get('KUBE_DOUBLE_ONLY_ADDRESS')})"
        )
    try:
        return Server(host, port, handler, app, tls)
    except OSError as exc:
        raise Fatal(
            f"failed to listen on {host}:{port}: listen tcp {host}:{port}: bind: {go_err(exc)}"
        ) from None


class Handler(http.server.BaseHTTPRequestHandler):
    """Hands every request to ``server.app.handle(self)``."""

    protocol_version = "HTTP/1.1"
    server_version = "kube-double"
    sys_version = ""
    timeout = 60

    def log_message(self, format, *args):
        self.server.app.log.v(3, "HTTP " + (format % args))

    def _dispatch(self):
        try:
            self.server.app.handle(self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    # -- helpers used by the apps -----------------------------------------------------------
    def peer_identity(self):
        """(user, groups) from a verified client certificate, or None."""
        getpeercert = getattr(self.connection, "getpeercert", None)
        cert = getpeercert() if getpeercert else None
        if not cert:
            return None
        user, groups = None, []
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    user = value
                elif key == "organizationName":
                    groups.append(value)
        return user or "", groups

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, code: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_text(self, code: int, text: str) -> None:
        self.reply(code, text.encode(), "text/plain; charset=utf-8")

    def reply_json(self, code: int, obj, headers: dict | None = None) -> None:
        self.reply(code, (json.dumps(obj) + "\n").encode(), "application/json", headers)


def health_body(name: str, checks: list, query: dict) -> tuple[int, str]:
    """The body of /healthz, /livez, /readyz like k8s.io/apiserver/pkg/server/healthz."""
    excluded = set()
    for value in query.get("exclude", []):
        excluded.update(v.strip() for v in value.split(",") if v.strip())
    lines, failed = [], False
    for check_name, check in checks:
        if check_name in excluded:
            lines.append(f"[+]{check_name} excluded: ok")
            continue
        error = check()
        if error:
            failed = True
            lines.append(f"[-]{check_name} failed: reason withheld")
        else:
            lines.append(f"[+]{check_name} ok")
    if failed:
        return 500, "\n".join(lines) + f"\n{name} check failed\n"
    if "verbose" in query:
        return 200, "\n".join(lines) + f"\n{name} check passed\n"
    return 200, "ok"


# --------------------------------------------------------------------------------------------
# etcd v3 through its JSON gateway
# --------------------------------------------------------------------------------------------


class EtcdUnavailable(Exception):
    pass


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return _b64(bytes(raw))


class Etcd:
    def __init__(self, servers: list[str], cafile, certfile, keyfile, log: Log):
        self.servers = [urllib.parse.urlsplit(s) for s in servers]
        self.log = log
        self.preferred = 0
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cafile:
            self.ctx.load_verify_locations(cafile=cafile)
        else:
            self.ctx.load_default_certs()
        if certfile:
            self.ctx.load_cert_chain(certfile, keyfile)
        self._health = (0.0, "not checked yet")
        self._health_lock = threading.Lock()

    def _connection(self, url, timeout: float):
        host = url.hostname or "127.0.0.1"
        if not address_allowed(host):
            raise OSError(f"{MARK}: refusing to connect to {host} (KUBE_DOUBLE_ONLY_ADDRESS)")
        if url.scheme == "https":
            return http.client.HTTPSConnection(
                host, url.port or 2379, context=self.ctx, timeout=timeout
            )
        return http.client.HTTPConnection(host, url.port or 2379, timeout=timeout)

    def request(self, method: str, path: str, body=None, timeout: float = 3.0) -> tuple:
        """Try each server, the last good one first. Returns (status, parsed JSON)."""
        errors = []
        count = len(self.servers)
        for n in range(count):
            index = (self.preferred + n) % count
            url = self.servers[index]
            try:
                conn = self._connection(url, timeout)
                try:
                    payload = json.dumps(body) if body is not None else None
                    conn.request(
                        method, path, body=payload, headers={"Content-Type": "application/json"}
                    )
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                errors.append(f"{url.geturl()}: {exc}")
                continue
            self.preferred = index
            try:
                return resp.status, json.loads(data or b"{}")
            except ValueError:
                return resp.status, {"raw": data.decode(errors="replace")}
        raise EtcdUnavailable("; ".join(errors) or "no etcd servers")

    def health_error(self) -> str | None:
        """None when any server answers /health with health "true"; cached for one second."""
        with self._health_lock:
            checked, error = self._health
            if time.monotonic() - checked < 1.0:
                return error
            error = "no etcd server is healthy"
            problems = []
            for url in self.servers:
                try:
                    conn = self._connection(url, 1.0)
                    try:
                        conn.request("GET", "/health")
                        resp = conn.getresponse()
                        body = json.loads(resp.read() or b"{}")
                    finally:
                        conn.close()
                    if resp.status == 200 and str(body.get("health")) == "true":
                        error = None
                        break
                    problems.append(f"{url.geturl()}: {body}")
                except (OSError, http.client.HTTPException, ssl.SSLError, ValueError) as exc:
                    problems.append(f"{url.geturl()}: {exc}")
            if error:
                error = f"{error}: {'; '.join(problems)}"
            self._health = (time.monotonic(), error)
            return error

    def _kv(self, path: str, body: dict) -> dict:
        status, data = self.request("POST", path, body)
        if status != 200:
            raise EtcdUnavailable(f"etcd answered {status}: {data}")
        return data

    def get(self, key: str):
        """(value bytes, mod_revision) or None."""
        kvs = self._kv("/v3/kv/range", {"key": _b64(key)}).get("kvs") or []
        if not kvs:
            return None
        return base64.b64decode(kvs[0].get("value", "")), int(kvs[0]["mod_revision"])

    def list(self, prefix: str):
        """([(key, value bytes, mod_revision)], revision)."""
        data = self._kv("/v3/kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix)})
        items = [
            (
                base64.b64decode(kv["key"]).decode(),
                base64.b64decode(kv.get("value", "")),
                int(kv["mod_revision"]),
            )
            for kv in data.get("kvs") or []
        ]
        return items, int(data["header"]["revision"])

    def put_if(self, key: str, value: bytes, mod_revision: int) -> tuple[bool, object]:
        """Write when the key's mod_revision is ``mod_revision`` (0: absent).

        Returns (True, new revision) or (False, current (value, mod_revision) or None).
        """
        target = (
            {"target": "CREATE", "create_revision": "0"}
            if mod_revision == 0
            else {"target": "MOD", "mod_revision": str(mod_revision)}
        )
        data = self._kv(
            "/v3/kv/txn",
            {
                "compare": [{"key": _b64(key), "result": "EQUAL", **target}],
                "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}],
                "failure": [{"request_range": {"key": _b64(key)}}],
            },
        )
        if data.get("succeeded"):
            return True, int(data["header"]["revision"])
        kvs = ((data.get("responses") or [{}])[0].get("response_range") or {}).get("kvs") or []
        if not kvs:
            return False, None
        return False, (base64.b64decode(kvs[0].get("value", "")), int(kvs[0]["mod_revision"]))

    def delete(self, key: str) -> bool:
        return int(self._kv("/v3/kv/deleterange", {"key": _b64(key)}).get("deleted", 0)) > 0


# --------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------


def duration_seconds(text: str) -> float:
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    total = sum(
        float(num) * units[unit]
        for num, unit in re.findall(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    )
    return -total if text.startswith("-") else total


def split_host_port(text: str, default_host: str, default_port: int) -> tuple[str, int]:
    match = re.fullmatch(r"\[?([^\]]*?)\]?:(\d+)", text or "")
    if not match:
        return default_host, default_port
    return match.group(1) or default_host, int(match.group(2))


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Component:
    """What the three components share: validation, serving, SIGTERM, the private temp dir."""

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
        self.files: dict = {}

    def cleanup(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def checker(self) -> Checker:
        return Checker(self.name, self.minor, self.opts, self.tmpdir, self.log)

    def validate(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def before_shutdown(self) -> None:
        pass

    def serve(self, server: Server, what: str) -> None:
        self.servers.append(server)
        threading.Thread(target=server.serve_forever, name=what, daemon=True).start()
        host, port = server.server_address[:2]
        self.log.info(f"Serving {what} on {host}:{port}")

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
        name = signal.Signals(received[0]).name if received else "stop"
        self.log.info(f"Received {name}, shutting down")
        self.before_shutdown()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.log.info("exiting cleanly")
        return 0

    # -- shared helpers ---------------------------------------------------------------------
    def port_errors(self, secure_required: bool) -> list[str]:
        errors = []
        secure = self.opts.get("secure-port", self.secure_port_default)
        if secure_required and not 1 <= secure <= 65535:
            errors.append(
                f"--secure-port {secure} must be between 1 and 65535, inclusive. "
                "It cannot be turned off with 0"
            )
        elif not 0 <= secure <= 65535:
            errors.append(
                f"--secure-port {secure} must be between 0 and 65535, inclusive. "
                "0 for turning off secure port"
            )
        return errors

    def insecure_port_errors(self, flag: str, default_port: int, last_serving: int) -> list[str]:
        """Insecure serving: real below ``last_serving``, only 0 until the flags went away."""
        port = self.opts.get(flag, default_port if self.minor < last_serving else 0)
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


# -- RBAC data --------------------------------------------------------------------------------

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_KINDS = {"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding"}
RBAC_FIELDS = {
    "ClusterRole": ("rules", "aggregationRule"),
    "ClusterRoleBinding": ("subjects", "roleRef"),
}
META_FIELDS = (
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
)
RULE_FIELDS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")


def rbac_versions(minor: int) -> list[str]:
    return ["v1"] + (["v1beta1"] if minor < 22 else [])


def _role(name: str, rules: list) -> dict:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}


def _binding(name: str, role: str, subjects: list) -> dict:
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }


def _group(name: str) -> dict:
    return {"apiGroup": RBAC_GROUP, "kind": "Group", "name": name}


def bootstrap_policy(minor: int) -> list[dict]:
    """The part of the apiserver's bootstrap RBAC policy the double reproduces."""
    public = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    discovery = sorted([*public, "/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*"])
    node_resources = ["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"]
    if minor >= 33:  # KubeletFineGrainedAuthz
        node_resources += ["nodes/configz", "nodes/healthz", "nodes/pods"]
    objects = [
        _role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        _role("system:discovery", [{"nonResourceURLs": discovery, "verbs": ["get"]}]),
        _role("system:public-info-viewer", [{"nonResourceURLs": public, "verbs": ["get"]}]),
        _role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                }
            ],
        ),
        _role(
            "system:kubelet-api-admin",
            [
                {
                    "apiGroups": [""],
                    "resources": ["nodes"],
                    "verbs": ["get", "list", "watch", "proxy"],
                },
                {"apiGroups": [""], "resources": sorted(node_resources), "verbs": ["*"]},
            ],
        ),
        _binding("cluster-admin", "cluster-admin", [_group("system:masters")]),
        _binding("system:discovery", "system:discovery", [_group("system:authenticated")]),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            [_group("system:authenticated"), _group("system:unauthenticated")],
        ),
        _binding("system:basic-user", "system:basic-user", [_group("system:authenticated")]),
    ]
    for obj in objects:
        obj["apiVersion"] = f"{RBAC_GROUP}/v1"
        obj["metadata"]["labels"] = {"kubernetes.io/bootstrapping": "rbac-defaults"}
        obj["metadata"]["annotations"] = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    return objects


def rule_allows(rule: dict, attrs: dict) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs["verb"] not in verbs:
        return False
    if attrs["resource_request"]:
        groups = rule.get("apiGroups") or []
        resources = rule.get("resources") or []
        names = rule.get("resourceNames") or []
        return (
            ("*" in groups or attrs["group"] in groups)
            and ("*" in resources or attrs["resource"] in resources)
            and (not names or attrs["name"] in names)
        )
    path = attrs["path"]
    return any(
        url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1]))
        for url in rule.get("nonResourceURLs") or []
    )


def subject_matches(subject: dict, user: str, groups: list[str]) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace')}:{name}"
    return False


def policy_allows(objects: list[dict], user: str, groups: list[str], attrs: dict) -> bool:
    roles = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ClusterRole"}
    for binding in objects:
        if binding.get("kind") != "ClusterRoleBinding":
            continue
        if not any(subject_matches(s, user, groups) for s in binding.get("subjects") or []):
            continue
        role = roles.get((binding.get("roleRef") or {}).get("name"))
        if role and any(rule_allows(r, attrs) for r in role.get("rules") or []):
            return True
    return False


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def status_object(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        obj["details"] = details
    obj["code"] = code
    return obj


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
        self.items.append(
            (
                field,
                "FieldValueNotSupported",
                f'Unsupported value: "{value}": supported values: {valid}',
            )
        )

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


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class ApiServer(Component):
    secure_port_default = 6443
    insecure_port_default = 8080

    POST_START_HOOKS = (
        "start-kube-apiserver-admission-initializer",
        "generic-apiserver-start-informers",
        "start-apiextensions-informers",
        "start-apiextensions-controllers",
        "crd-informer-synced",
        "bootstrap-controller",
        "rbac/bootstrap-roles",
        "scheduling/bootstrap-system-priority-classes",
        "start-cluster-authentication-info-controller",
        "start-kube-aggregator-informers",
        "apiservice-registration-controller",
        "apiservice-status-available-controller",
        "kube-apiserver-autoregistration",
    )

    def __init__(self, *args):
        super().__init__(*args)
        self.bootstrapped = False
        self.shutting_down = False
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
        self.modes = opts.get("authorization-mode") or ["AlwaysAllow"]
        for mode in dict.fromkeys(self.modes):
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
            errors += self.insecure_port_errors(flag, self.insecure_port_default, 20)
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
        if "service-cluster-ip-range" not in opts:
            self.log.warning(
                "No CIDR for service cluster IPs specified. Default value which was "
                "10.0.0.0/24 is deprecated and will be removed in future releases."
            )
        self.files = self.checker().check_all()
        covered = set(self.files.get("encrypted", []))
        if covered & {"clusterroles", "clusterrolebindings", "*.*", "*.rbac.authorization.k8s.io"}:
            self.log.warning(
                f"{MARK}: RBAC objects are stored unencrypted despite --encryption-provider-config"
            )
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
            self.log,
        )
        ctx = self.serving_context(opts.get("client-ca-file"))
        bind = opts.get("bind-address", "0.0.0.0")
        port = opts.get("secure-port", self.secure_port_default)
        secure = listen(self, bind, port, Handler, ctx)
        insecure = None
        if self.minor < 20:
            iport = opts.get("insecure-port", opts.get("port", self.insecure_port_default))
            ihost = opts.get("insecure-bind-address", opts.get("address", "127.0.0.1"))
            if iport:
                insecure = listen(self, ihost, iport, Handler, None)
        self.serve(secure, "securely")
        if insecure:
            self.log.warning("Serving insecurely: --insecure-port is deprecated")
            self.serve(insecure, "insecurely")
        threading.Thread(target=self.bootstrap_loop, name="rbac-bootstrap", daemon=True).start()
        threading.Thread(target=self.etcd_monitor, name="etcd-monitor", daemon=True).start()

    def before_shutdown(self) -> None:
        self.shutting_down = True
        delay = min(duration_seconds(self.opts.get("shutdown-delay-duration", "0s")), 60.0)
        if delay > 0:
            self.log.info(f"waiting --shutdown-delay-duration={delay}s before closing listeners")
            time.sleep(delay)

    def etcd_monitor(self) -> None:
        last = "unknown"
        while not self.stop.wait(0 if last == "unknown" else 2.0):
            error = self.etcd.health_error()
            state = "ok" if error is None else "failed"
            if state != last:
                if error:
                    self.log.error(f"etcd is unreachable or unhealthy: {error}")
                else:
                    self.log.info("etcd is healthy")
                last = state

    def bootstrap_loop(self) -> None:
        while not self.stop.is_set():
            try:
                created = []
                for obj in bootstrap_policy(self.minor):
                    resource = obj["kind"].lower() + "s"
                    key = self.key(resource, obj["metadata"]["name"])
                    if self.etcd.get(key) is None:
                        obj["metadata"]["uid"] = str(uuid.uuid4())
                        obj["metadata"]["creationTimestamp"] = now_rfc3339()
                        if self.etcd.put_if(key, json.dumps(obj).encode(), 0)[0]:
                            created.append(f"{resource}/{obj['metadata']['name']}")
                for item in created:
                    self.log.info(f"created bootstrap RBAC object {item}")
                self.bootstrapped = True
                self.log.info("poststarthook/rbac/bootstrap-roles finished")
                return
            except EtcdUnavailable as exc:
                self.log.v(2, f"rbac/bootstrap-roles: waiting for etcd: {exc}")
                self.stop.wait(1.0)

    # -- health -----------------------------------------------------------------------------
    def checks(self, name: str) -> list:
        def ok():
            return None

        def etcd():
            return self.etcd.health_error()

        def bootstrap():
            return None if self.bootstrapped else "not finished"

        def shutdown():
            return "process is shutting down" if self.shutting_down else None

        checks = [("ping", ok), ("log", ok), ("etcd", etcd)]
        for hook in self.POST_START_HOOKS:
            checks.append(
                (f"poststarthook/{hook}", bootstrap if hook == "rbac/bootstrap-roles" else ok)
            )
        checks.append(("autoregister-completion", ok))
        if name == "readyz":
            checks.append(("shutdown", shutdown))
        return checks

    # -- request handling -------------------------------------------------------------------
    def key(self, resource: str, name: str) -> str:
        return f"{self.prefix}/{resource}/{name}"

    @staticmethod
    def attributes(method: str, path: str, query: dict) -> dict:
        parts = [p for p in path.split("/") if p]
        attrs = {
            "resource_request": False,
            "path": path,
            "group": "",
            "version": "",
            "resource": "",
            "name": "",
            "namespace": "",
        }
        rest = None
        if len(parts) >= 2 and parts[0] == "api":
            attrs["version"], rest = parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            attrs["group"], attrs["version"], rest = parts[1], parts[2], parts[3:]
        if rest:
            if rest[0] == "namespaces" and len(rest) >= 3:
                attrs["namespace"], rest = rest[1], rest[2:]
            attrs["resource_request"] = True
            attrs["resource"] = rest[0]
            attrs["name"] = rest[1] if len(rest) > 1 else ""
            if len(rest) > 2:
                attrs["resource"] += "/" + rest[2]
        if attrs["resource_request"]:
            named = bool(attrs["name"])
            watch = query.get("watch", [""])[0] in ("1", "true")
            attrs["verb"] = {
                "GET": "get" if named else ("watch" if watch else "list"),
                "HEAD": "get" if named else "list",
                "POST": "create",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete" if named else "deletecollection",
            }.get(method, method.lower())
        else:
            attrs["verb"] = "get" if method == "HEAD" else method.lower()
        return attrs

    def authorize(self, user: str, groups: list[str], attrs: dict) -> bool:
        if "system:masters" in groups:
            return True
        for mode in self.modes:
            if mode == "AlwaysAllow":
                return True
            if mode == "AlwaysDeny":
                return False
            if mode == "RBAC":
                if policy_allows(bootstrap_policy(self.minor), user, groups, attrs):
                    return True
                stored = []
                for resource in ("clusterroles", "clusterrolebindings"):
                    items, _ = self.etcd.list(f"{self.prefix}/{resource}/")
                    stored += [json.loads(value) for _, value, _ in items]
                if policy_allows(stored, user, groups, attrs):
                    return True
        return False

    @staticmethod
    def forbidden(user: str, attrs: dict) -> ApiError:
        verb = attrs["verb"]
        if not attrs["resource_request"]:
            return ApiError(
                403,
                "Forbidden",
                f'forbidden: User "{user}" cannot {verb} path "{attrs["path"]}"',
                {},
            )
        group, resource, name = attrs["group"], attrs["resource"], attrs["name"]
        qualified = f"{resource}.{group}" if group else resource
        subject = f'{qualified} "{name}"' if name else qualified
        in_group = f' in API group "{group}"'
        details = {"group": group, "kind": resource.split("/")[0]}
        if name:
            details = {"name": name, **details}
        return ApiError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{user}" cannot {verb} resource '
            f'"{resource}"{in_group} at the cluster scope',
            details,
        )

    def handle(self, req: Handler) -> None:
        url = urllib.parse.urlsplit(req.path)
        path = url.path or "/"
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            if req.server.tls is None:  # the insecure port of old versions: no authn, no authz
                user, groups = "system:unsecured", ["system:masters", "system:authenticated"]
            else:
                identity = req.peer_identity()
                if identity:
                    user, groups = identity[0], identity[1] + ["system:authenticated"]
                elif self.anonymous:
                    user, groups = "system:anonymous", ["system:unauthenticated"]
                else:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            attrs = self.attributes(req.command, path, query)
            self.log.v(
                4, f"{req.command} {path} user={user!r} groups={groups} verb={attrs['verb']}"
            )
            if not self.authorize(user, groups, attrs):
                raise self.forbidden(user, attrs)
            self.route(req, path, query, attrs)
        except ApiError as exc:
            req.reply_json(exc.code, status_object(exc.code, exc.reason, exc.message, exc.details))
        except EtcdUnavailable as exc:
            self.log.error(f"request {req.command} {path} failed: etcd unavailable: {exc}")
            message = f"Internal error occurred: etcd is unavailable: {exc}"
            req.reply_json(
                500,
                status_object(500, "InternalError", message, {"causes": [{"message": str(exc)}]}),
            )

    def route(self, req: Handler, path: str, query: dict, attrs: dict) -> None:
        health = re.fullmatch(r"/(healthz|livez|readyz)(?:/(.+))?/?", path)
        if health and req.command in ("GET", "HEAD"):
            name, single = health.group(1), health.group(2)
            checks = self.checks(name)
            if single:
                found = [c for c in checks if c[0] == single]
                if not found:
                    return req.reply_text(404, "404 page not found\n")
                error = found[0][1]()
                if error:
                    return req.reply_text(500, f"internal server error: {error}\n")
                return req.reply_text(200, "ok")
            code, body = health_body(name, checks, query)
            if code != 200:
                self.log.v(2, f"{name} check failed:\n{body.strip()}")
            return req.reply_text(code, body)
        if path in ("/version", "/version/") and req.command in ("GET", "HEAD"):
            return req.reply_json(200, self.version_info())
        if not (path == "/api" or path.startswith(("/api/", "/apis"))):
            return req.reply_text(404, "404 page not found\n")
        if req.command not in ("GET", "HEAD") and not attrs["resource_request"]:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                {},
            )
        parts = [p for p in path.split("/") if p]
        if parts == ["api"]:
            return req.reply_json(200, self.api_versions(req))
        if parts == ["api", "v1"]:
            return req.reply_json(
                200, self.resource_list("v1", {"componentstatuses": "ComponentStatus"})
            )
        if parts == ["apis"]:
            return req.reply_json(
                200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self.api_group()]}
            )
        if parts == ["apis", RBAC_GROUP]:
            return req.reply_json(200, {"kind": "APIGroup", "apiVersion": "v1", **self.api_group()})
        if len(parts) == 3 and parts[1] == RBAC_GROUP and parts[2] in rbac_versions(self.minor):
            return req.reply_json(200, self.resource_list(f"{RBAC_GROUP}/{parts[2]}", RBAC_KINDS))
        if (
            attrs["resource_request"]
            and attrs["group"] == RBAC_GROUP
            and attrs["version"] in rbac_versions(self.minor)
            and attrs["resource"] in RBAC_KINDS
            and not attrs["namespace"]
        ):
            return self.rbac(req, attrs, query)
        if attrs["resource_request"] and parts[:3] == ["api", "v1", "componentstatuses"]:
            if req.command not in ("GET", "HEAD"):
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                    {},
                )
            return self.component_statuses(req, attrs["name"])
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    # -- discovery, version -----------------------------------------------------------------
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

    def api_versions(self, req: Handler) -> dict:
        address = self.opts.get("advertise-address") or req.server.server_address[0]
        port = req.server.server_address[1]
        host = f"[{address}]" if ":" in address else address
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{host}:{port}"}
            ],
        }

    def api_group(self) -> dict:
        versions = [
            {"groupVersion": f"{RBAC_GROUP}/{v}", "version": v} for v in rbac_versions(self.minor)
        ]
        return {"name": RBAC_GROUP, "versions": versions, "preferredVersion": versions[0]}

    @staticmethod
    def resource_list(group_version: str, kinds: dict) -> dict:
        verbs = ["create", "delete", "get", "list", "patch", "update"]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": [
                {
                    "name": name,
                    "singularName": "",
                    "namespaced": False,
                    "kind": kind,
                    "verbs": verbs if group_version != "v1" else ["get", "list"],
                }
                for name, kind in sorted(kinds.items())
            ],
        }

    def component_statuses(self, req: Handler, name: str) -> None:
        old = self.minor < 22
        targets = {
            "scheduler": (
                "http://127.0.0.1:10251/healthz" if old else "https://127.0.0.1:10259/healthz"
            ),
            "controller-manager": (
                "http://127.0.0.1:10252/healthz" if old else "https://127.0.0.1:10257/healthz"
            ),
        }
        for i, server in enumerate(self.etcd.servers):
            targets[f"etcd-{i}"] = server.geturl().rstrip("/") + "/health"
        if name and name not in targets:
            raise ApiError(
                404,
                "NotFound",
                f'componentstatuses "{name}" not found',
                {"name": name, "kind": "componentstatuses"},
            )
        items = []
        for item_name, target in targets.items():
            if name and item_name != name:
                continue
            healthy, message = self.probe(target, item_name.startswith("etcd"))
            condition = {"type": "Healthy", "status": "True" if healthy else "False"}
            condition["message" if healthy else "error"] = message
            items.append(
                {
                    "metadata": {"name": item_name, "creationTimestamp": None},
                    "conditions": [condition],
                }
            )
        if name:
            return req.reply_json(200, {"kind": "ComponentStatus", "apiVersion": "v1", **items[0]})
        return req.reply_json(
            200, {"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": items}
        )

    def probe(self, target: str, etcd: bool) -> tuple[bool, str]:
        url = urllib.parse.urlsplit(target)
        try:
            if not address_allowed(url.hostname or ""):
                raise OSError("refused by KUBE_DOUBLE_ONLY_ADDRESS")
            if etcd:
                conn = self.etcd._connection(url, 1.0)
            elif url.scheme == "https":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=1.0)
            else:
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=1.0)
            try:
                conn.request("GET", url.path)
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
            finally:
                conn.close()
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            return False, f'Get "{target}": dial tcp {url.netloc}: connect: {exc}'
        if resp.status != 200:
            return False, f"HTTP probe failed with statuscode: {resp.status}"
        if etcd:
            try:
                healthy = str(json.loads(body).get("health")) == "true"
            except ValueError:
                healthy = False
            return healthy, body.strip()
        return body.strip() == "ok", body.strip()

    # -- the RBAC API -----------------------------------------------------------------------
    def rbac(self, req: Handler, attrs: dict, query: dict) -> None:
        version, resource, name = attrs["version"], attrs["resource"], attrs["name"]
        kind = RBAC_KINDS[resource]
        headers = {}
        if version == "v1beta1" and self.minor >= 19:
            headers["Warning"] = (
                f'299 - "{RBAC_GROUP}/v1beta1 {kind} is deprecated in v1.17+, '
                f'unavailable in v1.22+; use {RBAC_GROUP}/v1 {kind}"'
            )
        dry_run = False
        for value in query.get("dryRun", []):
            if value != "All":
                raise ApiError(
                    400,
                    "BadRequest",
                    f'dryRun: Unsupported value: "{value}": supported values: "All"',
                    {},
                )
            dry_run = True
        verb = attrs["verb"]
        ctx = {
            "req": req,
            "version": version,
            "resource": resource,
            "kind": kind,
            "query": query,
            "headers": headers,
            "dry_run": dry_run,
        }
        if verb == "list":
            return self.rbac_list(ctx)
        if verb == "get":
            current = self.load(resource, name)
            if current is None:
                raise self.not_found(resource, name)
            return req.reply_json(200, self.present(current, version), headers)
        if verb == "create":
            return self.rbac_create(ctx, self.decode(req, kind, version, query, headers))
        if verb == "update":
            return self.rbac_update(ctx, name, self.decode(req, kind, version, query, headers))
        if verb == "patch":
            return self.rbac_patch(ctx, name)
        if verb == "delete":
            return self.rbac_delete(ctx, name)
        raise ApiError(
            405, "MethodNotAllowed", f"{MARK}: {verb} is not implemented for {resource}", {}
        )

    @staticmethod
    def not_found(resource: str, name: str) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            f'{resource}.{RBAC_GROUP} "{name}" not found',
            {"name": name, "group": RBAC_GROUP, "kind": resource},
        )

    def load(self, resource: str, name: str):
        """(stored object, resourceVersion) or None."""
        found = self.etcd.get(self.key(resource, name))
        if found is None:
            return None
        return json.loads(found[0]), found[1]

    @staticmethod
    def present(stored: tuple, version: str, with_type: bool = True) -> dict:
        obj, revision = stored
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(revision)
        rest = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion", "metadata")}
        meta_order = (
            "name",
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "managedFields",
        )
        meta = {k: obj["metadata"][k] for k in meta_order if k in obj["metadata"]}
        head = {"kind": obj["kind"], "apiVersion": f"{RBAC_GROUP}/{version}"} if with_type else {}
        return {**head, "metadata": meta, **rest}

    def decode(self, req: Handler, kind: str, version: str, query: dict, headers: dict) -> dict:
        raw = req.read_body()
        ctype = (req.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype not in ("application/json", "application/yaml", "*/*", ""):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media "
                "types include: application/json, application/yaml",
                {},
            )
        try:
            body = (
                yaml.safe_load(raw) if ctype == "application/yaml" else json.loads(raw or b"null")
            )
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the body could not be decoded: {exc}", {}) from None
        return self.normalize(body, kind, version, query, headers)

    def normalize(self, body, kind: str, version: str, query: dict, headers: dict) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a JSON or YAML object", {})
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
        unknown = []
        meta_in = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        unknown += [f".metadata.{k}" for k in meta_in if k not in (*META_FIELDS, "generation")]
        unknown += [
            f".{k}" for k in body if k not in ("kind", "apiVersion", "metadata", *RBAC_FIELDS[kind])
        ]
        obj = {"kind": kind, "apiVersion": f"{RBAC_GROUP}/v1"}
        obj["metadata"] = {k: copy.deepcopy(meta_in[k]) for k in META_FIELDS if k in meta_in}
        obj["metadata"].pop("namespace", None)  # cluster-scoped: the namespace is dropped
        if kind == "ClusterRole":
            rules = []
            for i, rule in enumerate(body.get("rules") or []):
                rule = rule if isinstance(rule, dict) else {}
                unknown += [f".rules[{i}].{k}" for k in rule if k not in RULE_FIELDS]
                rules.append({k: list(rule[k]) for k in RULE_FIELDS if rule.get(k)})
            obj["rules"] = rules
            if body.get("aggregationRule") is not None:
                obj["aggregationRule"] = copy.deepcopy(body["aggregationRule"])
        else:
            ref = body.get("roleRef") if isinstance(body.get("roleRef"), dict) else {}
            ref = {k: ref.get(k, "") for k in ("apiGroup", "kind", "name")}
            ref["apiGroup"] = ref["apiGroup"] or RBAC_GROUP  # SetDefaults_ClusterRoleBinding
            obj["roleRef"] = ref
            subjects = []
            for subject in body.get("subjects") or []:
                subject = {
                    k: v
                    for k, v in dict(subject or {}).items()
                    if k in ("kind", "apiGroup", "name", "namespace") and v
                }
                if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
                    subject["apiGroup"] = RBAC_GROUP  # SetDefaults_Subject
                subjects.append(subject)
            if subjects:
                obj["subjects"] = subjects
        if unknown and self.minor >= 25:
            mode = (query.get("fieldValidation") or ["Warn"])[0]
            if mode == "Strict":
                raise ApiError(
                    400,
                    "BadRequest",
                    "strict decoding error: "
                    + ", ".join(f'unknown field "{u.lstrip(".")}"' for u in unknown),
                    {},
                )
            if mode == "Warn":
                headers["Warning"] = ", ".join(
                    f'299 - "unknown field \\"{u.lstrip(".")}\\""' for u in unknown
                )
        return obj

    @staticmethod
    def managed_fields(obj: dict, req: Handler, query: dict) -> list:
        manager = (query.get("fieldManager") or [""])[0]
        if not manager:
            manager = (req.headers.get("User-Agent") or "unknown").split("/")[0] or "unknown"
        fields = {f"f:{k}": {} for k in obj if k not in ("kind", "apiVersion", "metadata")}
        for k in ("labels", "annotations"):
            if obj["metadata"].get(k):
                fields.setdefault("f:metadata", {})[f"f:{k}"] = {}
        return [
            {
                "manager": manager,
                "operation": "Update",
                "apiVersion": f"{RBAC_GROUP}/v1",
                "time": now_rfc3339(),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            }
        ]

    def rbac_list(self, ctx: dict) -> None:
        query = ctx["query"]
        items, revision = self.etcd.list(f"{self.prefix}/{ctx['resource']}/")
        selected = []
        for _, value, mod in items:
            obj = json.loads(value)
            if self.selected(obj, query):
                selected.append(self.present((obj, mod), ctx["version"], with_type=False))
        body = {
            "kind": f"{ctx['kind']}List",
            "apiVersion": f"{RBAC_GROUP}/{ctx['version']}",
            "metadata": {"resourceVersion": str(revision)},
            "items": selected,
        }
        ctx["req"].reply_json(200, body, ctx["headers"])

    @staticmethod
    def selected(obj: dict, query: dict) -> bool:
        labels = obj["metadata"].get("labels") or {}
        for requirement in ",".join(query.get("labelSelector", [])).split(","):
            requirement = requirement.strip()
            if not requirement:
                continue
            match = re.fullmatch(r"([^!=]+?)\s*(==|!=|=)\s*(.*)", requirement)
            if match:
                key, op, value = match.group(1).strip(), match.group(2), match.group(3).strip()
                if (labels.get(key) == value) != (op != "!="):
                    return False
            elif requirement.startswith("!"):
                if requirement[1:].strip() in labels:
                    return False
            elif requirement not in labels:
                return False
        for requirement in ",".join(query.get("fieldSelector", [])).split(","):
            match = re.fullmatch(r"\s*metadata\.name\s*(==|!=|=)\s*(.*?)\s*", requirement)
            if match and (obj["metadata"]["name"] == match.group(2)) != (match.group(1) != "!="):
                return False
        return True

    def rbac_create(self, ctx: dict, obj: dict) -> None:
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            alphabet = "bcdfghjklmnpqrstvwxz2456789"
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(alphabet) for _ in range(5)
            )
        meta.pop("generateName", None)
        validate_rbac(obj, None)
        if meta.pop("resourceVersion", None):
            raise ApiError(
                500,
                "InternalError",
                "Internal error occurred: resourceVersion should "
                "not be set on objects to be created",
                {},
            )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["managedFields"] = self.managed_fields(obj, ctx["req"], ctx["query"])
        name = meta["name"]
        if ctx["dry_run"]:
            if self.load(ctx["resource"], name) is not None:
                raise self.already_exists(ctx["resource"], name)
            return ctx["req"].reply_json(
                201, self.present((obj, 0), ctx["version"]), ctx["headers"]
            )
        done, revision = self.etcd.put_if(
            self.key(ctx["resource"], name), json.dumps(obj).encode(), 0
        )
        if not done:
            raise self.already_exists(ctx["resource"], name)
        self.log.v(2, f"created {ctx['resource']}/{name} (resourceVersion {revision})")
        ctx["req"].reply_json(201, self.present((obj, revision), ctx["version"]), ctx["headers"])

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

    def rbac_update(self, ctx: dict, name: str, obj: dict) -> None:
        resource, meta = ctx["resource"], obj["metadata"]
        if meta.get("name", "") != name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name', '')}) does not "
                f"match the name on the URL ({name})",
                {},
            )
        meta["name"] = name
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
        meta["managedFields"] = old["metadata"].get("managedFields", [])

        def comparable(o):
            m = {
                k: v
                for k, v in o["metadata"].items()
                if k not in ("managedFields", "resourceVersion")
            }
            return json.dumps({**o, "metadata": m}, sort_keys=True)

        if comparable(obj) == comparable(old):  # no-op update: nothing written
            return ctx["req"].reply_json(200, self.present(current, ctx["version"]), ctx["headers"])
        meta["managedFields"] = self.managed_fields(obj, ctx["req"], ctx["query"])
        if ctx["dry_run"]:
            return ctx["req"].reply_json(
                200, self.present((obj, revision), ctx["version"]), ctx["headers"]
            )
        done, new_revision = self.etcd.put_if(
            self.key(resource, name), json.dumps(obj).encode(), revision
        )
        if not done:
            raise self.conflict(resource, name)
        self.log.v(2, f"updated {resource}/{name} (resourceVersion {new_revision})")
        ctx["req"].reply_json(
            200, self.present((obj, new_revision), ctx["version"]), ctx["headers"]
        )

    def rbac_patch(self, ctx: dict, name: str) -> None:
        req = ctx["req"]
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"{MARK}: the patch type {ctype!r} is not "
                "implemented; use application/merge-patch+json",
                {},
            )
        try:
            patch = json.loads(req.read_body() or b"{}")
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"error decoding patch: {exc}", {}) from None
        current = self.load(ctx["resource"], name)
        if current is None:
            raise self.not_found(ctx["resource"], name)
        base = self.present(current, ctx["version"])
        merged = merge_patch(base, patch)
        if not (patch.get("metadata") or {}).get("resourceVersion"):
            merged.setdefault("metadata", {})["resourceVersion"] = str(current[1])
        obj = self.normalize(merged, ctx["kind"], ctx["version"], ctx["query"], ctx["headers"])
        self.rbac_update(ctx, name, obj)

    def rbac_delete(self, ctx: dict, name: str) -> None:
        resource = ctx["resource"]
        current = self.load(resource, name)
        if current is None:
            raise self.not_found(resource, name)
        if not ctx["dry_run"]:
            if not self.etcd.delete(self.key(resource, name)):
                raise self.not_found(resource, name)
            self.log.v(2, f"deleted {resource}/{name}")
        details = {
            "name": name,
            "group": RBAC_GROUP,
            "kind": resource,
            "uid": current[0]["metadata"].get("uid"),
        }
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }
        ctx["req"].reply_json(200, body, ctx["headers"])


class ClientComponent(Component):
    """kube-controller-manager and kube-scheduler: clients of the apiserver with /healthz."""

    insecure_until = 22  # insecure serving was turned off in 1.22, its flags removed in 1.24

    def __init__(self, *args):
        super().__init__(*args)
        self.client: Kubeconfig | None = None
        self.server_url = ""
        self.leader_elect = bool(self.opts.get("leader-elect", True))
        self.insecure: tuple[str, int] | None = None

    def client_from_flags(self) -> None:
        self.client = self.files.get("kubeconfig")
        self.server_url = self.client.server if self.client else self.opts.get("master", "")
        if not self.server_url:
            raise Fatal(
                "invalid configuration: no configuration has been provided, try setting "
                "KUBERNETES_MASTER environment variable"
            )

    def start(self) -> None:
        opts = self.opts
        port = opts.get("secure-port", self.secure_port_default)
        servers = []
        if port:
            ctx = self.serving_context(opts.get("client-ca-file"))
            servers.append(
                (listen(self, opts.get("bind-address", "0.0.0.0"), port, Handler, ctx), "securely")
            )
        if self.insecure:
            host, iport = self.insecure
            servers.append((listen(self, host, iport, Handler, None), "healthz insecurely"))
        for server, what in servers:
            self.serve(server, what)
        threading.Thread(target=self.watch_apiserver, name="apiserver", daemon=True).start()

    def watch_apiserver(self) -> None:
        """Stand-in for the informers and leader election: poll the apiserver, log changes."""
        last: object = "not probed yet"
        lease = f"kube-system/{self.name}"
        if self.leader_elect:
            self.log.info(f"attempting to acquire leader lease {lease}...")
        url = urllib.parse.urlsplit(self.server_url)
        while True:
            error = None
            try:
                if not address_allowed(url.hostname or ""):
                    raise OSError("refused by KUBE_DOUBLE_ONLY_ADDRESS")
                if url.scheme == "https":
                    ctx = self.client.ssl_context() if self.client else ssl.create_default_context()
                    conn = http.client.HTTPSConnection(
                        url.hostname, url.port or 443, context=ctx, timeout=2.0
                    )
                else:
                    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=2.0)
                try:
                    conn.request("GET", (url.path.rstrip("/") or "") + "/healthz")
                    resp = conn.getresponse()
                    body = resp.read().decode(errors="replace").strip()
                finally:
                    conn.close()
                if resp.status != 200:
                    error = f"the apiserver answered /healthz with {resp.status}: {body[:200]}"
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                error = f"Get {self.server_url}/healthz: {exc}"
            if error != last:
                if error:
                    self.log.error(f"error reaching the apiserver: {error}")
                else:
                    self.log.info(f"the apiserver at {self.server_url} is healthy")
                    if self.leader_elect:
                        self.log.info(f"successfully acquired lease {lease} ({MARK}: pretended)")
                last = error
            if self.stop.wait(2.0):
                return

    def handle(self, req: Handler) -> None:
        url = urllib.parse.urlsplit(req.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        path = url.path.rstrip("/") or "/"
        allowed = self.opts.get("authorization-always-allow-paths") or (
            ["/healthz", "/readyz", "/livez"] if self.minor >= 22 else ["/healthz"]
        )
        if req.server.tls is not None and path not in allowed and not req.peer_identity():
            return req.reply_json(
                403,
                status_object(
                    403,
                    "Forbidden",
                    f'forbidden: User "system:anonymous" cannot get path "{path}"',
                    {},
                ),
            )
        if path in ("/healthz", "/livez", "/readyz"):
            checks = [("ping", lambda: None)]
            if self.leader_elect:
                checks.append(("leaderElection", lambda: None))
            code, body = health_body(path.strip("/"), checks, query)
            return req.reply_text(code, body)
        req.reply_text(404, "404 page not found\n")


class ControllerManager(ClientComponent):
    secure_port_default = 10257
    insecure_port_default = 10252

    def validate(self) -> None:
        opts, errors = self.opts, self.port_errors(secure_required=False)
        if self.minor < 24:
            errors += self.insecure_port_errors("port", self.insecure_port_default, 22)
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
        checker = self.checker()
        self.files = checker.check_all()
        self.client_from_flags()
        if "cluster-signing-cert-file" not in opts and self.minor < 19:
            defaults = ("/etc/kubernetes/ca/ca.pem", "/etc/kubernetes/ca/ca.key")
            if all(os.path.exists(p) for p in defaults):
                checker.pair(
                    "cluster-signing-cert-file",
                    defaults[0],
                    "cluster-signing-key-file",
                    defaults[1],
                )
            else:
                self.log.info(
                    "Skipping CSR signer controller because no csr cert/key was specified"
                )
        if opts.get("use-service-account-credentials") and not opts.get(
            "service-account-private-key-file"
        ):
            self.log.warning(
                "--use-service-account-credentials was specified without providing a "
                "--service-account-private-key-file"
            )
        if not opts.get("service-account-private-key-file"):
            self.log.warning('"serviceaccount-token" is disabled because there is no private key')
        if self.minor < self.insecure_until:
            port = opts.get("port", self.insecure_port_default)
            if port:
                self.insecure = (opts.get("address", "0.0.0.0"), port)


class Scheduler(ClientComponent):
    secure_port_default = 10259
    insecure_port_default = 10251
    SCHEME = "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme/scheme.go:30"

    def validate(self) -> None:
        opts, errors = self.opts, self.port_errors(secure_required=False)
        if self.minor < 24:
            errors += self.insecure_port_errors("port", self.insecure_port_default, 22)
        if errors:
            raise Fatal(aggregate(errors))
        checker = self.checker()
        healthz = "0.0.0.0:10251"
        path = opts.get("config")
        if path:
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
            connection = doc.get("clientConnection") or {}
            election = doc.get("leaderElection") or {}
            self.leader_elect = bool(election.get("leaderElect", True))
            healthz = doc.get("healthzBindAddress") or healthz
            self.files = checker.check_all(ignored=("kubeconfig",))  # deprecated, ignored
            kubeconfig = connection.get("kubeconfig")
            if not kubeconfig and not opts.get("master"):
                raise Fatal(
                    "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                    "KUBERNETES_SERVICE_PORT must be defined"
                )
            if kubeconfig:
                self.client = checker.kubeconfig(
                    "config (clientConnection.kubeconfig)", kubeconfig, opts.get("master")
                )
            self.server_url = self.client.server if self.client else opts["master"]
            ignored = [f for f in ("kubeconfig", "leader-elect", "kube-api-qps") if f in opts]
            if ignored:
                self.log.warning(f"--config is set: ignoring the deprecated flags {ignored}")
        else:
            self.files = checker.check_all()
            self.client_from_flags()
        if self.minor < self.insecure_until:
            host, port = split_host_port(healthz, "0.0.0.0", self.insecure_port_default)
            host, port = opts.get("address", host), opts.get("port", port)
            if port:
                self.insecure = (host, port)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

CLASSES = {
    "kube-apiserver": ApiServer,
    "kube-controller-manager": ControllerManager,
    "kube-scheduler": Scheduler,
}


def command_failed(minor: int, message: str) -> str:
    """How the component reports a start-up error: cobra's line, or component-base's klog."""
    if minor < 23:
        return f"Error: {message}"
    now = datetime.datetime.now()
    quoted = json.dumps(message, ensure_ascii=False)
    return (
        f'E{now:%m%d %H:%M:%S.%f} {os.getpid():>7} run.go:74] "command failed" '
        f"err={quoted} testDouble=true"
    )


def show_flag(value) -> str:
    """A flag value printed the way pflag's String() does."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, tuple):
        return f"{value[0]}-{value[1]}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    component = os.environ.get("KUBE_DOUBLE_COMPONENT") or os.path.basename(argv[0])
    if component not in COMPONENTS:
        print(
            f"{MARK}: cannot tell which component to be from the name {component!r}; "
            f"expected one of {', '.join(COMPONENTS)} (or set KUBE_DOUBLE_COMPONENT)",
            file=sys.stderr,
        )
        return 1
    version = (os.environ.get("KUBE_DOUBLE_VERSION") or DOUBLE_VERSION).lstrip("v")
    match = re.fullmatch(r"1\.(\d+)\.(\d+)", version)
    low, high = SUPPORTED_MINORS
    if not match or not low <= int(match.group(1)) <= high:
        print(
            f"Error: {MARK}: Kubernetes version {version!r} is not supported by this double "
            f"(supported: 1.{low} - 1.{high})",
            file=sys.stderr,
        )
        return 1
    minor = int(match.group(1))
    table = flags_for(component, minor)
    try:
        opts, positional = parse_flags(argv[1:], table)
    except FlagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        unknown = re.fullmatch(r"unknown flag: --(.+)", str(exc))
        spec = FLAGS[component].get(unknown.group(1)) if unknown else None
        if spec:
            until = f"removed in 1.{spec[2]}" if spec[2] else "still there"
            print(
                f"{MARK}: --{unknown.group(1)} exists from 1.{spec[1]} ({until}); this is "
                f"{component} v{version}",
                file=sys.stderr,
            )
        return 1
    if opts.get("help"):
        sys.stdout.write(usage(component, version, table))
        return 0
    if opts.get("version"):
        if opts["version"] == "raw":
            print(json.dumps({"gitVersion": f"v{version}", "testDouble": True}))
        else:
            print(f"Kubernetes v{version} ({MARK})")
        return 0
    if positional:
        quoted = " ".join(json.dumps(a) for a in positional)
        print(
            command_failed(minor, f'"{component}" does not take any arguments, got [{quoted}]'),
            file=sys.stderr,
        )
        return 1
    log = Log(component, opts.get("v", 0))
    log.info(f"Version: v{version} ({MARK} of {component}, not a Kubernetes build)")
    for name in sorted(opts):
        log.v(1, f'FLAG: --{name}="{show_flag(opts[name])}"')
    app = CLASSES[component](component, version, minor, opts, log)
    try:
        return app.run()
    except Fatal as exc:
        print(command_failed(minor, str(exc)), file=sys.stderr)
        return 1
    finally:
        app.cleanup()


if __name__ == "__main__":
    sys.exit(main())
