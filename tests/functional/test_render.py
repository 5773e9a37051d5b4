"""
Every SLS renders for every controller, and the files a real apply would
write match the golden files (the seed's files with the documented fixes).

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 make functional`` and review the diff.
"""

import pytest

from tests.support.golden import GOLDEN, GOLDEN_FILES, golden_text, updating
from tests.support.minion import REPO
from tools.render import render_minion

from .conftest import cluster_file

SLS = [
    str(p.relative_to(REPO / "salt").with_suffix("")).replace("/", ".").removesuffix(".init")
    for p in sorted((REPO / "salt").rglob("*.sls"))
    if p.parts[-2] != "orch" and p.name != "top.sls"
]
CONTROLLERS = [(c, e["id"]) for c in ("hardway", "example") for e in cluster_file(c)["controllers"]]


@pytest.mark.parametrize(("cluster", "minion_id"), CONTROLLERS)
def test_every_sls_renders(minion_for, cluster, minion_id):
    minion = minion_for(cluster, minion_id)
    for sls in SLS:
        out = minion.modules["state.show_sls"](sls)
        assert isinstance(out, dict), f"{sls} on {minion_id}: {out}"


@pytest.mark.parametrize(("cluster", "minion_id"), CONTROLLERS)
def test_rendered_files_match_golden(minion_for, tmp_path, cluster, minion_id):
    render_minion(minion_for(cluster, minion_id), tmp_path)
    assert GOLDEN_FILES
    for name in GOLDEN_FILES:
        rendered = tmp_path / name
        golden = GOLDEN / cluster / minion_id / name
        text = rendered.read_text() if rendered.exists() else None
        if name.startswith("_api/") and not golden.exists() and (text is None or not updating()):
            assert text is None, f"{minion_id} is not the RBAC controller"
            continue
        assert text == golden_text(golden, text), f"{cluster}/{minion_id}/{name}"


def test_only_the_first_controller_applies_rbac(minion_for, tmp_path):
    for minion_id, expected in (("k8s-controller-1", 2), ("k8s-controller-2", 0)):
        low = minion_for("hardway", minion_id).modules["state.show_low_sls"](
            "k8s_control_plane.rbac"
        )
        assert len([c for c in low if c["state"] == "k8s_object"]) == expected


@pytest.mark.parametrize(("os_family", "booleans"), [("RedHat", 1), ("Debian", 0)])
def test_os_family_layer_applies(minion_for, os_family, booleans):
    low = minion_for("hardway", "k8s-controller-1", os_family=os_family).modules[
        "state.show_low_sls"
    ]("k8s_control_plane.loadbalancer.haproxy")
    selinux = [c for c in low if c["state"] == "selinux"]
    assert [c["name"] for c in selinux] == ["haproxy_connect_any"][:booleans]


def test_secrets_stay_out_of_state_data(minion_for, cluster_secrets):
    minion = minion_for("hardway", "k8s-controller-1")
    text = repr(minion.modules["state.show_lowstate"]())
    for name, value in cluster_secrets["hardway"].items():
        if name.endswith(("-key.pem", ".kubeconfig")) or name == "encryption_key":
            assert max(value.splitlines(), key=len) not in text, name
