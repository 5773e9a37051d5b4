"""Tests of the Kubernetes control plane test doubles (tests/doubles/kube_double/, built by
tests/doubles/build.py).

Real subprocesses on 127.0.0.1 only: the doubles run with KUBE_DOUBLE_ONLY_ADDRESS=127.0.0.1,
so a forgotten bind or connect address fails the test instead of leaving the machine. They run as
``python -m tests.doubles.kube_double COMPONENT --version-stamp VERSION``, and the built zipapp
under the three official names. Certificates come from the openssl CLI; the etcd tests start
Debian's /usr/bin/etcd (the Makefile installs etcd-server) with client TLS.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.doubles import build
from tests.doubles.kube_double import COMPONENTS, REAL_MINORS, SUPPORTED_MINORS
from tests.doubles.kube_double.__main__ import main as kube_double_main
from tests.doubles.kube_double.cli import parse_flags
from tests.doubles.kube_double.flags import (
    ADMISSION_PLUGINS,
    DEPRECATED,
    deprecation,
    exists_in,
    flags_for,
)
from tools import upstream_build

REPO = Path(__file__).resolve().parents[2]
ETCD = "/usr/bin/etcd"
HOST = "127.0.0.1"
RBAC = "/apis/rbac.authorization.k8s.io"

needs_etcd = pytest.mark.skipif(
    not os.access(ETCD, os.X_OK), reason=f"{ETCD} is missing (apt-get install etcd-server)"
)

_used_ports: set[int] = set()


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if port not in _used_ports:
            _used_ports.add(port)
            return port


def wait_for(predicate, what: str, timeout: float = 15.0, proc=None):
    """Poll ``predicate`` every 50 ms until it returns a truthy value (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited early:\n{proc.output()}")
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            extra = f"\n{proc.output()}" if proc is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{extra}")
        time.sleep(0.05)


# -- processes --------------------------------------------------------------------------------


def double_env(validate_only: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_DOUBLE_")}
    env["KUBE_DOUBLE_ONLY_ADDRESS"] = HOST
    if validate_only:
        env["KUBE_DOUBLE_VALIDATE_ONLY"] = "1"
    return env


def double_args(component: str, version: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.doubles.kube_double",
        component,
        "--version-stamp",
        version,
    ]


def flag_args(flags: dict) -> list[str]:
    return [f"--{k}={v}" for k, v in flags.items() if v is not None]


def check(component: str, version: str, flags: dict | list) -> subprocess.CompletedProcess:
    """Run the double in validate-only mode (flags and files, no serving)."""
    args = flags if isinstance(flags, list) else flag_args(flags)
    return subprocess.run(
        [*double_args(component, version), *args],
        env=double_env(validate_only=True),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class Proc:
    """A background process with its output in a file; stopped by the owning fixture/test."""

    def __init__(self, args: list[str], env: dict | None, log: Path):
        self.log = log
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(
                args,
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def poll(self):
        return self.popen.poll()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


@pytest.fixture
def procs():
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def start_double(
    procs: list, tmp: Path, component: str, version: str, flags: dict, name: str = ""
) -> Proc:
    log = tmp / f"{name or component}-{version}-{len(procs)}.log"
    proc = Proc(
        [*double_args(component, version), *flag_args(flags)], double_env(validate_only=False), log
    )
    procs.append(proc)
    return proc


# -- PKI --------------------------------------------------------------------------------------

OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""


def openssl(*args: str, cwd: Path) -> None:
    """Run the openssl CLI; ``args`` are split on spaces (no argument here contains one)."""
    argv = ["openssl", *" ".join(args).split()]
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> SimpleNamespace:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is missing")
    d = tmp_path_factory.mktemp("pki")
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    cnf = "-config openssl.cnf"
    openssl(f"req -x509 -new {ec} -keyout ca-key.pem -out ca.pem -days 2", cnf, "-extensions ca",
            "-subj /CN=kube-double-test-ca", cwd=d)  # fmt: skip
    leaves = {
        "kubernetes": ("/CN=kubernetes", "server"),
        "admin": ("/O=system:masters/CN=admin", "client"),
        "jane": ("/O=developers/CN=jane", "client"),
    }
    for serial, (name, (subject, ext)) in enumerate(leaves.items(), start=2):
        openssl(f"req -new {ec} -keyout {name}-key.pem -out {name}.csr -subj {subject}", cnf, cwd=d)
        sign = f"-CA ca.pem -CAkey ca-key.pem -set_serial {serial} -days 2"
        openssl(f"x509 -req -in {name}.csr {sign} -out {name}.pem -extfile openssl.cnf",
                f"-extensions {ext}", cwd=d)  # fmt: skip
    for name in ("other-key.pem", "service-account-key.pem"):
        openssl(f"genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {name}", cwd=d)
    openssl("pkey -in service-account-key.pem -pubout -out service-account.pem", cwd=d)
    secret = base64.b64encode(os.urandom(32)).decode()
    encryption = {
        "kind": "EncryptionConfig",
        "apiVersion": "v1",
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [
                    {"aescbc": {"keys": [{"name": "key1", "secret": secret}]}},
                    {"identity": {}},
                ],
            }
        ],
    }
    (d / "encryption-config.yaml").write_text(yaml.safe_dump(encryption))
    return SimpleNamespace(
        dir=d,
        ca=str(d / "ca.pem"),
        ca_key=str(d / "ca-key.pem"),
        server=str(d / "kubernetes.pem"),
        server_key=str(d / "kubernetes-key.pem"),
        admin=(str(d / "admin.pem"), str(d / "admin-key.pem")),
        jane=(str(d / "jane.pem"), str(d / "jane-key.pem")),
        other_key=str(d / "other-key.pem"),
        sa=str(d / "service-account.pem"),
        sa_key=str(d / "service-account-key.pem"),
        encryption=str(d / "encryption-config.yaml"),
    )


def write_kubeconfig(path: Path, pki, server: str, cert: str, key: str, **user_extra) -> str:
    def b64(file: str) -> str:
        return base64.b64encode(Path(file).read_bytes()).decode()

    user = {"client-certificate-data": b64(cert), "client-key-data": b64(key), **user_extra}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubernetes-the-hard-way",
                "cluster": {"certificate-authority-data": b64(pki.ca), "server": server},
            }
        ],
        "users": [{"name": "system:kube-controller-manager", "user": user}],
        "contexts": [
            {
                "name": "default",
                "context": {
                    "cluster": "kubernetes-the-hard-way",
                    "user": "system:kube-controller-manager",
                },
            }
        ],
        "current-context": "default",
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


# -- the seed's flags (chapter 08), adapted per version ---------------------------------------


def apiserver_flags(pki, tmp: Path, version: str, etcd_urls: str, port: int | None = None) -> dict:
    minor = int(version.split(".")[1])
    flags = {
        "advertise-address": HOST,
        "allow-privileged": "true",
        "apiserver-count": "3",
        "audit-log-maxage": "30",
        "audit-log-maxbackup": "3",
        "audit-log-maxsize": "100",
        "audit-log-path": str(tmp / "log" / "audit.log"),
        "authorization-mode": "Node,RBAC",
        "bind-address": HOST,
        "client-ca-file": pki.ca,
        "enable-admission-plugins": "NamespaceLifecycle,NodeRestriction,LimitRanger,"
        "ServiceAccount,DefaultStorageClass,ResourceQuota",
        "etcd-cafile": pki.ca,
        "etcd-certfile": pki.server,
        "etcd-keyfile": pki.server_key,
        "etcd-servers": etcd_urls,
        "event-ttl": "1h",
        "encryption-provider-config": pki.encryption,
        "kubelet-certificate-authority": pki.ca,
        "kubelet-client-certificate": pki.server,
        "kubelet-client-key": pki.server_key,
        "kubelet-https": "true" if minor < 22 else None,
        "runtime-config": "api/all=true",
        "service-account-key-file": pki.sa,
        "service-cluster-ip-range": "10.32.0.0/24",
        "service-node-port-range": "30000-32767",
        "tls-cert-file": pki.server,
        "tls-private-key-file": pki.server_key,
        "v": "2",
        "secure-port": str(port or free_port()),
        "insecure-port": "0" if minor < 24 else None,
    }
    if minor >= 20:
        flags["service-account-issuer"] = "https://127.0.0.1:6443"
        flags["service-account-signing-key-file"] = pki.sa_key
    return flags


def controller_manager_flags(pki, kubeconfig: str) -> dict:
    return {
        "address": HOST,
        "port": "0",
        "bind-address": HOST,
        "secure-port": "0",
        "cluster-cidr": "10.200.0.0/16",
        "cluster-name": "kubernetes",
        "cluster-signing-cert-file": pki.ca,
        "cluster-signing-key-file": pki.ca_key,
        "kubeconfig": kubeconfig,
        "leader-elect": "true",
        "root-ca-file": pki.ca,
        "service-account-private-key-file": pki.sa_key,
        "service-cluster-ip-range": "10.32.0.0/24",
        "use-service-account-credentials": "true",
        "v": "2",
    }


def scheduler_config(tmp: Path, api_version: str, kubeconfig: str, **extra) -> str:
    path = tmp / f"kube-scheduler-{api_version.rsplit('/', 1)[-1]}.yaml"
    doc = {
        "apiVersion": api_version,
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": kubeconfig},
        "leaderElection": {"leaderElect": True},
        **extra,
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


# -- HTTPS client -----------------------------------------------------------------------------


def call(
    port: int,
    method: str,
    path: str,
    pki=None,
    cert=None,
    body=None,
    scheme="https",
    ctype="application/json",
):
    """One request; returns (status, body text, headers). No ``pki``: certificate not verified."""
    if scheme == "http":
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if pki is None:
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        else:
            ctx.load_verify_locations(cafile=pki.ca)
        if cert:
            ctx.load_cert_chain(*cert)
        conn = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": ctype}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), dict(resp.getheaders())
    finally:
        conn.close()


def answers(port: int, path: str = "/version", scheme: str = "https"):
    def probe():
        try:
            return call(port, "GET", path, scheme=scheme)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return None

    return probe


# -- etcd -------------------------------------------------------------------------------------


class Etcd:
    """Debian's etcd 3.4 on 127.0.0.1 with client TLS from the test CA."""

    def __init__(self, pki, workdir: Path):
        self.pki = pki
        self.workdir = workdir
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = f"https://{HOST}:{self.client_port}"
        self.proc: Proc | None = None

    def start(self) -> None:
        if self.proc is not None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        peer = f"http://{HOST}:{self.peer_port}"
        tls = f"--cert-file {self.pki.server} --key-file {self.pki.server_key}"
        args = [ETCD, *f"""--name kd --data-dir {self.workdir / "data"} --logger zap
            --listen-client-urls {self.url} --advertise-client-urls {self.url}
            --listen-peer-urls {peer} --initial-advertise-peer-urls {peer}
            --initial-cluster kd={peer} {tls} --trusted-ca-file {self.pki.ca}
            --client-cert-auth""".split()]  # fmt: skip
        self.proc = Proc(args, None, self.workdir / "etcd.log")

        def healthy():
            try:
                status, body, _ = call(
                    self.client_port,
                    "GET",
                    "/health",
                    self.pki,
                    cert=(self.pki.server, self.pki.server_key),
                )
            except (OSError, ssl.SSLError, http.client.HTTPException):
                return False
            return status == 200 and '"true"' in body

        wait_for(healthy, "etcd to be healthy", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture(scope="module")
def etcd(pki, tmp_path_factory):
    if not os.access(ETCD, os.X_OK):
        pytest.skip(f"{ETCD} is missing (apt-get install etcd-server)")
    server = Etcd(pki, tmp_path_factory.mktemp("etcd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def apiserver(pki, etcd, tmp_path_factory):
    """A v1.18.6 apiserver double with the seed's flags, ready, for the RBAC tests."""
    tmp = tmp_path_factory.mktemp("apiserver")
    flags = apiserver_flags(pki, tmp, "1.18.6", etcd.url)
    port = int(flags["secure-port"])
    started: list[Proc] = []
    proc = start_double(started, tmp, "kube-apiserver", "1.18.6", flags)
    wait_for(lambda: (answers(port, "/readyz")() or (0,))[0] == 200, "/readyz 200", proc=proc)
    yield SimpleNamespace(port=port, proc=proc, url=f"https://{HOST}:{port}")
    proc.stop()


# =============================================================================================
# The built executable (what the lab's mirror publishes)
# =============================================================================================


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> SimpleNamespace:
    """The 1.22.3 zipapp, published like the mirror does: one file, three names (symlinks)."""
    d = tmp_path_factory.mktemp("built")
    data = build.executable("1.22.3")
    (d / "kube-double").write_bytes(data)
    (d / "kube-double").chmod(0o755)
    for name in COMPONENTS:
        (d / name).symlink_to("kube-double")
    return SimpleNamespace(dir=d, data=data)


def run_built(path: Path, *args: str, python: str | None = None) -> subprocess.CompletedProcess:
    """Run the zipapp by its path (its shebang), or with ``python``, from outside the repo."""
    return subprocess.run(
        [python, str(path), *args] if python else [str(path), *args],
        env=double_env(validate_only=True),
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("component", COMPONENTS)
def test_built_executable_runs_under_each_name(built, component):
    assert built.data.startswith(b"#!/usr/bin/env python3\n")
    out = run_built(built.dir / component, "--version")
    assert (out.returncode, out.stdout) == (0, "Kubernetes v1.22.3 (test double)\n"), out.stderr
    out = run_built(built.dir / component, "--no-such-flag")
    assert (out.returncode, out.stderr.splitlines()[0]) == (
        1,
        "Error: unknown flag: --no-such-flag",
    )


def test_built_executable_knows_its_component(built):
    out = run_built(built.dir / "kube-apiserver", "--kubelet-https=true")  # removed in 1.22
    assert out.stderr.splitlines()[0] == "Error: unknown flag: --kubelet-https"
    out = run_built(built.dir / "kube-scheduler", "--config=/nonexistent/k.yaml")
    assert "--config: open /nonexistent/k.yaml: no such file or directory" in out.stderr
    out = run_built(built.dir / "kube-double", "--version")  # the name says no component
    assert out.returncode == 1
    assert "cannot tell which component to be from the name 'kube-double'" in out.stderr


def test_a_double_built_for_a_real_minor_refuses_naming_the_real_build(tmp_path):
    """The zipapp carries the range as constants (it cannot import tools/): a double stamped with a
    minor that has a real build refuses to be it, whatever it is asked."""
    version = upstream_build.TESTED_RELEASES[-1]
    path = tmp_path / "kube-apiserver"
    path.write_bytes(build.executable(version))
    path.chmod(0o755)
    for args in (["--version"], ["--help"], ["--etcd-servers=https://127.0.0.1:1"]):
        out = run_built(path, *args)
        assert (out.returncode, out.stdout) == (1, ""), out
        assert "has a real build" in out.stderr, out.stderr


def test_builds_are_byte_identical_per_version():
    first = build.executable("1.18.6")
    assert build.executable("v1.18.6") == first
    assert hashlib.sha256(build.executable("1.18.6")).digest() == hashlib.sha256(first).digest()
    assert build.executable("1.18.7") != first
    with pytest.raises(ValueError, match="invalid Kubernetes version"):
        build.executable("1.x")


def test_debian_python3_runs_the_built_executable(built):
    python = "/usr/bin/python3"
    probe = subprocess.run([python, "-c", "import yaml"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("/usr/bin/python3 with python3-yaml is not installed")
    out = run_built(built.dir / "kube-scheduler", "--version", python=python)
    assert out.stdout == "Kubernetes v1.22.3 (test double)\n", out.stderr


def test_module_run_needs_a_component_and_a_version():
    out = subprocess.run(
        [sys.executable, "-m", "tests.doubles.kube_double", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 1
    assert "cannot tell which component" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "tests.doubles.kube_double", "kube-apiserver", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (out.returncode, out.stderr.strip()) == (
        1,
        "test double: no version stamped; pass --version-stamp 1.MINOR.PATCH",
    )


# =============================================================================================
# The flag table
# =============================================================================================


SEED_FLAGS = {
    "kube-apiserver": "advertise-address allow-privileged apiserver-count audit-log-maxage "
    "audit-log-maxbackup audit-log-maxsize audit-log-path authorization-mode bind-address "
    "client-ca-file enable-admission-plugins etcd-cafile etcd-certfile etcd-keyfile etcd-servers "
    "event-ttl encryption-provider-config kubelet-certificate-authority "
    "kubelet-client-certificate kubelet-client-key kubelet-https runtime-config "
    "service-account-key-file service-cluster-ip-range service-node-port-range tls-cert-file "
    "tls-private-key-file v",
    "kube-controller-manager": "address cluster-cidr cluster-name cluster-signing-cert-file "
    "cluster-signing-key-file kubeconfig leader-elect root-ca-file "
    "service-account-private-key-file service-cluster-ip-range use-service-account-credentials v",
    "kube-scheduler": "config v",
}


@pytest.mark.parametrize("component", sorted(SEED_FLAGS))
def test_flag_table_has_every_seed_flag_in_1_18(component):
    missing = set(SEED_FLAGS[component].split()) - set(flags_for(component, 18))
    assert not missing


@pytest.mark.parametrize(
    ("component", "flag", "last_minor"),
    [
        ("kube-apiserver", "kubelet-https", 21),
        ("kube-apiserver", "insecure-port", 23),
        ("kube-apiserver", "insecure-bind-address", 23),
        ("kube-apiserver", "basic-auth-file", 18),
        ("kube-controller-manager", "address", 23),
        ("kube-controller-manager", "port", 23),
        ("kube-scheduler", "port", 23),
        ("kube-scheduler", "policy-config-file", 22),
        ("kube-apiserver", "logtostderr", 25),
        ("kube-apiserver", "cloud-provider", 32),
        ("kube-apiserver", "cloud-config", 32),
        ("kube-controller-manager", "experimental-cluster-signing-duration", 24),
        ("kube-controller-manager", "pod-eviction-timeout", 26),
    ],
)
def test_flag_table_removals(component, flag, last_minor):
    assert flag in flags_for(component, last_minor)
    assert flag not in flags_for(component, last_minor + 1)


def test_flag_table_keeps_current_flags():
    for minor in (18, 24, 29, SUPPORTED_MINORS[1]):
        api = flags_for("kube-apiserver", minor)
        assert {
            "service-account-issuer",
            "api-audiences",
            "apiserver-count",
            "etcd-servers",
            "secure-port",
            "profiling",
            "enable-bootstrap-token-auth",
            "requestheader-client-ca-file",
        } <= set(api)
        kcm = flags_for("kube-controller-manager", minor)
        assert {
            "bind-address",
            "secure-port",
            "authentication-kubeconfig",
            "authorization-kubeconfig",
            "cluster-signing-cert-file",
        } <= set(kcm)
        sched = flags_for("kube-scheduler", minor)
        assert {"config", "bind-address", "secure-port", "v", "leader-elect", "kubeconfig"} <= set(
            sched
        )


# =============================================================================================
# Command line
# =============================================================================================


@pytest.mark.parametrize("component", COMPONENTS)
def test_version_flag_names_the_double(component):
    out = check(component, "1.18.6", ["--version"])
    assert (out.returncode, out.stdout) == (0, "Kubernetes v1.18.6 (test double)\n")


def test_parse_flags_like_pflag():
    table = flags_for("kube-apiserver", 18)
    opts, positional = parse_flags(
        ["--enable-admission-plugins=A,B", "--enable-admission-plugins", "C", "-v3",
         "--runtime-config=api/all=true,x", "--service-node-port-range=30000+100",
         "--allow_privileged", "--secure-port=0x10", "--", "extra"],
        table,
    )  # fmt: skip
    assert opts == {
        "enable-admission-plugins": ["A", "B", "C"],
        "v": 3,
        "runtime-config": {"api/all": "true", "x": ""},
        "service-node-port-range": (30000, 30100),
        "allow-privileged": True,
        "secure-port": 16,
    }
    assert positional == ["extra"]


def test_main_takes_the_version_stamp_in_either_form(capsys):
    args = ["__main__.py", "kube-scheduler", "--version-stamp=v1.25.2", "--version=raw"]
    assert kube_double_main(args) == 0
    assert json.loads(capsys.readouterr().out) == {"gitVersion": "v1.25.2", "testDouble": True}
    assert kube_double_main(["x", "kube-scheduler", "--version-stamp", "1.25.2", "-h"]) == 0
    assert "kube-scheduler (test double of Kubernetes v1.25.2)" in capsys.readouterr().out


@pytest.mark.parametrize("version", ["1.17.9", "1.38.0", "2.0.0"])
def test_unsupported_versions_exit_1(version):
    out = check("kube-apiserver", version, ["--version"])
    assert out.returncode == 1
    assert "not supported" in out.stderr
    assert "real build" not in out.stderr


def test_the_doubles_range_ends_where_the_real_builds_begin():
    """The double's constants (the zipapp cannot import tools/) are tools/upstream_build.py's."""
    real = upstream_build.REAL_MINORS
    (low, high), (first, last) = SUPPORTED_MINORS, REAL_MINORS
    assert (low, high) == (18, real[0] - 1)
    assert list(range(first, last + 1)) == list(real)


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("minor", list(upstream_build.REAL_MINORS))
def test_a_minor_with_a_real_build_is_refused_naming_it(component, minor):
    """For 1.34+ the real binary is the authority: the double refuses to pretend it, the way it
    refuses an unsupported minor (cobra's "Error: ..." line, exit status 1), and says why."""
    version = f"1.{minor}.0"
    out = check(component, version, ["--version"])
    assert (out.returncode, out.stdout) == (1, "")
    low, high = SUPPORTED_MINORS
    first, last = REAL_MINORS
    assert out.stderr.strip() == (
        f"Error: test double: Kubernetes version '{version}' is not supported by this double "
        f"(supported: 1.{low} - 1.{high}); 1.{minor} has a real build (tools/upstream_build.py "
        f"builds 1.{first} - 1.{last} from upstream's Go modules): run that instead"
    )


def test_the_last_minor_without_a_real_build_is_pretended():
    version = f"1.{SUPPORTED_MINORS[1]}.0"
    out = check("kube-apiserver", version, ["--version"])
    assert (out.returncode, out.stdout) == (0, f"Kubernetes v{version} (test double)\n"), out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-such-flag=1"], "Error: unknown flag: --no-such-flag"),
        (["--secure-port", "abc"], 'invalid argument "abc" for "--secure-port" flag'),
        (["--bind-address=1.2.3"], 'failed to parse IP: "1.2.3"'),
        (["--event-ttl=1 hour"], 'time: invalid duration "1 hour"'),
        (["--allow-privileged=yes"], 'strconv.ParseBool: parsing "yes"'),
        (["--etcd-servers"], "flag needs an argument: --etcd-servers"),
        (["-x"], "unknown shorthand flag: 'x' in -x"),
    ],
)
def test_flag_syntax_errors_like_cobra(args, message):
    out = check("kube-apiserver", "1.18.6", args)
    assert out.returncode == 1
    assert message in out.stderr


@pytest.mark.parametrize(
    ("plugin", "last_minor"),
    [
        ("DenyEscalatingExec", 20),
        ("DenyExecOnPrivileged", 20),
        ("PodSecurityPolicy", 24),
        ("SecurityContextDeny", 29),
        ("PersistentVolumeLabel", 30),
    ],
)
def test_admission_plugin_removals(plugin, last_minor):
    since, removed = ADMISSION_PLUGINS[plugin]
    assert exists_in(since, removed, last_minor)
    assert not exists_in(since, removed, last_minor + 1)


@pytest.mark.parametrize(
    ("component", "flag", "minor", "message"),
    [
        ("kube-apiserver", "apiserver-count", 23, None),
        (
            "kube-apiserver",
            "apiserver-count",
            24,
            "apiserver-count is deprecated and will be removed in a future version.",
        ),
        ("kube-apiserver", "apiserver-count", 33, "apiserver-count is deprecated and will be "
         "removed in a future version."),
        ("kube-apiserver", "kubelet-https", 18, None),
        ("kube-apiserver", "insecure-port", 21, "This flag has no effect now and will be removed "
         "in v1.24."),
        ("kube-controller-manager", "address", 18, "see --bind-address instead."),
        ("kube-scheduler", "address", 18, None),
        ("kube-scheduler", "logtostderr", 23, DEPRECATED["kube-scheduler"]["logtostderr"][0][2]),
        ("kube-scheduler", "logtostderr", 22, None),
    ],
)  # fmt: skip
def test_deprecation_messages(component, flag, minor, message):
    assert deprecation(component, flag, minor) == message


def test_deprecated_flags_print_pflags_warning(pki, tmp_path):
    flags = apiserver_flags(pki, tmp_path, "1.24.0", "https://127.0.0.1:1")
    out = check("kube-apiserver", "1.24.0", flags)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[0] == (
        "Flag --apiserver-count has been deprecated, apiserver-count is deprecated and will be "
        "removed in a future version."
    )
    old = check("kube-apiserver", "1.23.0", apiserver_flags(pki, tmp_path, "1.23.0", "https://x:1"))
    assert "Flag --apiserver-count" not in old.stderr


def test_cloud_provider_removed_from_the_apiserver_in_1_33(pki, tmp_path):
    for version, status in (("1.32.4", 0), ("1.33.0", 1)):
        flags = apiserver_flags(pki, tmp_path, version, "https://127.0.0.1:1")
        out = check("kube-apiserver", version, {**flags, "cloud-provider": "external"})
        assert out.returncode == status, out.stderr
    assert "Error: unknown flag: --cloud-provider" in out.stderr.splitlines()


def test_authorization_config_needs_no_authorization_mode(pki, tmp_path):
    authz = tmp_path / "authz.yaml"
    authz.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\n"
        "authorizers:\n  - {type: Node, name: node}\n  - {type: RBAC, name: rbac}\n"
    )
    flags = apiserver_flags(pki, tmp_path, "1.32.0", "https://127.0.0.1:1")
    out = check("kube-apiserver", "1.32.0", {**flags, "authorization-config": str(authz)})
    assert out.returncode == 1
    assert "--authorization-config can not be specified when --authorization-mode" in out.stderr
    flags = {**flags, "authorization-config": str(authz), "authorization-mode": None}
    assert check("kube-apiserver", "1.32.0", flags).returncode == 0
    out = check("kube-apiserver", "1.29.0", {**flags, "apiserver-count": None})
    assert out.returncode == 1
    assert "StructuredAuthorizationConfiguration feature flag" in out.stderr
    gated = {**flags, "feature-gates": "StructuredAuthorizationConfiguration=true"}
    assert check("kube-apiserver", "1.29.0", gated).returncode == 0


def test_kubelet_https_accepted_in_1_18_and_rejected_in_1_22(pki, tmp_path):
    old = check(
        "kube-apiserver", "1.18.6", apiserver_flags(pki, tmp_path, "1.18.6", "https://127.0.0.1:1")
    )
    assert old.returncode == 0, old.stderr
    flags = apiserver_flags(pki, tmp_path, "1.22.0", "https://127.0.0.1:1")
    assert check("kube-apiserver", "1.22.0", flags).returncode == 0
    new = check("kube-apiserver", "1.22.0", {**flags, "kubelet-https": "true"})
    assert new.returncode == 1
    assert new.stderr.splitlines()[0] == "Error: unknown flag: --kubelet-https"


def test_apiserver_required_flags(pki, tmp_path):
    flags = apiserver_flags(pki, tmp_path, "1.18.6", "https://127.0.0.1:1")
    out = check("kube-apiserver", "1.18.6", {**flags, "etcd-servers": None})
    last_line = out.stderr.strip().splitlines()[-1]
    assert (out.returncode, last_line) == (1, "Error: --etcd-servers must be specified")
    flags = apiserver_flags(pki, tmp_path, "1.20.0", "https://127.0.0.1:1")
    del flags["service-account-issuer"], flags["service-account-signing-key-file"]
    out = check("kube-apiserver", "1.20.0", flags)
    assert out.returncode == 1
    assert (
        "[service-account-issuer is a required flag, --service-account-signing-key-file and "
        "--service-account-issuer are required flags]"
    ) in out.stderr
    flags = apiserver_flags(pki, tmp_path, "1.23.0", "https://127.0.0.1:1")
    del flags["service-account-issuer"], flags["service-account-signing-key-file"]
    out = check("kube-apiserver", "1.23.0", flags)  # component-base's klog error line from 1.23
    assert out.returncode == 1
    assert '"command failed" err="[service-account-issuer is a required flag' in out.stderr


def test_apiserver_insecure_port_only_zero_from_1_20(pki, tmp_path):
    flags = apiserver_flags(pki, tmp_path, "1.21.0", "https://127.0.0.1:1")
    out = check("kube-apiserver", "1.21.0", {**flags, "insecure-port": "8080"})
    assert out.returncode == 1
    assert "invalid port value 8080: only zero is allowed" in out.stderr
    flags = apiserver_flags(pki, tmp_path, "1.24.0", "https://127.0.0.1:1")
    out = check("kube-apiserver", "1.24.0", {**flags, "insecure-port": "0"})
    assert "Error: unknown flag: --insecure-port" in out.stderr


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "tls-cert-file",
            "/nonexistent/kubernetes.pem",
            "--tls-cert-file: open /nonexistent/kubernetes.pem: no such file or directory",
        ),
        (
            "client-ca-file",
            "/nonexistent/ca.pem",
            "--client-ca-file: open /nonexistent/ca.pem: no such file or directory",
        ),
        ("service-account-key-file", "/nonexistent/sa.pem", "/nonexistent/sa.pem"),
        (
            "encryption-provider-config",
            "/nonexistent/enc.yaml",
            "--encryption-provider-config: open /nonexistent/enc.yaml",
        ),
        ("audit-log-path", "/proc/nonexistent/audit.log", "--audit-log-path"),
        (
            "enable-admission-plugins",
            "NamespaceLifecycle,NoSuchPlugin",
            'enable-admission-plugins plugin "NoSuchPlugin" is unknown',
        ),
        ("authorization-mode", "Node,RBAC,Magic", 'authorization-mode "Magic" is not a valid mode'),
    ],
)
def test_apiserver_file_and_value_errors_name_the_flag(pki, tmp_path, flag, value, message):
    flags = apiserver_flags(pki, tmp_path, "1.18.6", "https://127.0.0.1:1")
    out = check("kube-apiserver", "1.18.6", {**flags, flag: value})
    assert out.returncode == 1
    assert message in out.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tls-private-key-file": "other"}, "tls: private key does not match public key"),
        ({"etcd-keyfile": "other"}, "--etcd-certfile"),
        ({"kubelet-client-key": "other"}, "--kubelet-client-certificate"),
        (
            {"tls-private-key-file": None},
            "--tls-cert-file was given without --tls-private-key-file",
        ),
        ({"service-account-key-file": "ca-key"}, None),  # a private key is a valid key file
        ({"service-account-key-file": "encryption"}, "does not contain any valid RSA or ECDSA"),
    ],
)
def test_apiserver_key_checks(pki, tmp_path, overrides, message):
    files = {"other": pki.other_key, "ca-key": pki.ca_key, "encryption": pki.encryption}
    flags = apiserver_flags(pki, tmp_path, "1.18.6", "https://127.0.0.1:1")
    flags.update({k: files.get(v, v) for k, v in overrides.items()})
    out = check("kube-apiserver", "1.18.6", flags)
    if message is None:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode == 1
        assert message in out.stderr


@pytest.mark.parametrize(
    ("secret_bytes", "kind", "ok"),
    [
        (32, "EncryptionConfig", True),
        (16, "EncryptionConfiguration", True),
        (10, "EncryptionConfig", False),
        (32, "SomethingElse", False),
        (32, "EncryptionConfigurationInV1", False),
    ],
)
def test_encryption_provider_config(pki, tmp_path, secret_bytes, kind, ok):
    api = "apiserver.config.k8s.io/v1" if kind == "EncryptionConfiguration" else "v1"
    kind = kind.replace("InV1", "")
    secret = base64.b64encode(os.urandom(secret_bytes)).decode()
    providers = [{"aescbc": {"keys": [{"name": "key1", "secret": secret}]}}, {"identity": {}}]
    doc = {
        "kind": kind,
        "apiVersion": api,
        "resources": [{"resources": ["secrets"], "providers": providers}],
    }
    path = tmp_path / "enc.yaml"
    path.write_text(yaml.safe_dump(doc))
    flags = apiserver_flags(pki, tmp_path, "1.18.6", "https://127.0.0.1:1")
    out = check("kube-apiserver", "1.18.6", {**flags, "encryption-provider-config": str(path)})
    assert (out.returncode == 0) == ok, out.stderr
    if secret_bytes == 10:
        assert "expected length, got 10, expected one of [16, 24, 32]" in out.stderr


def test_controller_manager_flags_and_files(pki, tmp_path):
    kubeconfig = write_kubeconfig(
        tmp_path / "kcm.kubeconfig", pki, "https://127.0.0.1:1", *pki.admin
    )
    flags = controller_manager_flags(pki, kubeconfig)
    assert check("kube-controller-manager", "1.18.6", flags).returncode == 0
    out = check("kube-controller-manager", "1.24.0", {**flags, "port": None})
    assert "Error: unknown flag: --address" in out.stderr
    out = check("kube-controller-manager", "1.24.0", {**flags, "port": None, "address": None})
    assert out.returncode == 0, out.stderr
    out = check("kube-controller-manager", "1.22.0", {**flags, "port": "10252"})
    assert "invalid port value 10252: only zero is allowed" in out.stderr
    bad = write_kubeconfig(
        tmp_path / "bad.kubeconfig", pki, "https://127.0.0.1:1", pki.admin[0], pki.other_key
    )
    out = check("kube-controller-manager", "1.18.6", {**flags, "kubeconfig": bad})
    assert out.returncode == 1
    assert "private key does not match public key" in out.stderr
    out = check("kube-controller-manager", "1.18.6", {**flags, "kubeconfig": "/nonexistent/kc"})
    assert "--kubeconfig: open /nonexistent/kc: no such file or directory" in out.stderr
    out = check(
        "kube-controller-manager", "1.18.6", {**flags, "cluster-signing-key-file": pki.other_key}
    )
    assert "--cluster-signing-cert-file" in out.stderr
    assert out.returncode == 1
    out = check("kube-controller-manager", "1.18.6", {**flags, "kubeconfig": None})
    assert "no configuration has been provided" in out.stderr


def test_kubeconfig_needs_a_client_certificate(pki, tmp_path):
    path = tmp_path / "token.kubeconfig"
    write_kubeconfig(path, pki, "https://127.0.0.1:1", *pki.admin)
    doc = yaml.safe_load(path.read_text())
    doc["users"][0]["user"] = {"token": "abc"}
    path.write_text(yaml.safe_dump(doc))
    config = scheduler_config(tmp_path, "kubescheduler.config.k8s.io/v1alpha1", str(path))
    out = check("kube-scheduler", "1.18.6", {"config": config})
    assert out.returncode == 1
    assert "has no client certificate and key" in out.stderr


@pytest.mark.parametrize(
    ("version", "api", "ok"),
    [
        ("1.18.6", "v1alpha1", True),
        ("1.18.6", "v1alpha2", True),
        ("1.18.6", "v1beta1", False),
        ("1.19.0", "v1alpha1", False),
        ("1.19.0", "v1beta1", True),
        ("1.22.0", "v1beta1", True),
        ("1.23.0", "v1beta1", False),
        ("1.22.0", "v1beta2", True),
        ("1.21.0", "v1beta2", False),
        ("1.27.0", "v1beta2", True),
        ("1.28.0", "v1beta2", False),
        ("1.23.0", "v1beta3", True),
        ("1.28.0", "v1beta3", True),
        ("1.29.0", "v1beta3", False),
        ("1.24.0", "v1", False),
        ("1.25.0", "v1", True),
        ("1.33.0", "v1", True),
    ],
)
def test_scheduler_config_api_version_per_version(pki, tmp_path, version, api, ok):
    kubeconfig = write_kubeconfig(tmp_path / "s.kubeconfig", pki, "https://127.0.0.1:1", *pki.admin)
    config = scheduler_config(tmp_path, f"kubescheduler.config.k8s.io/{api}", kubeconfig)
    out = check("kube-scheduler", version, {"config": config, "v": "2"})
    assert (out.returncode == 0) == ok, out.stderr
    if not ok:
        stderr = out.stderr.replace('\\"', '"')  # klog quotes the error from 1.23
        assert (
            f'no kind "KubeSchedulerConfiguration" is registered for version '
            f'"kubescheduler.config.k8s.io/{api}"'
        ) in stderr


def test_scheduler_needs_a_config_or_kubeconfig(pki, tmp_path):
    out = check("kube-scheduler", "1.18.6", {"v": "2"})
    assert out.returncode == 1
    assert "no configuration has been provided" in out.stderr
    config = scheduler_config(tmp_path, "kubescheduler.config.k8s.io/v1alpha1", "/nonexistent/k")
    out = check("kube-scheduler", "1.18.6", {"config": config})
    assert "open /nonexistent/k: no such file or directory" in out.stderr
    good = write_kubeconfig(tmp_path / "s.kubeconfig", pki, "https://127.0.0.1:1", *pki.admin)
    config = scheduler_config(tmp_path, "kubescheduler.config.k8s.io/v1alpha1", good)
    out = check("kube-scheduler", "1.18.6", {"config": config, "kubeconfig": "/nonexistent/k"})
    assert out.returncode == 0, out.stderr  # with --config the deprecated flag is ignored
    out = check("kube-scheduler", "1.18.6", {"config": str(tmp_path / "missing.yaml")})
    assert out.returncode == 1
    assert "--config: open" in out.stderr


# =============================================================================================
# Serving: kube-apiserver with a real etcd
# =============================================================================================


@needs_etcd
def test_apiserver_readiness_follows_etcd(pki, tmp_path, procs):
    etcd = Etcd(pki, tmp_path / "etcd")  # not started yet: the apiserver starts without it
    flags = apiserver_flags(pki, tmp_path, "1.18.6", etcd.url)
    port = int(flags["secure-port"])
    proc = start_double(procs, tmp_path, "kube-apiserver", "1.18.6", flags)
    status, body, _ = wait_for(answers(port, "/version"), "/version", proc=proc)
    version = json.loads(body)
    assert status == 200
    assert (version["gitVersion"], version["platform"], version["testDouble"]) == (
        "v1.18.6",
        "linux/amd64",
        True,
    )
    for path in ("/readyz", "/healthz", "/livez"):
        status, body, _ = call(port, "GET", path, pki)
        assert status == 500
        assert "[-]etcd failed: reason withheld" in body
        assert body.endswith(f"{path[1:]} check failed\n")
    status, body, _ = call(port, "GET", f"{RBAC}/v1/clusterroles/x", pki, cert=pki.admin)
    assert (status, json.loads(body)["reason"]) == (500, "InternalError")
    try:
        etcd.start()
        wait_for(lambda: call(port, "GET", "/readyz", pki)[0] == 200, "/readyz 200", proc=proc)
        status, body, _ = call(port, "GET", "/readyz?verbose", pki)
        assert "[+]ping ok" in body
        assert "[+]etcd ok" in body
        assert body.endswith("readyz check passed\n")
        assert call(port, "GET", "/healthz", pki)[:2] == (200, "ok")
        assert call(port, "GET", "/livez", pki, cert=pki.admin)[:2] == (200, "ok")
        wait_for(lambda: "etcd is healthy" in proc.output(), "the etcd report", proc=proc)
    finally:
        etcd.stop()
    wait_for(lambda: call(port, "GET", "/readyz", pki)[0] == 500, "/readyz 500 again", proc=proc)
    wait_for(lambda: "] etcd is unreachable" in proc.output(), "the etcd report", proc=proc)
    assert proc.stop() == 0  # SIGTERM: clean exit
    assert "Received SIGTERM" in proc.output()


def json_call(*args, **kwargs):
    status, body, headers = call(*args, **kwargs)
    return status, json.loads(body), headers


SEED_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1beta1",
    "kind": "ClusterRole",
    "metadata": {
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "name": "system:kube-apiserver-to-kubelet",
    },
    "rules": [
        {
            "apiGroups": [""],
            "resources": ["nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"],
            "verbs": ["*"],
        }
    ],
}

SEED_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1beta1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "system:kube-apiserver", "namespace": ""},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:kube-apiserver-to-kubelet",
    },
    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubernetes"}],
}


@needs_etcd
@needs_etcd
def test_anonymous_and_unprivileged_access(pki, apiserver):
    port = apiserver.port
    for path in ("/healthz", "/livez", "/readyz"):  # system:public-info-viewer
        assert call(port, "GET", path, pki)[:2] == (200, "ok")
    assert call(port, "GET", "/version", pki)[0] == 200
    status, body, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles/x", pki)
    assert (status, body["reason"]) == (403, "Forbidden")
    assert 'User "system:anonymous" cannot get resource "clusterroles"' in body["message"]
    status, body, _ = json_call(port, "POST", f"{RBAC}/v1/clusterroles", pki, body=SEED_ROLE)
    assert 'User "system:anonymous" cannot create resource "clusterroles"' in body["message"]
    status, body, _ = json_call(port, "GET", "/metrics", pki)
    assert (status, body["message"]) == (
        403,
        'forbidden: User "system:anonymous" cannot get path "/metrics"',
    )
    status, body, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles/x", pki, cert=pki.jane)
    assert status == 403
    assert body["message"] == (
        'clusterroles.rbac.authorization.k8s.io "x" is forbidden: User "jane" cannot get resource '
        '"clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope'
    )


@needs_etcd
def test_rbac_create_get_replace_conflicts(pki, apiserver):
    port, admin = apiserver.port, pki.admin
    roles = f"{RBAC}/v1beta1/clusterroles"  # the seed's version, still served by 1.18
    name = SEED_ROLE["metadata"]["name"]
    status, created, _ = json_call(port, "POST", roles, pki, cert=admin, body=SEED_ROLE)
    assert status == 201, created
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert meta["labels"] == SEED_ROLE["metadata"]["labels"]
    assert created["apiVersion"] == "rbac.authorization.k8s.io/v1beta1"
    status, got, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles/{name}", pki, cert=admin)
    assert (status, got["rules"], got["apiVersion"]) == (
        200,
        SEED_ROLE["rules"],
        "rbac.authorization.k8s.io/v1",
    )
    status, body, _ = json_call(port, "POST", roles, pki, cert=admin, body=SEED_ROLE)
    assert (status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == f'clusterroles.rbac.authorization.k8s.io "{name}" already exists'
    status, body, _ = json_call(port, "GET", f"{roles}/nope", pki, cert=admin)
    details = {"name": "nope", "group": "rbac.authorization.k8s.io", "kind": "clusterroles"}
    assert (status, body["reason"], body["details"]) == (404, "NotFound", details)

    same = json_call(port, "PUT", f"{roles}/{name}", pki, cert=admin, body=SEED_ROLE)
    assert same[1]["metadata"]["resourceVersion"] == meta["resourceVersion"]  # no-op update
    changed = {**SEED_ROLE, "rules": [{**SEED_ROLE["rules"][0], "verbs": ["get"]}]}
    status, body, _ = json_call(port, "PUT", f"{roles}/{name}", pki, cert=admin, body=changed)
    assert status == 200
    assert body["metadata"]["uid"] == meta["uid"]
    assert int(body["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    stale = {**changed, "metadata": {**changed["metadata"], **{"resourceVersion": "1"}}}
    status, body, _ = json_call(port, "PUT", f"{roles}/{name}", pki, cert=admin, body=stale)
    assert (status, body["reason"]) == (409, "Conflict")
    status, body, _ = json_call(port, "PUT", f"{roles}/other", pki, cert=admin, body=changed)
    assert (status, body["reason"]) == (400, "BadRequest")
    nameless = {**changed, "metadata": {}}
    status, body, _ = json_call(port, "PUT", f"{roles}/{name}", pki, cert=admin, body=nameless)
    assert (status, body["reason"]) == (400, "BadRequest")

    bindings = f"{RBAC}/v1beta1/clusterrolebindings"
    status, body, _ = json_call(port, "POST", bindings, pki, cert=admin, body=SEED_BINDING)
    assert status == 201, body
    assert "namespace" not in body["metadata"]  # cluster-scoped
    moved = {**SEED_BINDING, "roleRef": {**SEED_BINDING["roleRef"], "name": "cluster-admin"}}
    status, body, _ = json_call(
        port, "PUT", f"{bindings}/system:kube-apiserver", pki, cert=admin, body=moved
    )
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "roleRef"
    assert body["message"].endswith("cannot change roleRef")

    no_verbs = {
        "kind": "ClusterRole",
        "metadata": {"name": "bad"},
        "rules": [{"apiGroups": [""], "resources": ["pods"]}],
    }
    status, body, _ = json_call(
        port, "POST", f"{RBAC}/v1/clusterroles", pki, cert=admin, body=no_verbs
    )
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'ClusterRole.rbac.authorization.k8s.io "bad" is invalid: rules[0].verbs: Required value: '
        "verbs must contain at least one value"
    )
    wrong_kind = {**SEED_BINDING, "apiVersion": "rbac.authorization.k8s.io/v1"}
    status, body, _ = json_call(
        port, "POST", f"{RBAC}/v1/clusterroles", pki, cert=admin, body=wrong_kind
    )
    assert status == 400
    status, body, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles", pki, cert=admin)
    assert (status, body["reason"]) == (405, "MethodNotAllowed")  # nothing lists: not served


@needs_etcd
def test_rbac_objects_are_stored_as_sent_by_k8s_api(pki, apiserver):
    """Unknown fields are dropped and defaults set, so k8s_api.diff settles after one apply."""
    port, admin = apiserver.port, pki.admin
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "defaults", "namespace": "", "unknown": 1},
        "roleRef": {"kind": "ClusterRole", "name": "some-role"},
        "subjects": [{"kind": "User", "name": "kubernetes", "extra": "x"}],
        "status": {},
    }
    path = f"{RBAC}/v1/clusterrolebindings"
    status, body, _ = json_call(port, "POST", path, pki, cert=admin, body=binding)
    assert status == 201, body
    status, body, _ = json_call(port, "GET", f"{path}/defaults", pki, cert=admin)
    assert body["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "some-role",
    }
    assert body["subjects"] == [
        {"kind": "User", "name": "kubernetes", "apiGroup": "rbac.authorization.k8s.io"}
    ]
    assert set(body) == {"kind", "apiVersion", "metadata", "roleRef", "subjects"}
    assert set(body["metadata"]) == {"name", "uid", "resourceVersion", "creationTimestamp"}


@needs_etcd
def test_rbac_dry_run_and_delete(pki, apiserver):
    port, admin = apiserver.port, pki.admin
    roles = f"{RBAC}/v1/clusterroles"
    role = {
        "kind": "ClusterRole",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "dry"},
        "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}],
    }
    status, body, _ = json_call(port, "POST", f"{roles}?dryRun=All", pki, cert=admin, body=role)
    assert status == 201
    assert "resourceVersion" not in body["metadata"] or body["metadata"]["resourceVersion"] == "0"
    assert json_call(port, "GET", f"{roles}/dry", pki, cert=admin)[0] == 404
    assert json_call(port, "POST", roles, pki, cert=admin, body=role)[0] == 201
    changed = {**role, "rules": [{"nonResourceURLs": ["/y"], "verbs": ["get"]}]}
    status, body, _ = json_call(
        port, "PUT", f"{roles}/dry?dryRun=All", pki, cert=admin, body=changed
    )
    assert (status, body["rules"]) == (200, changed["rules"])
    assert json_call(port, "GET", f"{roles}/dry", pki, cert=admin)[1]["rules"] == role["rules"]
    status, body, _ = json_call(port, "DELETE", f"{roles}/dry?dryRun=All", pki, cert=admin)
    assert (status, body["status"]) == (200, "Success")
    assert json_call(port, "GET", f"{roles}/dry", pki, cert=admin)[0] == 200
    assert json_call(port, "DELETE", f"{roles}/dry", pki, cert=admin)[0] == 200
    assert json_call(port, "GET", f"{roles}/dry", pki, cert=admin)[0] == 404
    assert json_call(port, "DELETE", f"{roles}/dry", pki, cert=admin)[0] == 404
    assert json_call(port, "POST", f"{roles}?dryRun=Maybe", pki, cert=admin, body=role)[0] == 400


@needs_etcd
def test_objects_survive_restart_and_versions_change(pki, etcd, tmp_path, procs):
    flags = apiserver_flags(pki, tmp_path, "1.18.6", etcd.url)
    port = int(flags["secure-port"])
    first = start_double(procs, tmp_path, "kube-apiserver", "1.18.6", flags)
    wait_for(lambda: (answers(port, "/readyz")() or (0,))[0] == 200, "/readyz", proc=first)
    role = {
        "kind": "ClusterRole",
        "metadata": {"name": "survivor"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
    }
    status, created, _ = json_call(
        port, "POST", f"{RBAC}/v1/clusterroles", pki, cert=pki.admin, body=role
    )
    assert status == 201
    assert first.stop() == 0

    flags = {**apiserver_flags(pki, tmp_path, "1.22.0", etcd.url), "anonymous-auth": "false"}
    port = int(flags["secure-port"])
    second = start_double(procs, tmp_path, "kube-apiserver", "1.22.0", flags)
    wait_for(
        lambda: (
            call(port, "GET", "/readyz", pki, cert=pki.admin)[0] == 200
            if answers(port, "/version")()
            else False
        ),
        "/readyz",
        proc=second,
    )
    status, got, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles/survivor", pki, cert=pki.admin)
    assert (status, got["metadata"]["uid"]) == (200, created["metadata"]["uid"])
    status, _, _ = call(port, "GET", f"{RBAC}/v1beta1/clusterroles/survivor", pki, cert=pki.admin)
    assert status == 404  # rbac v1beta1 is not served from 1.22
    status, body, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles/survivor", pki)
    assert (status, body["reason"]) == (401, "Unauthorized")
    assert call(port, "GET", "/healthz", pki)[0] == 401
    assert json.loads(call(port, "GET", "/version", pki, cert=pki.jane)[1])["minor"] == "22"


# =============================================================================================
# Serving: kube-controller-manager and kube-scheduler
# =============================================================================================


@pytest.mark.parametrize("how", ["module", "built"])
def test_controller_manager_serves_healthz(pki, tmp_path, procs, built, how):
    kubeconfig = write_kubeconfig(
        tmp_path / "kcm.kubeconfig", pki, "https://127.0.0.1:1", *pki.admin
    )
    secure = free_port()
    flags = {**controller_manager_flags(pki, kubeconfig), "secure-port": secure}
    if how == "module":
        proc = start_double(procs, tmp_path, "kube-controller-manager", "1.18.6", flags)
    else:  # the zipapp as the mirror publishes it (1.22.3)
        args = [str(built.dir / "kube-controller-manager"), *flag_args(flags)]
        proc = Proc(args, double_env(validate_only=False), tmp_path / "kcm.log")
        procs.append(proc)
    assert wait_for(answers(secure, "/healthz"), "secure /healthz", proc=proc)[:2] == (200, "ok")
    assert "[+]leaderElection ok" in call(secure, "GET", "/healthz?verbose")[1]
    assert call(secure, "GET", "/metrics")[0] == 403
    # only /healthz is always allowed before 1.22
    assert call(secure, "GET", "/readyz")[0] == (403 if how == "module" else 200)
    assert proc.stop() == 0


@pytest.mark.parametrize(("version", "api"), [("1.18.6", "v1alpha1"), ("1.25.0", "v1")])
def test_scheduler_serves_healthz(pki, tmp_path, procs, version, api):
    kubeconfig = write_kubeconfig(tmp_path / "s.kubeconfig", pki, "https://127.0.0.1:1", *pki.admin)
    secure = free_port()
    config = scheduler_config(tmp_path, f"kubescheduler.config.k8s.io/{api}", kubeconfig)
    flags = {"config": config, "bind-address": HOST, "secure-port": secure, "v": "2"}
    proc = start_double(procs, tmp_path, "kube-scheduler", version, flags)
    assert wait_for(answers(secure, "/healthz"), "secure /healthz", proc=proc)[:2] == (200, "ok")
    status, body, _ = call(secure, "GET", "/livez?verbose")
    if version == "1.18.6":
        assert status == 403
    else:
        assert (status, body.splitlines()[-1]) == (200, "livez check passed")
    assert proc.stop() == 0


def test_discovery_for_kubectl(pki, apiserver):
    """The legacy discovery kubectl reads before a GET: the RBAC group at the minor's versions."""
    port, admin = apiserver.port, pki.admin
    status, versions, _ = json_call(port, "GET", "/api", pki, cert=admin)
    assert (status, versions["versions"]) == (200, ["v1"])
    status, groups, _ = json_call(port, "GET", "/apis", pki, cert=admin)
    (rbac,) = groups["groups"]
    assert [v["version"] for v in rbac["versions"]] == ["v1", "v1beta1"]  # 1.18 serves both
    status, resources, _ = json_call(port, "GET", f"{RBAC}/v1", pki, cert=admin)
    assert status == 200
    kinds = {r["name"]: (r["kind"], r["namespaced"]) for r in resources["resources"]}
    assert kinds == {
        "clusterroles": ("ClusterRole", False),
        "clusterrolebindings": ("ClusterRoleBinding", False),
    }
    status, _, _ = call(port, "GET", f"{RBAC}/v2", pki, cert=admin)
    assert status == 404
    status, _, _ = call(port, "GET", "/apis", pki)  # anonymous: not public
    assert status in (401, 403)
