"""
The rendered configs pass the real tools' checks: ``keepalived -t`` inside a
network namespace that has the controller's interface and address, and
``haproxy -c``. Both are the same commands the states run as check_cmd.
"""

import os
import shutil
import subprocess
import uuid

import pytest

from tools.render import render_minion

from .conftest import cluster_file

CONTROLLERS = [(c, e["id"]) for c in ("hardway", "example") for e in cluster_file(c)["controllers"]]
KEEPALIVED_CHECK = ["sh", "-c", 'trap "" TERM; exec keepalived -t -f "$0"']


def _netns_with(interface, address):
    name = f"k8s-func-{uuid.uuid4().hex[:8]}"
    run = lambda *cmd: subprocess.run(cmd, check=True, capture_output=True)  # noqa: E731
    run("ip", "netns", "add", name)
    run("ip", "-n", name, "link", "add", interface, "type", "veth", "peer", "name", "peer0")
    run("ip", "-n", name, "link", "set", interface, "up")
    run("ip", "-n", name, "addr", "add", f"{address}/24", "dev", interface)
    return name


@pytest.fixture(scope="module")
def script_user():
    """keepalived -t checks that the script user exists."""
    if subprocess.run(["id", "keepalived_script"], capture_output=True).returncode != 0:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "keepalived_script",
            ],
            check=True,
        )


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("keepalived"), reason="needs root and keepalived"
)
@pytest.mark.parametrize(("cluster", "minion_id"), CONTROLLERS)
def test_keepalived_accepts_the_config(minion_for, tmp_path, script_user, cluster, minion_id):
    cfg = cluster_file(cluster)
    address = next(c["address"] for c in cfg["controllers"] if c["id"] == minion_id)
    render_minion(minion_for(cluster, minion_id), tmp_path)
    netns = _netns_with(cfg["vip"].get("interface") or "eth0", address)
    try:
        check = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                *KEEPALIVED_CHECK,
                str(tmp_path / "etc/keepalived/keepalived.conf"),
            ],
            capture_output=True,
            text=True,
        )
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
    # 0: clean; 5 would be a warning (e.g. a truncated auth_pass), 6 an error.
    assert check.returncode == 0, check.stderr


def test_keepalived_check_catches_errors(tmp_path, script_user):
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance X {\n  state SLAVE\n  nonsense_keyword 1\n}\n")
    check = subprocess.run([*KEEPALIVED_CHECK, str(bad)], capture_output=True, text=True)
    assert check.returncode != 0


@pytest.mark.skipif(not shutil.which("haproxy"), reason="needs haproxy")
@pytest.mark.parametrize(("cluster", "minion_id"), CONTROLLERS)
def test_haproxy_accepts_the_config(minion_for, tmp_path, cluster, minion_id):
    render_minion(minion_for(cluster, minion_id), tmp_path)
    conf = tmp_path / "etc/haproxy/haproxy.cfg"
    # The CA is placed before the config on a real host; point at the rendered one.
    text = conf.read_text().replace(
        "/etc/haproxy/kubernetes-ca.pem", str(tmp_path / "etc/haproxy/kubernetes-ca.pem")
    )
    conf.write_text(text)
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
