"""
The CA rotation's rules (_utils/k8s_control_plane/ca_rotation.py) and the k8s_ca runner with the
controllers stood in (their files follow the pillar on each roll). The ext_pillar's bundles,
with Salt's x509 module, are in test_pki_rules.
"""

import datetime
import json
import os
import stat

import pytest
import salt.client
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from salt.exceptions import CommandExecutionError

from tests.support.cluster import REPO, load_file, utils_mapping, utils_package

OLD = ("OLD-CERT\n", "OLD-KEY\n")
NEW = ("NEW-CERT\n", "NEW-KEY\n")
IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]


@pytest.fixture(scope="module")
def ca():
    return utils_package().ca_rotation


def test_what_the_controllers_get_in_each_phase(ca):
    assert ca.ca_given(None, OLD, None) == OLD
    # trust: both trusted, the old one first (every single-CA reader takes the first)
    assert ca.ca_given("trust", OLD, NEW) == ("OLD-CERT\nNEW-CERT\n", "OLD-KEY\n")
    # sign: the new one first, with its key
    assert ca.ca_given("sign", OLD, NEW) == ("NEW-CERT\nOLD-CERT\n", "NEW-KEY\n")
    assert ca.ca_given("drop", OLD, NEW) == NEW  # the new CA alone, however far the swap is
    with pytest.raises(ValueError, match="unknown CA rotation phase"):
        ca.ca_given("rotate", OLD, NEW)


def test_the_steps_in_order_each_a_no_op_where_the_rotation_stands(ca):
    at = datetime.datetime(2026, 12, 6, 19, 0, tzinfo=datetime.UTC)
    trust = ca.ca_rotation_step(None, "trust", at)
    assert trust["phase"] == "trust" and trust["label"] == "20261206T190000Z"
    assert ca.ca_rotation_step(trust, "trust", at + datetime.timedelta(days=1)) == trust
    with pytest.raises(ValueError, match="sign first"):
        ca.ca_rotation_step(trust, "drop")
    sign = ca.ca_rotation_step(trust, "sign")
    assert sign == {**trust, "phase": "sign"}
    assert ca.ca_rotation_step(sign, "trust") == sign  # resumed: the same new CA
    assert ca.ca_rotation_step(sign, "drop")["phase"] == "drop"
    assert ca.ca_rotation_step(None, "drop") is None
    with pytest.raises(ValueError, match="trust first"):
        ca.ca_rotation_step(None, "sign")
    dropping = {**sign, "phase": "drop"}
    # a drop whose roll-out was not checked yet: trust and sign are no-ops, drop goes on
    for step in ("trust", "sign", "drop"):
        assert ca.ca_rotation_step(dropping, step) == dropping


def test_the_master_swaps_its_files_and_a_rerun_finishes_a_torn_swap(ca, tmp_path):
    for name, text in (
        ("ca.pem", "OLD-CERT"),
        ("ca-key.pem", "OLD-KEY"),
        ("ca-next.pem", "NEW-CERT"),
        ("ca-next-key.pem", "NEW-KEY"),
    ):
        (tmp_path / name).write_text(text)
    # a crash after the key moved: the re-run moves the certificate
    os.replace(tmp_path / "ca-next-key.pem", tmp_path / "ca-key.pem")
    assert ca.retire_ca_files(str(tmp_path), "T1") == ["the new CA is ca.pem"]
    assert (tmp_path / "ca.pem").read_text() == "NEW-CERT"
    assert (tmp_path / "ca-key.pem").read_text() == "NEW-KEY"
    (tmp_path / "ca-next.pem").write_text("NEWER-CERT")
    (tmp_path / "ca-next-key.pem").write_text("NEWER-KEY")
    done = ca.retire_ca_files(str(tmp_path), "T2")
    assert done[0] == "kept the old CA as ca-retired-T2.pem"
    assert (tmp_path / "ca-retired-T2.pem").read_text() == "NEW-CERT"
    assert stat.S_IMODE(os.lstat(tmp_path / "ca-retired-T2.pem").st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ca-key.pem",
        "ca-retired-T2.pem",
        "ca.pem",
    ]
    assert ca.retire_ca_files(str(tmp_path), "T3") == []  # nothing under way


def _certs(text):
    marker = "-----BEGIN CERTIFICATE-----"
    return [
        x509.load_pem_x509_certificate((marker + block).encode())
        for block in text.split(marker)[1:]
    ]


def _print(cert):
    return cert.fingerprint(hashes.SHA256()).hex()[:16]


class _Client:
    def __init__(self, world):
        self.world = world

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def cmd(self, tgt, fun, **_kwargs):
        assert fun == "k8s_pki.trust"
        return {m: {"ret": self.world.trust(m), "retcode": 0} for m in tgt}


class World:
    """The master's folder as the real k8s_pki ext_pillar keeps it (Salt's x509 makes the CAs),
    and controllers whose files follow what it gives on each roll."""

    def __init__(self, ext, base):
        self.ext = ext
        self.dir = base / "k8s_control_plane" / "hardway"
        self.held = {}
        self.rolls = []
        self.pending = {}
        self.snapshots = []
        self.roll()

    def given(self):
        cfg = yaml.safe_load((REPO / "pillar" / "hardway.sls").read_text())["k8s_control_plane"]
        cfg["etcd"] = {**cfg.get("etcd", {}), "managed": True}
        secrets = self.ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": cfg})
        secrets = secrets["k8s_control_plane"]["secrets"]
        return secrets["ca.pem"], secrets["ca-key.pem"]

    def roll(self, *_args, **_kwargs):
        ca_pem, _ = self.given()
        cas = _certs(ca_pem)
        self.held = {m: {"cas": cas, "signer": cas[0]} for m in IDS}
        self.rolls.append([_print(c) for c in cas])
        return {"data": {"master": {"a": {"__id__": "orch-verify", "result": True}}}}

    def trust(self, minion):
        held = self.held[minion]
        prints = [_print(c) for c in held["cas"]]
        return {
            "cas": {"/var/lib/kubernetes/ca.pem": prints, "/etc/etcd/ca.pem": prints},
            "signed_by": {"/var/lib/kubernetes/kubernetes.pem": _print(held["signer"])},
        }


@pytest.fixture
def world(tmp_path, monkeypatch, x509_functions):
    ext = load_file(REPO / "_pillar" / "k8s_pki.py", "k8s_test_pillar_k8s_pki_ca")
    ext.__salt__ = dict(x509_functions)
    ext.__utils__ = utils_mapping()
    ext.__opts__ = {"pki_dir": str(tmp_path / "master-pki")}
    world = World(ext, tmp_path / "master-pki")
    module = load_file(REPO / "_runners" / "k8s_ca.py", "k8s_test_runner_k8s_ca")
    module.__opts__ = (
        ext.__opts__
    )  # the master's: the runner finds the keys where the ext_pillar keeps them
    utils = dict(utils_mapping())
    module.__utils__ = utils

    def salt_cmd(fun, *args, **kwargs):
        if fun == "k8s_orchestration.cluster":
            return {"cluster": "hardway", "controllers": IDS, "root": "k8s_control_plane"}
        assert fun == "k8s_orchestration.pending"
        return {"pending": world.pending}

    def take(cluster, reason):
        world.snapshots.append(reason)
        return {"name": "snap"}

    module.__salt__ = {
        "salt.cmd": salt_cmd,
        "state.orchestrate": world.roll,
        "k8s_snapshot.take": take,
    }
    monkeypatch.setattr(salt.client, "get_local_client", lambda **_k: _Client(world))
    world.runner = module
    return world


def test_a_whole_ca_rotation(world):
    runner = world.runner
    old = _print(_certs((world.dir / "ca.pem").read_text())[0])
    trusted = runner.rotate("trust")
    new = _print(_certs((world.dir / "ca-next.pem").read_text())[0])
    assert trusted["trusted"] == [old, new] and trusted["signer"] == old
    assert world.snapshots == ["CA rotation"]
    signed = runner.rotate("sign")
    assert signed["trusted"] == [new, old] and signed["signer"] == new
    dropped = runner.rotate("drop")
    assert dropped["trusted"] == [new] and dropped["signer"] == new
    assert dropped["master"][0].startswith("kept the old CA as ca-retired-")
    assert world.rolls[1:] == [[old, new], [new, old], [new]]
    names = sorted(p.name for p in world.dir.iterdir())
    kept = [n for n in names if not n.startswith("ca-retired-")]
    assert [n for n in kept if n.startswith("ca")] == ["ca-key.pem", "ca.pem"]
    assert len([n for n in names if n.startswith("ca-retired-")]) == 1  # its key gone
    status = runner.status()
    assert status["phase"] is None and status["ca"] == new and status["next"] is None


def test_a_rotation_resumes_and_out_of_order_steps_change_nothing(world):
    runner = world.runner
    with pytest.raises(CommandExecutionError, match="trust first"):
        runner.rotate("sign")
    runner.rotate("trust")
    new = (world.dir / "ca-next.pem").read_text()
    runner.rotate("trust")  # a re-run keeps the new CA made before
    assert (world.dir / "ca-next.pem").read_text() == new and len(world.snapshots) == 1
    with pytest.raises(CommandExecutionError, match="sign first"):
        runner.rotate("drop")
    assert (world.dir / "ca-next.pem").exists()
    signed = runner.rotate("sign")
    # orch.rotate_ca run after the steps by hand: trust and sign are no-ops checked as signed
    again = runner.rotate("trust")
    assert again["trusted"] == signed["trusted"] and again["signer"] == signed["signer"]
    assert runner.rotate("sign")["trusted"] == signed["trusted"]


def test_a_start_is_refused_while_anything_else_is_pending(world):
    world.pending = {"k8s-controller-1": ["k8s_control_plane-etcd-file-managed: would change"]}
    with pytest.raises(CommandExecutionError, match="other changes to make first"):
        world.runner.rotate("trust")
    assert not (world.dir / "ca_rotation.json").exists() and world.snapshots == []


def test_drop_is_refused_while_a_certificate_of_the_old_ca_remains(world):
    runner = world.runner
    runner.rotate("trust")
    runner.rotate("sign")
    old = _certs((world.dir / "ca.pem").read_text())[0]
    world.held["k8s-controller-2"]["signer"] = old  # a leaf not re-issued
    with pytest.raises(CommandExecutionError, match="not every controller is where the sign step"):
        runner.rotate("drop")
    assert (world.dir / "ca-next.pem").exists()
    assert json.loads((world.dir / "ca_rotation.json").read_text())["phase"] == "sign"


def test_sign_is_refused_until_trust_reached_every_controller(world):
    runner = world.runner
    runner.rotate("trust")
    old = _certs((world.dir / "ca.pem").read_text())[0]
    world.held["k8s-controller-3"]["cas"] = [old]  # its roll-out missed this controller
    with pytest.raises(CommandExecutionError, match="where the trust step leads"):
        runner.rotate("sign")
    assert json.loads((world.dir / "ca_rotation.json").read_text())["phase"] == "trust"


def test_a_drop_whose_roll_out_failed_is_finished_by_a_rerun_not_a_new_rotation(world):
    runner = world.runner
    runner.rotate("trust")
    runner.rotate("sign")
    new = _print(_certs((world.dir / "ca-next.pem").read_text())[0])
    roll = world.runner.__salt__["state.orchestrate"]
    world.runner.__salt__["state.orchestrate"] = lambda *a, **k: {"data": {}}  # no steps
    with pytest.raises(CommandExecutionError, match=r"orch\.control_plane failed"):
        runner.rotate("drop")
    # the master's files are swapped, the rotation not ended: the pillar gives the new CA alone
    assert json.loads((world.dir / "ca_rotation.json").read_text())["phase"] == "drop"
    assert [_print(c) for c in _certs(world.given()[0])] == [new]
    world.runner.__salt__["state.orchestrate"] = roll
    # orch.rotate_ca run again: trust and sign are no-ops checked as drop, drop ends it
    assert runner.rotate("trust")["trusted"] == [new]
    assert runner.rotate("sign")["trusted"] == [new]
    assert runner.rotate("drop")["trusted"] == [new]
    assert not (world.dir / "ca_rotation.json").exists()
    assert runner.rotate("trust")["trusted"][0] == new  # only now a new rotation
    assert len(runner.rotate("trust")["trusted"]) == 2


def test_no_snapshot_means_no_ca_rotation(world):
    world.runner.__salt__["k8s_snapshot.take"] = lambda **_k: {"skipped": "etcd:managed false"}
    with pytest.raises(CommandExecutionError, match="no etcd snapshot could be taken"):
        world.runner.rotate("trust")
    assert not (world.dir / "ca_rotation.json").exists()
