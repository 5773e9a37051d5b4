"""k8s_pki.expiry (issue 21) on real files: every certificate the plan names, the ones inside
each kubeconfig too (its CA and its client), with days left, soonest first; those within the
margin named as due; key files and missing files skipped."""

from tests.support.cluster import utils_mapping
from tests.support.pki import make_secrets

FILES = ("ca.pem", "kubernetes.pem", "kubernetes-key.pem", "admin.kubeconfig", "absent.pem")


def _expiry(modules, tmp_path, renew_before_days, source="salt"):
    secrets = make_secrets(["10.240.0.11"], "10.240.0.10")
    plan = []
    for name in FILES:
        if name in secrets:
            (tmp_path / name).write_text(secrets[name])
        plan.append({"name": name, "path": str(tmp_path / name), "kind": "pillar", "sls": "init"})
    cfg = {"pki": {"renew_before_days": renew_before_days, "source": source}}
    module = modules(
        "k8s_pki",
        __salt__={"k8s_cluster.config": lambda: cfg},
        __utils__={**utils_mapping(), "k8s_control_plane.pki_plan": lambda _cfg, _id: plan},
        __grains__={"id": "k8s-controller-1"},
    )
    return module.expiry()


def test_every_certificate_with_its_days_left(modules, tmp_path):
    found = _expiry(modules, tmp_path, 30)
    files = [c["file"] for c in found["certificates"]]
    assert sorted(files) == sorted(
        [
            f"{tmp_path}/ca.pem",
            f"{tmp_path}/kubernetes.pem",
            f"{tmp_path}/admin.kubeconfig (its CA)",
            f"{tmp_path}/admin.kubeconfig (its client)",
        ]
    )
    days = [c["days_left"] for c in found["certificates"]]
    assert days == sorted(days) and found["soonest"] == found["certificates"][0]
    assert found["due"] == [] and "soonest" in found["comment"]
    cas = {c["file"] for c in found["certificates"] if c["ca"]}
    assert cas == {f"{tmp_path}/ca.pem", f"{tmp_path}/admin.kubeconfig (its CA)"}


def test_the_ones_within_the_margin_are_due(modules, tmp_path):
    leaves = 365  # tests/support/pki.py issues leaves for a year, the CA for longer
    found = _expiry(modules, tmp_path, leaves)
    due = {f"{tmp_path}/kubernetes.pem", f"{tmp_path}/admin.kubeconfig (its client)"}
    assert set(found["due"]) == due
    assert set(found["renew"]) == due  # leaves Salt signs (pki:source salt); the CA is not due
    assert f"2 within the {leaves}-day margin" in found["comment"]


def test_with_the_pillars_certificates_nothing_is_renewed_by_the_formula(modules, tmp_path):
    found = _expiry(modules, tmp_path, 365, source="pillar")
    assert len(found["due"]) == 2 and found["renew"] == []
