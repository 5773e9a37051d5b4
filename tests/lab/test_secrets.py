"""Secrets kept (issue 11, item 2): after a full orchestration, a highstate and a refused run,
no secret appears where it should not, and the files that hold one are locked.

Secrets: the VRRP password (the lab switches to VRRPv2 with one for this module: VRRPv3 has no
authentication), the encryption key, and the body of every private key the controllers hold (the
PEM files, the CA key included, and the kubeconfigs' client keys, base64 and decoded; with
pki:source salt each controller made its own). Searched:

- the output of the three runs (stdout and stderr);
- the master's job cache (every job's return) and the master's log (the lab writes it at info,
  below Salt's default warning: more is searched than an operator would keep);
- each controller's minion log;
- every world-readable file on every controller (written since it booted) and under the lab's
  state directory on the host (the master's config, cache, pillar, logs).

Locks: key files, kubeconfigs and the encryption config 0600 root in 0700 directories; the
haproxy stats socket not world-accessible; keepalived's scripts run as its script user.
"""

import base64
import shlex
import time

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from tests.lab.handover import hand_over
from tools.lab import lab
from tools.lab.common import HOSTS_DIR, STATE_DIR

VRRP_PASS = "Vr9xQ2mz"  # 8 characters: keepalived uses no more
OVERRIDE = {
    "loadbalancer": {"keepalived": {"vrrp_version": 2}},
    "secrets": {"vrrp_auth_pass": VRRP_PASS},
}
INVALID = {
    **OVERRIDE,
    "loadbalancer": {"keepalived": {"vrrp_version": 2}, "haproxy": {"inter": "fast"}},
}
KEY_DIRS = ("/var/lib/kubernetes", "/etc/etcd")
OUTPUTS: dict[str, str] = {}


def _pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def _private_lines(pem: str) -> list[str]:
    """
    A key's PEM body lines that carry private bytes. A line holding only public key bytes is
    left out: an EC key's PEM ends with its public point, which the certificate beside it
    publishes (the same base64 line can appear in the 0644 certificate).
    """
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    lines = _pem_body_lines(pem)
    # every full line is 48 bytes; a short last line may end inside a base64 quantum
    return [line for line in lines if base64.b64decode(line + "=" * (-len(line) % 4)) not in public]


KEPT: dict[str, dict[str, str]] = {}


def controller_secrets() -> dict[str, str]:
    """
    {"<controller>:<file>": text} of every secret the controllers hold: their private keys and
    kubeconfigs (made on each controller with pki:source salt, the CA key from the master) and
    the encryption key (read from encryption-config.yaml). Read once, after the first run.
    """
    if not KEPT:
        for name in lab.controllers():
            held = KEPT.setdefault(name, {})
            for directory in KEY_DIRS:
                for file in lab.cexec(name, f"ls {directory}", check=True).stdout.split():
                    if file.endswith(("-key.pem", ".kubeconfig")):
                        path = f"{directory}/{file}"
                        held[path] = lab.cexec(name, f"cat {path}", check=True).stdout
            config = lab.cexec(name, f"cat {KEY_DIRS[0]}/encryption-config.yaml", check=True)
            provider = yaml.safe_load(config.stdout)["resources"][0]["providers"][0]
            held["encryption_key"] = provider["aescbc"]["keys"][0]["secret"]
    return {f"{n}:{f}": text for n, files in KEPT.items() for f, text in files.items()}


def secrets() -> dict[str, str]:
    """{label: a string that must not appear}: whole values and each line of a key's body."""
    held = controller_secrets()
    found = {"vrrp_auth_pass": VRRP_PASS}
    for name, value in held.items():
        if name.endswith("encryption_key"):
            found[name] = value
        if name.endswith("-key.pem"):
            for number, line in enumerate(_private_lines(value)):
                found[f"{name} line {number + 1}"] = line
        if name.endswith(".kubeconfig"):
            user = yaml.safe_load(value)["users"][0]["user"]
            data = user["client-key-data"]
            found[f"{name} client-key-data"] = data[:64]
            pem = base64.b64decode(data).decode()
            for number, line in enumerate(_private_lines(pem)):
                found[f"{name} client key line {number + 1}"] = line
    return {label: text for label, text in found.items() if len(text) >= 8}


def leaks_in(text: str, where: str, found: dict[str, str] | None = None) -> list[str]:
    """Each secret (of ``found``, default all of them) that ``text`` holds, with where."""
    found = secrets() if found is None else found
    return [f"{label} in {where}" for label, secret in found.items() if secret in text]


@pytest.fixture(scope="module")
def runs(converged_lab, measured):
    """The three runs, their output kept: orchestration, highstate, a refused orchestration
    (on the converged lab test_refused_input hands over, or a fresh one: the orchestration with
    the VRRP password then changes keepalived's configuration on every controller)."""
    lab.set_overrides(OVERRIDE)
    try:
        start = time.monotonic()
        report, proc = lab.orchestrate()
        measured["secrets: orchestration with a VRRP password"] = time.monotonic() - start
        assert report["ok"], "\n".join(report["errors"])[-6000:]
        OUTPUTS["orchestration"] = proc.stdout + proc.stderr
        high = lab.salt_cmd(["salt", "k8s-controller-*", "state.apply"], timeout=900)
        OUTPUTS["highstate"] = high.stdout + high.stderr
        lab.set_overrides(INVALID)
        _, refused = lab.orchestrate()
        assert refused.returncode != 0, refused.stdout[-2000:]
        assert "loadbalancer:haproxy:inter" in refused.stdout + refused.stderr
        OUTPUTS["refused orchestration"] = refused.stdout + refused.stderr
        yield OUTPUTS
    finally:
        lab.set_overrides(None)
    # back to the seed's pillar (no VRRP password): converged, so test_snapshots takes it
    report, _ = lab.orchestrate()
    if report["ok"]:
        hand_over()


def test_the_vrrp_password_is_in_use(runs):
    """The password is configured for real (else the search for it proves nothing)."""
    first = next(iter(lab.controllers()))
    out = lab.cexec(first, "grep -c 'auth_pass' /etc/keepalived/keepalived.conf").stdout
    assert out.strip() == "1"
    assert len(secrets()) >= 10


def test_no_secret_in_the_runs_output(runs):
    leaks = [leak for name, text in runs.items() for leak in leaks_in(text, name)]
    assert not leaks, leaks


def test_no_secret_in_the_job_cache_or_the_master_log(runs):
    leaks = []
    jobs = lab.MASTER_DIR / "cache" / "jobs"
    files = [p for p in jobs.rglob("*") if p.is_file()]
    assert files, f"no job cache under {jobs}"
    for path in files:
        leaks += leaks_in(path.read_bytes().decode("latin-1"), str(path))
    for log in lab.LOG_DIR.glob("*.log"):
        leaks += leaks_in(log.read_text(errors="replace"), str(log))
    assert not leaks, leaks[:20]


def test_no_secret_in_the_minion_logs(runs):
    leaks = []
    for name in lab.controllers():
        text = lab.cexec(name, "cat /var/log/salt/minion", check=True).stdout
        leaks += leaks_in(text, f"{name}:/var/log/salt/minion")
    assert not leaks, leaks[:20]


def _grep_world_readable(name: str) -> list[str]:
    """Files readable by everyone on a controller, written since it booted, holding a secret."""
    patterns = "\n".join(secrets().values()) + "\n"
    # the patterns live in a root-only file for the search, and go right after
    cmd = (
        "umask 077; cat > /root/.secret-patterns; "
        "find / /run /tmp -xdev -type f -perm -o=r -cnewer /etc/machine-id -print0 2>/dev/null"
        " | xargs -0 -r grep -lF -f /root/.secret-patterns; "
        "rm -f /root/.secret-patterns"
    )
    out = lab.cexec(name, cmd, input=patterns, timeout=300).stdout
    return [f"{name}:{path}" for path in out.split()]


def test_no_secret_in_a_world_readable_file_on_the_controllers(runs):
    leaks = [leak for name in lab.controllers() for leak in _grep_world_readable(name)]
    assert not leaks, leaks


def test_no_secret_in_a_world_readable_file_of_the_lab_on_the_host(runs):
    """The master's config, cache, pillar and logs, the mirror: a secret is only in root-only
    files. The controllers' own disks (HOSTS_DIR) are searched from inside, by the test
    before (what each wrote since it booted): walking their whole trees from here, the
    binaries of every release included, took 343 s for nothing more (2026-12-06)."""
    found, leaks, searched = secrets(), [], 0
    for path in STATE_DIR.rglob("*"):
        if HOSTS_DIR in path.parents or not path.is_file() or path.is_symlink():
            continue
        dirs = [d for d in path.parents if d == STATE_DIR or STATE_DIR in d.parents]
        reachable = all(d.stat().st_mode & 0o001 for d in dirs)
        if reachable and path.stat().st_mode & 0o004:
            searched += 1
            leaks += leaks_in(path.read_bytes().decode("latin-1"), str(path), found)
    assert searched > 10, f"only {searched} world-readable files under {STATE_DIR}"
    assert not leaks, leaks[:20]


def test_secret_files_are_root_only_in_root_only_directories(runs):
    for name in lab.controllers():
        listing = lab.cexec(
            name,
            "stat -c '%a %U %n' "
            + " ".join(shlex.quote(d) for d in KEY_DIRS)
            + " "
            + " ".join(f"{d}/*-key.pem" for d in KEY_DIRS)
            + " /var/lib/kubernetes/*.kubeconfig /var/lib/kubernetes/encryption-config.yaml"
            " /etc/keepalived/keepalived.conf",
            check=True,
        ).stdout.splitlines()
        modes = {line.split()[2]: tuple(line.split()[:2]) for line in listing}
        for directory in KEY_DIRS:
            assert modes.pop(directory) == ("700", "root"), (name, directory)
        assert len(modes) >= 8, (name, modes)
        wrong = {path: mode for path, mode in modes.items() if mode != ("600", "root")}
        assert not wrong, (name, wrong)


def test_haproxy_socket_and_keepalived_scripts_are_not_for_everyone(runs):
    for name in lab.controllers():
        mode = lab.cexec(name, "stat -c '%a' /run/haproxy.sock", check=True).stdout.strip()
        assert int(mode, 8) & 0o007 == 0, (name, mode)
        conf = lab.cexec(name, "cat /etc/keepalived/keepalived.conf", check=True).stdout
        assert "enable_script_security" in conf and "script_user keepalived_script" in conf
        # the check runs as that user (keepalived refuses an unsafe script with the option on)
        user = lab.cexec(name, "id -u keepalived_script", check=True).stdout.strip()
        assert user and user != "0", (name, user)


def test_the_searches_find_a_planted_secret(runs):
    """The searches above can fail: a secret planted in a world-readable file, in the output
    and under the lab's state directory is found by each of them."""
    first = next(iter(lab.controllers()))
    label, secret = next(iter(secrets().items()))
    assert leaks_in(f"text {secret} text", "here") == [f"{label} in here"]
    lab.cexec(first, f"umask 022; echo {shlex.quote(secret)} > /tmp/planted", check=True)
    try:
        assert _grep_world_readable(first) == [f"{first}:/tmp/planted"]
    finally:
        lab.cexec(first, "rm -f /tmp/planted", check=True)
    assert _grep_world_readable(first) == []
