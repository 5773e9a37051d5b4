"""
States run for real where they can on this machine: the control plane's PKI
files (the pki SLS in pki:source pillar, the throwaway PKI's secrets), into a
temporary directory. test=True predicts exactly what the real
apply changes, a second apply changes nothing, keys are 0600 and no secret
appears in the state output. An invalid pillar fails at validation and
nothing else runs.
"""

import stat

import pytest

VALIDATED = "k8s_control_plane-cluster-validate-k8s_cluster-validated"


@pytest.fixture
def pki_minion(minion_for, tmp_path):
    extra = {
        "controlplane": {
            "pki_dir": str(tmp_path / "var-lib-kubernetes"),
            "config_dir": str(tmp_path / "etc-kubernetes-config"),
        }
    }
    return minion_for("hardway", "k8s-controller-1", extra=extra), tmp_path


def _changed(ret):
    return {v["__id__"] for v in ret.values() if v["changes"]}


def test_pki_predict_apply_and_idempotence(pki_minion, cluster_secrets):
    minion, tmp_path = pki_minion
    predicted = minion.modules["state.sls"]("k8s_control_plane.pki", test=True)
    assert isinstance(predicted, dict), predicted
    assert all(v["result"] is not False for v in predicted.values()), predicted
    applied = minion.modules["state.sls"]("k8s_control_plane.pki")
    assert all(v["result"] is True for v in applied.values()), applied
    assert _changed(predicted) == _changed(applied)
    # the directory, 9 secret files, the signing CA alone (ca-signer.pem), the encryption config
    assert len(_changed(applied)) == 12
    # the symlink guard of the PKI directory ran first and changed nothing
    guards = [v for v in applied.values() if "-k8s_pki-no_symlinks-" in v["__id__"]]
    assert [g["result"] for g in guards] == [True] and guards[0]["changes"] == {}
    again = minion.modules["state.sls"]("k8s_control_plane.pki")
    assert _changed(again) == set()
    assert all(v["result"] is True for v in again.values())
    pki_dir = tmp_path / "var-lib-kubernetes"
    assert stat.S_IMODE(pki_dir.stat().st_mode) == 0o700
    for name in ("ca-key.pem", "kubernetes-key.pem", "admin.kubeconfig", "encryption-config.yaml"):
        assert stat.S_IMODE((pki_dir / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((pki_dir / "ca.pem").stat().st_mode) == 0o644
    assert (pki_dir / "ca-key.pem").read_text() == cluster_secrets["hardway"]["ca-key.pem"]
    output = repr(predicted) + repr(applied)
    for name, value in cluster_secrets["hardway"].items():
        assert max(value.splitlines(), key=len) not in output, name


def test_invalid_pillar_stops_at_validation(minion_for):
    minion = minion_for(
        "hardway",
        "k8s-controller-1",
        extra={"vip": {"address": "10.9.9.9"}, "kubernetes": {"version": "1.17.0"}},
    )
    for test in (True, False):
        ret = minion.modules["state.sls"](
            "k8s_control_plane.loadbalancer,k8s_control_plane.controlplane", test=test
        )
        assert isinstance(ret, dict), ret
        ids = {v["__id__"]: v for v in ret.values()}
        # Nothing ran but the validation: the rest is absent or did not start.
        for sid, result in ids.items():
            if sid != VALIDATED:
                assert result["changes"] == {}, sid
                assert result["result"] is False, sid
                assert "requisite failed" in result["comment"] or "failhard" in result["comment"]
        comment = ids[VALIDATED]["comment"]
        assert ids[VALIDATED]["result"] is False
        assert "k8s_control_plane:vip:address: 10.9.9.9 is outside" in comment
        assert "k8s_control_plane:kubernetes:version: 1.17.0 is unsupported" in comment
