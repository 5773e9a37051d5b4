"""
The formula as a guest on someone else's master: one rule for state IDs,
relocatable under another root folder, and templates overridable the way
template-formula's TOFS allows.
"""

import shutil

import pytest
import yaml

from tests.support.minion import REPO, Minion, controller_grains

from .conftest import cluster_file

SALT = REPO / "salt"
FORMULA_SLS = sorted(
    str(p.relative_to(SALT).with_suffix("")).replace("/", ".").removesuffix(".init")
    for p in (SALT / "k8s_control_plane").rglob("*.sls")
)


def _seed_minion(tmp_path, pillar_root_for, file_roots=None, extra=None, pillar_files=()):
    cfg = cluster_file("hardway")
    controller = cfg["controllers"][0]
    roots = pillar_root_for("hardway", extra)
    if pillar_files:
        extra_root = tmp_path / "pillar-extra"
        extra_root.mkdir()
        entries = []
        for name, data in pillar_files:
            (extra_root / f"{name}.sls").write_text(yaml.safe_dump(data))
            entries.append(name)
        top = yaml.safe_load((roots[0] / "top.sls").read_text())
        top["base"]["*"] += entries
        (extra_root / "top.sls").write_text(yaml.safe_dump(top))
        roots = [extra_root, *roots]
    return Minion(
        controller["id"],
        tmp_path / "minion",
        roots,
        controller_grains(controller, cfg["vip"]["interface"]),
        file_roots=file_roots,
    )


def _only_includes():
    """The formula's SLS whose file is a YAML ``include:`` and nothing else."""
    found = set()
    for sls in FORMULA_SLS:
        rel = sls.replace(".", "/")
        path = SALT / f"{rel}.sls"
        path = path if path.exists() else SALT / rel / "init.sls"
        text = path.read_text(encoding="utf-8")
        if (
            not text.startswith("#!")
            and "{%" not in text
            and set(yaml.safe_load(text)) == {"include"}
        ):
            found.add(sls)
    return found


MANAGED_ETCD = {"etcd": {"managed": True, "version": "3.4.23", "release_url": "http://127.0.0.1"}}


def test_every_state_id_follows_the_one_rule(minion_for, tmp_path):
    """<sls, dots as dashes>-<module>-<function>[-<qualifier>]; init dropped as Salt drops it."""
    # With etcd managed and an admin kubeconfig present (rbac.clean has nothing
    # to delete without one), so that every SLS has states of its own to check.
    kubeconfig = tmp_path / "admin.kubeconfig"
    kubeconfig.write_text("")
    extra = dict(MANAGED_ETCD, rbac={"kubeconfig": str(kubeconfig)})
    minion = minion_for("hardway", "k8s-controller-1", extra=extra)
    assert len(FORMULA_SLS) >= 20, FORMULA_SLS
    seen = {}
    for sls in FORMULA_SLS:
        out = minion.modules["state.show_sls"](sls)
        assert isinstance(out, dict), f"{sls}: {out}"
        for sid, data in out.items():
            if sid.startswith("__") or not isinstance(data, dict):
                continue
            prefix = data["__sls__"].replace(".", "-") + "-"
            assert sid.startswith(prefix), f"{data['__sls__']}: {sid} does not start {prefix}"
            module = next(k for k in data if not k.startswith("__"))
            assert sid[len(prefix) :].startswith(f"{module}-"), f"{sid}: module {module}"
            seen[sid] = data["__sls__"]
    # Every SLS was checked: each one's own states were seen, except in the
    # SLS that only include others (init and clean of a folder).
    with_states = [sls for sls in FORMULA_SLS if sls not in _only_includes()]
    assert len(with_states) >= 15, with_states
    assert sorted(set(seen.values())) == with_states
    assert seen["k8s_control_plane-etcd-service-running"] == "k8s_control_plane.etcd"
    assert seen["k8s_control_plane-loadbalancer-haproxy-service-running"] == (
        "k8s_control_plane.loadbalancer.haproxy"
    )


def test_relocated_under_another_root(tmp_path, pillar_root_for):
    """A master that serves the formula as salt://kcp/ sets k8s_control_plane_root: kcp."""
    root = tmp_path / "roots"
    shutil.copytree(SALT / "k8s_control_plane", root / "kcp", symlinks=True)
    minion = _seed_minion(tmp_path, pillar_root_for, file_roots=[root])
    minion.opts["k8s_control_plane_root"] = "kcp"
    minion.refresh_pillar()
    out = minion.modules["state.show_sls"]("kcp")
    assert isinstance(out, dict), out
    ids = {sid for sid in out if not sid.startswith("__")}
    assert "kcp-loadbalancer-keepalived-file-managed" in ids
    assert "kcp-controlplane-services-service-running-kube-apiserver" in ids
    assert not [sid for sid in ids if not sid.startswith("kcp-")]
    keepalived = out["kcp-loadbalancer-keepalived-file-managed"]["file"]
    sources = next(item["source"] for item in keepalived if "source" in item)
    assert sources[-1] == "salt://kcp/loadbalancer/files/default/keepalived.conf.jinja"
    # Parameters come from the moved tree too.
    assert minion.modules["k8s_cluster.config"]()["loadbalancer"]["haproxy"]["inter"] == "10s"


@pytest.fixture
def override_root(tmp_path):
    """A file root, listed after ours, holding an operator's templates."""
    root = tmp_path / "site"
    custom = root / "site_templates"
    custom.mkdir(parents=True)
    (custom / "haproxy.cfg.jinja").write_text("# site haproxy for {{ vip }}\n")
    per_minion = root / "k8s_control_plane" / "loadbalancer" / "files" / "k8s-controller-1"
    per_minion.mkdir(parents=True)
    (per_minion / "keepalived.conf.jinja").write_text("# keepalived of {{ role.id }}\n")
    return root


def test_templates_overridable_per_minion_and_by_pillar(tmp_path, pillar_root_for, override_root):
    tofs = {
        "tofs": {"source_files": {"haproxy.cfg.jinja": ["salt://site_templates/haproxy.cfg.jinja"]}}
    }
    minion = _seed_minion(
        tmp_path,
        pillar_root_for,
        file_roots=[SALT, override_root],
        pillar_files=[("tofs", {"k8s_control_plane": tofs})],
    )
    mods = minion.modules
    haproxy = mods["k8s_cluster.sources"]("loadbalancer", "haproxy.cfg.jinja")
    assert haproxy[0] == "salt://site_templates/haproxy.cfg.jinja"
    keepalived = mods["k8s_cluster.sources"]("loadbalancer", "keepalived.conf.jinja")
    chosen = mods["file.source_list"](keepalived, "", "base")[0]
    assert (
        chosen
        == "salt://k8s_control_plane/loadbalancer/files/k8s-controller-1/keepalived.conf.jinja"
    )
    # Without an override the default template is the one that exists.
    unit = mods["k8s_cluster.sources"]("controlplane", "unit.service.jinja")
    assert mods["file.source_list"](unit, "", "base")[0] == (
        "salt://k8s_control_plane/controlplane/files/default/unit.service.jinja"
    )


REQUISITES = ("require", "watch", "onchanges", "require_in", "watch_in", "onchanges_in")


@pytest.mark.parametrize("extra", [None, MANAGED_ETCD], ids=["etcd-external", "etcd-managed"])
def test_every_requisite_names_a_state_that_exists(minion_for, extra):
    """Salt only finds a dangling requisite when it runs the state; find it at render time."""
    for minion_id in ("k8s-controller-1", "k8s-controller-2"):
        minion = minion_for("hardway", minion_id, extra=extra)
        for sls in ("k8s_control_plane", "k8s_control_plane.clean"):
            out = minion.modules["state.show_sls"](sls)
            assert isinstance(out, dict), out
            states = {sid: d for sid, d in out.items() if isinstance(d, dict)}
            slses = {d["__sls__"] for d in states.values()}
            for sid, data in states.items():
                for module, args in data.items():
                    if module.startswith("__"):
                        continue
                    for arg in args:
                        if not isinstance(arg, dict) or next(iter(arg)) not in REQUISITES:
                            continue
                        for req in next(iter(arg.values())):
                            kind, target = next(iter(req.items()))
                            if kind == "sls":
                                assert target in slses, f"{sid}: sls {target}"
                            else:
                                assert target in states, f"{sid}: {kind} {target}"
                                assert kind in states[target], f"{sid}: {target} is no {kind}"
