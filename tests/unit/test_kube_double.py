"""Tests of the Kubernetes control plane test doubles (tests/doubles/kube_double.py).

Real subprocesses on 127.0.0.1 only: the doubles run with KUBE_DOUBLE_ONLY_ADDRESS=127.0.0.1,
so a forgotten bind or connect address fails the test instead of leaving the machine. Certificates
come from the openssl CLI; the etcd tests start Debian's /usr/bin/etcd with client TLS.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
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

DOUBLE = Path(__file__).resolve().parents[1] / "doubles" / "kube_double.py"
ETCD = "/usr/bin/etcd"
HOST = "127.0.0.1"
RBAC = "/apis/rbac.authorization.k8s.io"

_spec = importlib.util.spec_from_file_location("kube_double", DOUBLE)
kd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kd)

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


def double_env(component: str, version: str, validate_only: bool) -> dict:
    env = {**os.environ, "KUBE_DOUBLE_COMPONENT": component, "KUBE_DOUBLE_VERSION": version}
    env["KUBE_DOUBLE_ONLY_ADDRESS"] = HOST
    env.pop("KUBE_DOUBLE_VALIDATE_ONLY", None)
    if validate_only:
        env["KUBE_DOUBLE_VALIDATE_ONLY"] = "1"
    return env


def flag_args(flags: dict) -> list[str]:
    return [f"--{k}={v}" for k, v in flags.items() if v is not None]


def check(component: str, version: str, flags: dict | list) -> subprocess.CompletedProcess:
    """Run the double in validate-only mode (flags and files, no serving)."""
    args = flags if isinstance(flags, list) else flag_args(flags)
    return subprocess.run(
        [sys.executable, str(DOUBLE), *args],
        env=double_env(component, version, validate_only=True),
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
                args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
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
        [sys.executable, str(DOUBLE), *flag_args(flags)],
        double_env(component, version, validate_only=False),
        log,
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
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> SimpleNamespace:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is missing")
    d = tmp_path_factory.mktemp("pki")
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req",
        "-x509",
        "-new",
        *ec,
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kube-double-test-ca",
        "-config",
        "openssl.cnf",
        "-extensions",
        "ca",
        cwd=d,
    )
    leaves = {
        "kubernetes": ("/CN=kubernetes", "server"),
        "admin": ("/O=system:masters/CN=admin", "client"),
        "jane": ("/O=developers/CN=jane", "client"),
    }
    for serial, (name, (subject, ext)) in enumerate(leaves.items(), start=2):
        openssl(
            "req",
            "-new",
            *ec,
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
            "-subj",
            subject,
            "-config",
            "openssl.cnf",
            cwd=d,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-set_serial",
            str(serial),
            "-days",
            "2",
            "-out",
            f"{name}.pem",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            ext,
            cwd=d,
        )
    for name in ("other-key.pem", "service-account-key.pem"):
        openssl(
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            name,
            cwd=d,
        )
    openssl(
        "pkey", "-in", "service-account-key.pem", "-pubout", "-out", "service-account.pem", cwd=d
    )
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
        args = [
            ETCD,
            "--name",
            "kd",
            "--data-dir",
            str(self.workdir / "data"),
            "--logger",
            "zap",
            "--listen-client-urls",
            self.url,
            "--advertise-client-urls",
            self.url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"kd={peer}",
            "--cert-file",
            self.pki.server,
            "--key-file",
            self.pki.server_key,
            "--trusted-ca-file",
            self.pki.ca,
            "--client-cert-auth",
        ]
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
# stamp() and the flag table
# =============================================================================================


def test_stamp_rewrites_only_the_version_line(tmp_path):
    source = DOUBLE.read_text()
    stamped = kd.stamp(source, "v1.22.3")
    assert stamped.count('DOUBLE_VERSION = "1.22.3"') == 1
    assert stamped.replace('"1.22.3"', f'"{kd.DOUBLE_VERSION}"', 1) == source
    target = tmp_path / "v1.22.3" / "bin" / "linux" / "amd64" / "kube-apiserver"
    target.parent.mkdir(parents=True)
    target.write_text(stamped)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_DOUBLE_")}
    out = subprocess.run(
        [sys.executable, str(target), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (out.returncode, out.stdout) == (0, "Kubernetes v1.22.3 (test double)\n")


def test_stamp_rejects_bad_input():
    with pytest.raises(ValueError, match="invalid Kubernetes version"):
        kd.stamp(DOUBLE.read_text(), "1.x")
    with pytest.raises(ValueError, match="no single DOUBLE_VERSION"):
        kd.stamp("print('no version line')\n", "1.20.0")


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
    missing = set(SEED_FLAGS[component].split()) - set(kd.flags_for(component, 18))
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
    ],
)
def test_flag_table_removals(component, flag, last_minor):
    assert flag in kd.flags_for(component, last_minor)
    assert flag not in kd.flags_for(component, last_minor + 1)


def test_flag_table_keeps_current_flags():
    for minor in (18, 24, 34):
        api = kd.flags_for("kube-apiserver", minor)
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
        kcm = kd.flags_for("kube-controller-manager", minor)
        assert {
            "bind-address",
            "secure-port",
            "authentication-kubeconfig",
            "authorization-kubeconfig",
            "cluster-signing-cert-file",
        } <= set(kcm)
        sched = kd.flags_for("kube-scheduler", minor)
        assert {"config", "bind-address", "secure-port", "v", "leader-elect", "kubeconfig"} <= set(
            sched
        )


# =============================================================================================
# Command line
# =============================================================================================


@pytest.mark.parametrize("component", kd.COMPONENTS)
def test_version_flag_names_the_double(component):
    out = check(component, "1.18.6", ["--version"])
    assert (out.returncode, out.stdout) == (0, "Kubernetes v1.18.6 (test double)\n")


def test_debian_python3_runs_the_double():
    python = "/usr/bin/python3"
    probe = subprocess.run([python, "-c", "import yaml"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("/usr/bin/python3 with python3-yaml is not installed")
    env = double_env("kube-scheduler", "1.30.1", validate_only=True)
    out = subprocess.run(
        [python, str(DOUBLE), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.stdout == "Kubernetes v1.30.1 (test double)\n"


@pytest.mark.parametrize("version", ["1.17.9", "1.35.0", "2.0.0"])
def test_unsupported_versions_exit_1(version):
    out = check("kube-apiserver", version, ["--version"])
    assert out.returncode == 1
    assert "not supported" in out.stderr


def test_unknown_program_name_exits_1():
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_DOUBLE_")}
    out = subprocess.run(
        [sys.executable, str(DOUBLE), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 1
    assert "KUBE_DOUBLE_COMPONENT" in out.stderr


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
        ("1.34.0", "v1", True),
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
    for path in ("/readyz", "/healthz"):
        status, body, _ = call(port, "GET", path, pki)
        assert status == 500
        assert "[-]etcd failed: reason withheld" in body
        assert body.endswith(f"{path[1:]} check failed\n")
    status, body, _ = call(port, "GET", f"{RBAC}/v1/clusterroles", pki, cert=pki.admin)
    assert (status, json.loads(body)["reason"]) == (500, "InternalError")
    try:
        etcd.start()
        wait_for(lambda: call(port, "GET", "/readyz", pki)[0] == 200, "/readyz 200", proc=proc)
        status, body, _ = call(port, "GET", "/readyz?verbose", pki)
        assert "[+]ping ok" in body
        assert "[+]etcd ok" in body
        assert "[+]poststarthook/rbac/bootstrap-roles ok" in body
        assert body.endswith("readyz check passed\n")
        assert call(port, "GET", "/healthz", pki)[:2] == (200, "ok")
        # single checks are not public (system:public-info-viewer lists /livez, not /livez/*)
        assert call(port, "GET", "/livez/etcd", pki)[0] == 403
        assert call(port, "GET", "/livez/etcd", pki, cert=pki.admin)[:2] == (200, "ok")
        assert "[+]etcd excluded: ok" in call(port, "GET", "/healthz?verbose&exclude=etcd", pki)[1]
    finally:
        etcd.stop()
    assert "test double kube-apiserver" in proc.output()


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
def test_anonymous_and_unprivileged_access(pki, apiserver):
    port = apiserver.port
    assert call(port, "GET", "/healthz", pki)[:2] == (200, "ok")  # system:public-info-viewer
    assert call(port, "GET", "/version", pki)[0] == 200
    status, body, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles", pki)
    assert (status, body["reason"]) == (403, "Forbidden")
    assert 'User "system:anonymous" cannot list resource "clusterroles"' in body["message"]
    assert json_call(port, "GET", "/api", pki)[0] == 403  # discovery needs authentication
    status, body, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles/x", pki, cert=pki.jane)
    assert status == 403
    assert body["message"] == (
        'clusterroles.rbac.authorization.k8s.io "x" is forbidden: User "jane" cannot get resource '
        '"clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope'
    )
    status, body, _ = json_call(port, "GET", "/apis", pki, cert=pki.jane)
    versions = [v["version"] for v in body["groups"][0]["versions"]]
    assert (status, versions) == (200, ["v1", "v1beta1"])


@needs_etcd
def test_rbac_create_get_replace_conflicts(pki, apiserver):
    port, admin = apiserver.port, pki.admin
    roles = f"{RBAC}/v1beta1/clusterroles"
    name = SEED_ROLE["metadata"]["name"]
    status, created, _ = json_call(port, "POST", roles, pki, cert=admin, body=SEED_ROLE)
    assert status == 201, created
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
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
    names = {item["metadata"]["name"] for item in body["items"]}
    assert {name, "cluster-admin", "system:kubelet-api-admin"} <= names
    assert body["kind"] == "ClusterRoleList"


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
    status, body, _ = json_call(port, "DELETE", f"{roles}/dry?dryRun=All", pki, cert=admin)
    assert (status, body["status"]) == (200, "Success")
    assert json_call(port, "GET", f"{roles}/dry", pki, cert=admin)[0] == 200
    assert json_call(port, "DELETE", f"{roles}/dry", pki, cert=admin)[0] == 200
    assert json_call(port, "GET", f"{roles}/dry", pki, cert=admin)[0] == 404
    assert json_call(port, "DELETE", f"{roles}/dry", pki, cert=admin)[0] == 404
    assert json_call(port, "POST", f"{roles}?dryRun=Maybe", pki, cert=admin, body=role)[0] == 400


@needs_etcd
def test_rbac_binding_grants_access(pki, apiserver):
    port, admin = apiserver.port, pki.admin
    reader = {
        "kind": "ClusterRole",
        "metadata": {"name": "role-reader"},
        "rules": [
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles"],
                "verbs": ["get", "list"],
            }
        ],
    }
    binding = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "developers-read-roles"},
        "roleRef": {"kind": "ClusterRole", "name": "role-reader"},
        "subjects": [{"kind": "Group", "name": "developers"}],
    }
    list_path = f"{RBAC}/v1/clusterroles"
    assert call(port, "GET", list_path, pki, cert=pki.jane)[0] == 403
    assert json_call(port, "POST", list_path, pki, cert=admin, body=reader)[0] == 201
    status, body, _ = json_call(
        port, "POST", f"{RBAC}/v1/clusterrolebindings", pki, cert=admin, body=binding
    )
    assert status == 201
    assert body["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"  # defaulted
    assert call(port, "GET", list_path, pki, cert=pki.jane)[0] == 200
    assert call(port, "POST", list_path, pki, cert=pki.jane, body=reader)[0] == 403


@needs_etcd
def test_objects_survive_restart_and_versions_change(pki, etcd, tmp_path, procs):
    insecure = free_port()  # 1.18 still serves the unauthenticated port (default 8080)
    flags = {**apiserver_flags(pki, tmp_path, "1.18.6", etcd.url), "insecure-port": insecure}
    port = int(flags["secure-port"])
    first = start_double(procs, tmp_path, "kube-apiserver", "1.18.6", flags)
    wait_for(lambda: (answers(port, "/readyz")() or (0,))[0] == 200, "/readyz", proc=first)
    status, body, _ = call(insecure, "GET", f"{RBAC}/v1/clusterroles/cluster-admin", scheme="http")
    assert (status, json.loads(body)["metadata"]["name"]) == (200, "cluster-admin")
    role = {
        "kind": "ClusterRole",
        "metadata": {"name": "survivor"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
    }
    status, created, _ = json_call(
        port, "POST", f"{RBAC}/v1/clusterroles", pki, cert=pki.admin, body=role
    )
    assert status == 201
    assert first.stop() == 0  # SIGTERM: clean exit
    assert "Received SIGTERM" in first.output()

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
    status, body, _ = json_call(port, "GET", f"{RBAC}/v1/clusterroles", pki)
    assert (status, body["reason"]) == (401, "Unauthorized")
    assert call(port, "GET", "/healthz", pki)[0] == 401
    assert json.loads(call(port, "GET", "/version", pki, cert=pki.jane)[1])["minor"] == "22"


@needs_etcd
def test_merge_patch_and_component_statuses(pki, apiserver):
    port, admin = apiserver.port, pki.admin
    role = {
        "kind": "ClusterRole",
        "metadata": {"name": "patched"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    path = f"{RBAC}/v1/clusterroles/patched"
    assert json_call(port, "PUT", path, pki, cert=admin, body=role)[0] == 201  # create on update
    patch = {"metadata": {"labels": {"team": "platform"}}}
    status, body, _ = json_call(
        port, "PATCH", path, pki, cert=admin, body=patch, ctype="application/merge-patch+json"
    )
    assert (status, body["metadata"]["labels"], body["rules"]) == (
        200,
        {"team": "platform"},
        role["rules"],
    )
    status, body, _ = json_call(
        port, "GET", f"{RBAC}/v1/clusterroles?labelSelector=team%3Dplatform", pki, cert=admin
    )
    assert [item["metadata"]["name"] for item in body["items"]] == ["patched"]
    status, body, _ = json_call(
        port, "PATCH", path, pki, cert=admin, body=patch, ctype="application/json-patch+json"
    )
    assert status == 415
    status, body, _ = json_call(port, "GET", "/api/v1/componentstatuses", pki, cert=admin)
    assert (status, body["kind"]) == (200, "ComponentStatusList")
    conditions = {item["metadata"]["name"]: item["conditions"][0] for item in body["items"]}
    assert {"scheduler", "controller-manager", "etcd-0"} <= set(conditions)
    assert conditions["etcd-0"]["status"] == "True"


# =============================================================================================
# Serving: kube-controller-manager and kube-scheduler
# =============================================================================================


@needs_etcd
def test_controller_manager_serves_healthz(pki, apiserver, tmp_path, procs):
    kubeconfig = write_kubeconfig(tmp_path / "kcm.kubeconfig", pki, apiserver.url, *pki.admin)
    secure, insecure = free_port(), free_port()
    flags = {**controller_manager_flags(pki, kubeconfig), "secure-port": secure, "port": insecure}
    proc = start_double(procs, tmp_path, "kube-controller-manager", "1.18.6", flags)
    assert wait_for(answers(secure, "/healthz"), "secure /healthz", proc=proc)[:2] == (200, "ok")
    assert call(insecure, "GET", "/healthz", scheme="http")[:2] == (200, "ok")
    assert "[+]leaderElection ok" in call(secure, "GET", "/healthz?verbose")[1]
    assert call(secure, "GET", "/metrics")[0] == 403
    wait_for(lambda: "is healthy" in proc.output(), "the apiserver probe", proc=proc)
    assert proc.stop() == 0


@needs_etcd
@pytest.mark.parametrize(("version", "api"), [("1.18.6", "v1alpha1"), ("1.25.0", "v1")])
def test_scheduler_serves_healthz(pki, apiserver, tmp_path, procs, version, api):
    kubeconfig = write_kubeconfig(tmp_path / "s.kubeconfig", pki, apiserver.url, *pki.admin)
    secure, insecure = free_port(), free_port()
    extra = {"healthzBindAddress": f"{HOST}:{insecure}"} if api == "v1alpha1" else {}
    config = scheduler_config(tmp_path, f"kubescheduler.config.k8s.io/{api}", kubeconfig, **extra)
    flags = {"config": config, "bind-address": HOST, "secure-port": secure, "v": "2"}
    proc = start_double(procs, tmp_path, "kube-scheduler", version, flags)
    assert wait_for(answers(secure, "/healthz"), "secure /healthz", proc=proc)[:2] == (200, "ok")
    if api == "v1alpha1":  # 1.18 still serves the insecure port (componentstatuses uses it)
        assert call(insecure, "GET", "/healthz", scheme="http")[:2] == (200, "ok")
    else:
        with pytest.raises(OSError):
            call(insecure, "GET", "/healthz", scheme="http")
    wait_for(lambda: "is healthy" in proc.output(), "the apiserver probe", proc=proc)
    assert proc.stop() == 0
