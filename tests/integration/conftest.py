"""
A real salt-master and the seed's three controllers as salt-minions
(pytest-salt-factories), all on this machine. Minions share one filesystem,
so these tests run states in test mode only; the lab runs them for real.

Binaries are served by a local HTTP server laid out like the release
location, so test mode's checksum look-ups never leave the machine.
"""

import functools
import hashlib
import http.server
import threading

import pytest
import yaml

from tests.support.minion import REPO, controller_grains

CLUSTER = yaml.safe_load((REPO / "pillar" / "hardway.sls").read_text())["k8s_control_plane"]
VERSION = CLUSTER["kubernetes"]["version"]
FOREIGN_FORMULAS = REPO / "tests" / "integration" / "foreign_formulas"


@pytest.fixture(scope="session")
def salt_factories_config():
    # Short root: unix socket paths are limited to about 107 characters.
    return {"root_dir": "/tmp/k8s-salt-it", "slow_stop": False}


@pytest.fixture(scope="session")
def release_mirror(tmp_path_factory):
    """http://127.0.0.1:PORT serving v<version>/bin/linux/amd64/<binary>[.sha256]."""
    root = tmp_path_factory.mktemp("mirror")
    bindir = root / f"v{VERSION}" / "bin" / "linux" / "amd64"
    bindir.mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        data = f"#!/bin/sh\necho {name} placeholder\n".encode()
        (bindir / name).write_bytes(data)
        (bindir / f"{name}.sha256").write_text(hashlib.sha256(data).hexdigest())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _top(entries):
    lines = "".join(f"    - {e}\n" for e in entries)
    return f"base:\n  'k8s-controller-*':\n{lines}"


@pytest.fixture(scope="session")
def master(salt_factories, secrets_root, release_mirror):
    factory = salt_factories.salt_master_daemon(
        "k8s-master",
        overrides={
            # A second root serves unrelated formulas named etcd and haproxy.
            "file_roots": {"base": [str(REPO / "salt"), str(FOREIGN_FORMULAS)]},
            "pillar_roots": {"base": [str(REPO / "pillar"), str(secrets_root)]},
            "pillar_mask_output": False,
        },
    )
    # The factory's own pillar root comes first: its top.sls adds a local
    # release mirror to the seed's unchanged cluster file.
    factory.pillar_tree.base.write_path.joinpath("mirror.sls").write_text(
        yaml.safe_dump({"k8s_control_plane": {"kubernetes": {"release_url": release_mirror}}})
    )
    factory.pillar_tree.base.write_path.joinpath("top.sls").write_text(
        _top(["hardway", "hardway-secrets", "mirror"])
    )
    with factory.started():
        yield factory


@pytest.fixture(scope="session")
def minions(master):
    factories = []
    for controller in CLUSTER["controllers"]:
        grains = controller_grains(controller, CLUSTER["vip"]["interface"])
        factories.append(master.salt_minion_daemon(controller["id"], overrides={"grains": grains}))
    threads = [threading.Thread(target=f.start) for f in factories]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(f.is_running() for f in factories)
    yield factories
    for factory in factories:
        factory.terminate()


@pytest.fixture(scope="session")
def salt_cli(master, minions):
    return master.salt_cli(timeout=120)


@pytest.fixture(scope="session")
def salt_run_cli(master, minions):
    return master.salt_run_cli(timeout=300)


@pytest.fixture
def pillar_override(master, salt_cli):
    """Write an extra pillar file for one test, refresh, and restore after."""
    written = []

    def apply(data):
        path = master.pillar_tree.base.write_path / "broken.sls"
        path.write_text(yaml.safe_dump({"k8s_control_plane": data}))
        master.pillar_tree.base.write_path.joinpath("top.sls").write_text(
            _top(["hardway", "hardway-secrets", "mirror", "broken"])
        )
        written.append(path)
        salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="k8s-controller-*")

    yield apply
    for path in written:
        path.unlink()
    master.pillar_tree.base.write_path.joinpath("top.sls").write_text(
        _top(["hardway", "hardway-secrets", "mirror"])
    )
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="k8s-controller-*")
