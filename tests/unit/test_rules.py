"""
The rules that were written more than once before _utils/k8s_control_plane/:
version parsing, VRRP priorities, rbac:apply_from, the PKI files, the layer
files; plus TOFS sources, the formula's root, the ``__utils__`` mapping, and
what the modules log and which binaries they need.
"""

import ast
import logging

import pytest
import yaml
from salt.exceptions import CommandExecutionError

from tests.support.cluster import (
    REPO,
    cluster_config,
    cluster_dunders,
    cluster_pillar,
    set_path,
    utils_mapping,
    utils_package,
    versions_table,
)

# --------------------------------------------------------------------------
# Versions: one parser for X.Y.Z, one for minors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.18.6", (1, 18, 6)),
        ("v1.34.0", (1, 34, 0)),
        ("1.18", None),
        ("1.18.6.1", None),
        ("1.18.x", None),
        (1.18, None),
        (None, None),
        ("", None),
    ],
)
def test_parse_version(rules, text, parsed):
    assert rules.parse_version(text) == parsed


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.19", (1, 19)),
        ("v1.19", (1, 19)),
        ("1.19.4", (1, 19)),
        (1.25, (1, 25)),
        ("1", None),
        ("1.x", None),
        (None, None),
    ],
)
def test_parse_minor(rules, text, parsed):
    assert rules.parse_minor(text) == parsed


def test_the_table_parses_with_the_one_parser(rules):
    table = versions_table()
    for key in ("min", "max"):
        assert rules.parse_minor(table["supported"][key]) is not None
    for rows in (table["scheduler_config_api"], table["rbac_api"]):
        assert all(rules.parse_minor(row["since"]) for row in rows)


def test_a_malformed_version_names_itself(rules):
    with pytest.raises(CommandExecutionError, match=r"Kubernetes version '1\.x' is not X\.Y"):
        rules.api_versions(versions_table(), "1.x")


def test_a_table_without_supported_range_is_not_a_crash(rules):
    cfg = cluster_config("hardway")
    table = dict(versions_table(), supported={})
    errors = rules.validate_config(cfg, table, "k8s-controller-1")
    assert any("kubernetes:version" in e and "?.x - ?.x" in e for e in errors), errors


# --------------------------------------------------------------------------
# VRRP priorities: one rule, tolerant of bad entries
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "expected"), [("hardway", [101, 100, 99]), ("example", [150, 140, 130])]
)
def test_priorities_of_the_pillar_clusters(rules, cluster, expected):
    assert rules.priorities(cluster_config(cluster)) == expected


def test_explicit_priority_mixed_with_computed(rules):
    cfg = set_path(cluster_config("hardway"), "controllers:1:priority", 7)
    assert rules.priorities(cfg) == [101, 7, 99]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("controllers:1:priority", "150", [101, None, 99]),
        ("controllers:1:priority", True, [101, None, 99]),
        ("controllers:1", "10.240.0.12", [101, None, 99]),
        ("loadbalancer:keepalived:priority_base", "101", [None, None, None]),
        ("loadbalancer:keepalived:priority_base", None, [None, None, None]),
        ("controllers", "k8s-controller-1", []),
    ],
)
def test_priorities_tolerate_bad_entries(rules, path, value, expected):
    assert rules.priorities(set_path(cluster_config("hardway"), path, value)) == expected


@pytest.mark.parametrize("cfg", [None, [], {}, {"loadbalancer": {"keepalived": []}}])
def test_priorities_of_nothing(rules, cfg):
    assert rules.priorities(cfg) == []


def test_validation_reports_what_the_rule_cannot_price(rules):
    cfg = set_path(cluster_config("example"), "controllers:1:priority", "150")
    errors = rules.validate_config(cfg, versions_table())
    assert [e.split(": ")[0] for e in errors] == ["k8s_control_plane:controllers:1:priority"]


def test_a_role_without_a_priority_is_refused(rules):
    cfg = set_path(cluster_config("hardway"), "controllers:1:priority", "150")
    with pytest.raises(CommandExecutionError, match="controllers:1:priority"):
        rules.keepalived_role(cfg, "k8s-controller-2", {})
    # the others still have roles, and the master is the highest priced
    assert rules.keepalived_role(cfg, "k8s-controller-1", {})["state"] == "MASTER"


def test_one_priority_rule_in_the_code():
    """`grep "def priorities\\|def _priority"` over _modules, _states and _utils finds one."""
    found = []
    for folder in ("_modules", "_states", "_utils"):
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += [
                f"{path.relative_to(REPO)}:{node.name}"
                for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef) and "priorit" in node.name
            ]
    assert found == ["_utils/k8s_control_plane/facts.py:priorities"]


# --------------------------------------------------------------------------
# rbac:apply_from, the PKI files, the layer files
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ({"controllers": [{"id": "a"}, {"id": "b"}]}, "a"),
        ({"controllers": [{"id": "a"}, {"id": "b"}], "rbac": {"apply_from": "b"}}, "b"),
        ({"controllers": [{"id": "a"}], "rbac": {"apply_from": None}}, "a"),
        ({"controllers": ["a", {"id": "b"}], "rbac": "b"}, "b"),
        ({"controllers": "a"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_apply_from(rules, cfg, expected):
    assert rules.apply_from(cfg) == expected


@pytest.mark.parametrize("cluster", ["hardway", "example"])
def test_apply_from_of_a_merged_config_and_of_its_pillar_agree(rules, cluster):
    assert rules.apply_from(cluster_config(cluster)) == rules.apply_from(cluster_pillar(cluster))


def test_identity_takes_apply_from_from_the_rule(modules):
    pillar = cluster_pillar("hardway")
    pillar["rbac"] = {"apply_from": "k8s-controller-3"}
    mod = modules("k8s_cluster", **cluster_dunders(pillar, "k8s-controller-1"))
    identity = mod.identity()
    assert identity["apply_from"] == "k8s-controller-3"
    # the digests the orchestration compares with the master's (k8s_orchestration.pending)
    digest = utils_package().orchestration.pillar_digest({"k8s_control_plane": pillar})
    assert identity["pillar_digest"] == digest
    assert len(identity["modules_digest"]) == 64


def test_pki_files(rules, modules):
    files = modules("k8s_cluster").pki_files()
    assert files == rules.pki_files()
    public = [f["name"] for f in files if f["mode"] == "0644"]
    assert public == ["ca.pem", "kubernetes.pem", "service-account.pem"]
    assert {f["mode"] for f in files} == {"0644", "0600"}
    assert [f["name"] for f in files] == list(rules.SECRET_FILES)
    assert all(f["name"].endswith((".pem", ".kubeconfig")) for f in files)


def test_pki_files_are_the_ones_validation_requires(rules):
    cfg = cluster_config("hardway")
    for entry in rules.pki_files():
        cfg["secrets"].pop(entry["name"])
    errors = rules.validate_config(cfg, versions_table())
    names = ", ".join(f["name"] for f in rules.pki_files())
    assert f"k8s_control_plane:secrets: missing {names} (see docs/pki.md, 'Secrets')" in errors


def test_layer_files(rules):
    assert rules.layer_files("r", "defaults") == [
        f"r/{c}/parameters/defaults.yaml" for c in rules.COMPONENTS
    ]
    assert rules.layer_files("r", "os_family", "RedHat")[0] == (
        "r/cluster/parameters/os_family/RedHat.yaml"
    )
    assert rules.layer_files("r", "profile", "seed")[-1] == "r/rbac/parameters/profile/seed.yaml"
    assert rules.layer_files("r", "profile", "fast") == []
    assert rules.layer_files("r", "profile", None) == []


# --------------------------------------------------------------------------
# TOFS and the formula's root
# --------------------------------------------------------------------------

GRAINS = {"id": "k8s-controller-1", "os_family": "Debian", "osfinger": "Debian-12"}


def test_tofs_default_order(rules):
    assert rules.tofs_sources("k8s_control_plane", "etcd", "etcd.service.jinja", None, GRAINS) == [
        "salt://k8s_control_plane/etcd/files/k8s-controller-1/etcd.service.jinja",
        "salt://k8s_control_plane/etcd/files/Debian/etcd.service.jinja",
        "salt://k8s_control_plane/etcd/files/default/etcd.service.jinja",
    ]


def test_tofs_source_files_first_and_files_switch(rules):
    tofs = {
        "source_files": {"haproxy.cfg.jinja": ["salt://site/haproxy.cfg.jinja"]},
        "files_switch": ["osfinger", "missing", "os_family"],
    }
    assert rules.tofs_sources("f", "loadbalancer", "haproxy.cfg.jinja", tofs, GRAINS) == [
        "salt://site/haproxy.cfg.jinja",
        "salt://f/loadbalancer/files/Debian-12/haproxy.cfg.jinja",
        "salt://f/loadbalancer/files/Debian/haproxy.cfg.jinja",
        "salt://f/loadbalancer/files/default/haproxy.cfg.jinja",
    ]
    # another template is not affected by the first one's source_files
    assert rules.tofs_sources("f", "loadbalancer", "other", tofs, GRAINS)[0].endswith(
        "files/Debian-12/other"
    )


def test_tofs_empty_switch_is_the_default_only(rules):
    assert rules.tofs_sources("f", "etcd", "x", {"files_switch": []}, GRAINS) == [
        "salt://f/etcd/files/default/x"
    ]


def test_sources_reads_tofs_from_the_pillar(modules):
    pillar = cluster_pillar("hardway")
    pillar["tofs"] = {"files_switch": ["id"], "source_files": {"x.jinja": ["salt://mine/x"]}}
    dunders = cluster_dunders(pillar, "k8s-controller-2")
    assert modules("k8s_cluster", **dunders).sources("controlplane", "x.jinja") == [
        "salt://mine/x",
        "salt://k8s_control_plane/controlplane/files/k8s-controller-2/x.jinja",
        "salt://k8s_control_plane/controlplane/files/default/x.jinja",
    ]


def test_config_lists_the_master_under_the_root_only(modules):
    pillar = cluster_pillar("hardway")
    dunders = cluster_dunders(pillar, "k8s-controller-1")
    listing = dunders["__salt__"]["cp.list_master"]
    calls = []
    dunders["__salt__"]["cp.list_master"] = lambda **kw: calls.append(kw) or listing(**kw)
    mod = modules("k8s_cluster", **dunders)
    assert mod.validate()["valid"] is True
    assert calls == [{"prefix": "k8s_control_plane/"}]
    assert mod.versions() == versions_table()


def test_a_relocated_root(modules):
    """k8s_control_plane_root moves every salt:// path the module reads or names."""
    pillar = cluster_pillar("hardway")
    dunders = cluster_dunders(
        pillar, "k8s-controller-1", config_opts={"k8s_control_plane_root": "f/k"}
    )
    real_list, real_get, real_cache = (
        dunders["__salt__"]["cp.list_master"],
        dunders["__salt__"]["cp.get_file_str"],
        dunders["__salt__"]["cp.cache_files"],
    )
    dunders["__salt__"]["cp.list_master"] = lambda prefix="": [
        "f/k/" + p.removeprefix("k8s_control_plane/")
        for p in real_list(prefix="k8s_control_plane/")
        if prefix == "f/k/"
    ]
    dunders["__salt__"]["cp.get_file_str"] = lambda url: real_get(
        url.replace("salt://f/k/", "salt://k8s_control_plane/")
    )
    dunders["__salt__"]["cp.cache_files"] = lambda urls: real_cache(
        [url.replace("salt://f/k/", "salt://k8s_control_plane/") for url in urls]
    )
    mod = modules("k8s_cluster", **dunders)
    assert mod._config(with_secrets=True) == cluster_config("hardway")
    assert mod.versions() == versions_table()
    assert mod.sources("etcd", "etcd.service.jinja")[-1] == (
        "salt://f/k/etcd/files/default/etcd.service.jinja"
    )


# --------------------------------------------------------------------------
# __utils__, logging, binaries
# --------------------------------------------------------------------------


def test_utils_mapping_packs_public_functions_only():
    mapping = utils_mapping()
    assert "k8s_control_plane.priorities" in mapping
    assert "k8s_control_plane.object_diff" in mapping
    assert not [name for name in mapping if name.split(".", 1)[1].startswith("_")]
    # what a module file imports is not the module's own
    assert "k8s_control_plane.update" not in mapping


def test_every_utils_call_of_the_modules_exists():
    """Each __utils__["m.f"] in _modules/ and _states/ names a packed function."""
    mapping = utils_mapping()
    for folder in ("_modules", "_states"):
        for path in sorted((REPO / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Subscript)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "__utils__"
                    and isinstance(node.slice, ast.Constant)
                ):
                    assert node.slice.value in mapping, f"{path.name}: {node.slice.value}"


def test_validation_logs_its_verdict_and_no_secret(modules, caplog):
    pillar = cluster_pillar("hardway")
    pillar["vip"]["address"] = "10.240.0.11"
    mod = modules("k8s_cluster", **cluster_dunders(pillar, "k8s-controller-1"))
    with caplog.at_level(logging.DEBUG):
        report = mod.validate()
    assert report["valid"] is False
    verdicts = [r.getMessage() for r in caplog.records if "validation" in r.getMessage()]
    assert verdicts == [
        f"k8s_cluster: validation of k8s-controller-1: invalid after pillar, "
        f"{len(report['errors'])} error(s)"
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in pillar["secrets"].values():
        assert value not in logged


def test_roles_and_flags_are_logged(modules, caplog):
    cfg = cluster_config("hardway")
    salt = {
        "k8s_cluster.config": lambda: cfg,
        "k8s_cluster.controller": lambda: cfg["controllers"][0],
        "k8s_cluster.versions": versions_table,
    }
    grains = {"id": "k8s-controller-2", "ip4_interfaces": {}}
    with caplog.at_level(logging.DEBUG):
        modules("k8s_keepalived", __salt__=salt, __grains__=grains).role()
        modules("k8s_flags", __salt__=salt).flags("kube-scheduler")
    messages = [r.getMessage() for r in caplog.records]
    assert "k8s_keepalived: k8s-controller-2 is BACKUP, priority 100, on enp0s8" in messages
    assert "k8s_flags: kube-scheduler at 1.18.6: 2 flags (0 from extra_args)" in messages


def test_k8s_health_needs_ip(modules, monkeypatch):
    mod = modules("k8s_health")
    monkeypatch.setattr(mod.salt.utils.path, "which", lambda name: None)
    loaded, reason = mod.__virtual__()
    assert loaded is False
    assert "ip" in reason
    monkeypatch.setattr(mod.salt.utils.path, "which", lambda name: f"/usr/sbin/{name}")
    assert mod.__virtual__() == "k8s_health"


@pytest.mark.parametrize(
    "name", ["k8s_cluster", "k8s_keepalived", "k8s_flags", "k8s_rbac", "k8s_api"]
)
def test_modules_that_shell_out_to_nothing_always_load(modules, name):
    assert modules(name).__virtual__() == name


@pytest.mark.parametrize(
    ("name", "needs"), [("k8s_object", "k8s_api.get"), ("k8s_health", "k8s_health.wait_ready")]
)
def test_states_need_their_execution_module(state_modules, name, needs):
    assert state_modules(name).__virtual__()[0] is False
    assert state_modules(name, __salt__={needs: None}).__virtual__() == name


# --------------------------------------------------------------------------
# The schema of every key
# --------------------------------------------------------------------------

# Keys only the pillar sets (no default in a parameter file). The entries of
# controllers ({id, address, priority}) and of secrets (SECRET_KEYS) have
# rules of their own. A list's entries are under <key>:*.
PILLAR_ONLY = {
    "tofs",
    "rbac:cluster_role:rules:*:resourceNames",
    "rbac:cluster_role:rules:*:nonResourceURLs",
}


def _parameter_keys(rules):
    """Every key path the parameter files set, down to the schema's leaves."""
    found = set()

    def walk(node, spec, path):
        for key, value in node.items():
            where = f"{path}{key}"
            found.add(where)
            if isinstance(value, dict) and isinstance(spec.get(key), dict):
                walk(value, spec[key], f"{where}:")
            elif isinstance(value, list) and isinstance(spec.get(key), list):
                for entry in value:
                    walk(entry, spec[key][0], f"{where}:*:")

    for path in sorted((REPO / "salt" / "k8s_control_plane").glob("*/parameters/**/*.yaml")):
        if path.name == "versions.yaml":
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        walk(doc["k8s_control_plane"], rules.schema.SCHEMA, "")
    return found


def _schema_keys(spec, path=""):
    for key, value in spec.items():
        yield f"{path}{key}"
        if isinstance(value, dict):
            yield from _schema_keys(value, f"{path}{key}:")
        elif isinstance(value, list):
            yield from _schema_keys(value[0], f"{path}{key}:*:")


def test_the_schema_has_every_parameter_and_nothing_else(rules):
    parameters, schema = _parameter_keys(rules), set(_schema_keys(rules.schema.SCHEMA))
    assert parameters - schema == set(), "parameters without a check in SCHEMA"
    assert schema - parameters == PILLAR_ONLY, "checks of keys no parameter file sets"


@pytest.mark.parametrize("value", ["2s", "500ms", "100us", "1m", "1h", "1d", "35", 500])
def test_haproxy_durations(rules, value):
    assert rules.schema._duration(value) is None


@pytest.mark.parametrize("value", ["2 seconds", "2 s", "2S", "0", "0s", "1.5s", "-1s", True, None])
def test_not_haproxy_durations(rules, value):
    assert "valid: a haproxy duration > 0" in rules.schema._duration(value)


@pytest.mark.parametrize(("value", "ok"), [(1, True), (250, True), (0, False), ("2", False)])
def test_counts(rules, value, ok):
    assert (rules.schema._count(value) is None) is ok


def test_a_leading_zero_is_no_version(rules):
    assert rules.parse_version("1.18.06") is None
    assert rules.parse_version("01.18.6") is None
    assert rules.parse_version("1.0.0") == (1, 0, 0)


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ("loadbalncer", "loadbalncer", "did you mean loadbalancer? valid: cluster, "),
        ("vip:intreface", "vip:intreface", "did you mean interface? valid: address, "),
        ("loadbalancer:keepalived:advert_intt", "x", "did you mean advert_int? valid: pkg, "),
        ("kubernetes:servce_cidr", "x", "did you mean service_cidr?"),
        ("rbac:cluster_role:rulez", "x", "did you mean rules? valid: name, annotations"),
        ("etcd:zzz", "x", "unknown key; valid: managed, servers"),
    ],
)
def test_unknown_keys_at_any_level(rules, path, key, expected):
    cfg = set_path(cluster_config("hardway"), path, key)
    errors = rules.validate_config(cfg, versions_table())
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"k8s_control_plane:{path}: unknown key; ")
    assert expected in errors[0]
    assert f"'{key}'" not in errors[0]  # the value is not repeated


def test_redact(rules):
    cfg = {
        "secrets": {"ca.pem": "PEM", "vrrp_auth_pass": "pw"},
        "loadbalancer": {"keepalived": {"auth_pass": "pw", "check_weight": 2}},
        "x": [{"password": "pw", "user": "u"}],
        "empty_password": None,
    }
    assert rules.redact(cfg) == {
        "secrets": {"ca.pem": "<secret>", "vrrp_auth_pass": "<secret>"},
        "loadbalancer": {"keepalived": {"auth_pass": "<secret>", "check_weight": 2}},
        "x": [{"password": "<secret>", "user": "u"}],
        "empty_password": None,
    }
    assert rules.redact({"secrets": "PEM"}) == {"secrets": "<secret>"}
