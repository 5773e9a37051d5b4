"""
The components' flags per Kubernetes version (the utils' build_flags and
flag_context; the seed's v1.18.6 units are the reference), the API versions
per version (api_versions), and k8s_flags.flags/apis over them.
"""

import pathlib
import re

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.cluster import cluster_config, set_path, versions_table

SEED = (
    pathlib.Path(__file__).parents[1]
    / "fixtures"
    / "seed-08-bootstrapping-kubernetes-controllers.md"
)
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
SEED_ADDRESSES = {f"k8s-controller-{i}": f"10.240.0.1{i}" for i in (1, 2, 3)}
# The one flag of every release that is not the seed's (docs/differences.md 15): the
# controller-manager signs with the signing CA alone, ca.pem being a bundle in a CA rotation.
SIGNER_FLAG = {
    "--cluster-signing-cert-file=/var/lib/kubernetes/ca.pem": (
        "--cluster-signing-cert-file=/var/lib/kubernetes/ca-signer.pem"
    )
}


def seed_exec_start(internal_ip):
    """{component: [flags]} from the seed's three ExecStart blocks, ${INTERNAL_IP} filled in,
    with SIGNER_FLAG's difference."""
    found = {}
    lines = iter(SEED.read_text(encoding="utf-8").splitlines())
    for line in lines:
        match = re.match(r"^ExecStart=/usr/local/bin/(kube-[a-z-]+) \\\\$", line)
        if not match:
            continue
        flags = []
        for flag_line in lines:
            text = flag_line.strip()
            continued = text.endswith("\\\\")
            flags.append(text.removesuffix("\\\\").strip())
            if not continued:
                break
        flags = [SIGNER_FLAG.get(f, f) for f in flags]
        found[match[1]] = [f.replace("${INTERNAL_IP}", internal_ip) for f in flags]
    return found


@pytest.fixture(scope="module")
def table():
    return versions_table()


@pytest.fixture
def seed_cfg():
    return cluster_config("hardway")


def test_seed_is_parsed():
    seed = seed_exec_start("10.240.0.11")
    assert sorted(seed) == sorted(COMPONENTS)
    assert [len(seed[c]) for c in COMPONENTS] == [28, 12, 2]
    assert all(f.startswith("--") and "=" in f for flags in seed.values() for f in flags)
    assert seed["kube-apiserver"][0] == "--advertise-address=10.240.0.11"
    text = SEED.read_text(encoding="utf-8")
    assert all(
        f in text and ours in seed["kube-controller-manager"] for f, ours in SIGNER_FLAG.items()
    )
    assert seed["kube-scheduler"] == [
        "--config=/etc/kubernetes/config/kube-scheduler.yaml",
        "--v=2",
    ]


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("minion_id", sorted(SEED_ADDRESSES))
def test_v1_18_6_flags_equal_the_seed(table, rules, seed_cfg, component, minion_id):
    address = SEED_ADDRESSES[minion_id]
    ctx = rules.flag_context(seed_cfg, address)
    extra = (seed_cfg["controlplane"]["extra_args"] or {}).get(component)
    flags = rules.build_flags(table, component, "1.18.6", ctx, extra)
    assert flags == seed_exec_start(address)[component]


def test_etcd_servers_default_to_the_controllers(table, rules, seed_cfg):
    """Without etcd:servers, one https://<address>:2379 per controller (the seed's list)."""
    set_path(seed_cfg, "etcd:servers", [])
    ctx = rules.flag_context(seed_cfg, "10.240.0.12")
    flags = rules.build_flags(table, "kube-apiserver", "1.18.6", ctx)
    assert flags == seed_exec_start("10.240.0.12")["kube-apiserver"]


def _flags(rules, table, cfg, component, version, extra=None):
    ctx = rules.flag_context(cfg, "10.240.0.11")
    return rules.build_flags(table, component, version, ctx, extra)


@pytest.mark.parametrize("version", ["1.18.0", "1.18.20", "v1.18.6"])
def test_1_18_keeps_kubelet_https_and_address(table, rules, seed_cfg, version):
    apiserver = _flags(rules, table, seed_cfg, "kube-apiserver", version)
    manager = _flags(rules, table, seed_cfg, "kube-controller-manager", version)
    assert "--kubelet-https=true" in apiserver
    assert manager[0] == "--address=0.0.0.0"
    assert not any(f.startswith("--bind-address") for f in manager)


@pytest.mark.parametrize("version", ["1.19.0", "1.19.16", "1.20.15", "1.22.0", "1.34.2", "1.37.1"])
def test_1_19_drops_kubelet_https_and_binds_the_controller_manager(table, rules, seed_cfg, version):
    seed = seed_exec_start("10.240.0.11")
    apiserver = _flags(rules, table, seed_cfg, "kube-apiserver", version)
    manager = _flags(rules, table, seed_cfg, "kube-controller-manager", version)
    assert not any(f.startswith("--kubelet-https") for f in apiserver)
    assert manager == ["--bind-address=0.0.0.0", *seed["kube-controller-manager"][1:]]
    assert _flags(rules, table, seed_cfg, "kube-scheduler", version) == seed["kube-scheduler"]


def test_1_19_apiserver_is_the_seed_without_kubelet_https(table, rules, seed_cfg):
    seed = seed_exec_start("10.240.0.11")["kube-apiserver"]
    expected = [f for f in seed if f != "--kubelet-https=true"]
    assert _flags(rules, table, seed_cfg, "kube-apiserver", "1.19.16") == expected


@pytest.mark.parametrize("version", ["1.20.0", "1.21.14", "1.23.17", "1.25.16", "1.34.2", "1.37.1"])
def test_1_20_adds_service_account_issuer_and_signing_key(table, rules, seed_cfg, version):
    seed = seed_exec_start("10.240.0.11")["kube-apiserver"]
    expected = []
    for flag in seed:
        if flag == "--kubelet-https=true":
            continue
        if flag == "--apiserver-count=3" and int(version.split(".")[1]) >= 24:
            continue  # deprecated in 1.24 (#108062), a no-op with the lease reconciler
        if flag.startswith("--service-account-key-file="):
            expected.append("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            expected.append(flag)
            expected.append(
                "--service-account-signing-key-file=/var/lib/kubernetes/service-account-key.pem"
            )
            continue
        if flag.startswith("--tls-cert-file=") and int(version.split(".")[1]) >= 27:
            # not the seed's: watches end when the apiserver stops (docs/differences.md 14)
            expected.append("--shutdown-watch-termination-grace-period=5s")
        expected.append(flag)
    assert _flags(rules, table, seed_cfg, "kube-apiserver", version) == expected


@pytest.mark.parametrize("version", ["1.18.6", "1.19.16"])
def test_before_1_20_no_service_account_issuer(table, rules, seed_cfg, version):
    flags = _flags(rules, table, seed_cfg, "kube-apiserver", version)
    assert not any(f.startswith("--service-account-issuer") for f in flags)
    assert not any(f.startswith("--service-account-signing-key-file") for f in flags)


def test_context_values_reach_the_flags(table, rules):
    cfg = cluster_config("example")
    set_path(cfg, "controlplane:pki_dir", "/srv/pki")
    set_path(cfg, "controlplane:verbosity", 4)
    flags = _flags(rules, table, cfg, "kube-apiserver", "1.23.17")
    assert "--apiserver-count=3" in flags
    assert "--apiserver-count=3" not in _flags(rules, table, cfg, "kube-apiserver", "1.24.0")
    flags = _flags(rules, table, cfg, "kube-apiserver", "1.34.2")
    assert "--service-cluster-ip-range=10.96.0.0/16" in flags
    assert "--client-ca-file=/srv/pki/ca.pem" in flags
    assert "--v=4" in flags
    assert (
        "--etcd-servers=https://192.168.50.11:2379,https://192.168.50.12:2379,"
        "https://192.168.50.13:2379"
    ) in flags
    manager = _flags(rules, table, cfg, "kube-controller-manager", "1.34.2")
    assert "--cluster-cidr=10.244.0.0/16" in manager


# --------------------------------------------------------------------------
# extra_args
# --------------------------------------------------------------------------


def test_extra_args_replace_in_place(table, rules, seed_cfg):
    seed = seed_exec_start("10.240.0.11")["kube-apiserver"]
    flags = _flags(
        rules,
        table,
        seed_cfg,
        "kube-apiserver",
        "1.18.6",
        {"event-ttl": "2h", "--v": 4, "allow-privileged": False},
    )
    expected = [
        {
            "--event-ttl=1h": "--event-ttl=2h",
            "--v=2": "--v=4",
            "--allow-privileged=true": "--allow-privileged=false",
        }.get(f, f)
        for f in seed
    ]
    assert flags == expected
    assert flags.index("--event-ttl=2h") == seed.index("--event-ttl=1h")


def test_extra_args_append(table, rules, seed_cfg):
    seed = seed_exec_start("10.240.0.11")["kube-apiserver"]
    extra = {"--audit-policy-file": "/etc/kubernetes/audit.yaml", "profiling": False}
    flags = _flags(rules, table, seed_cfg, "kube-apiserver", "1.18.6", extra)
    assert flags == [*seed, "--audit-policy-file=/etc/kubernetes/audit.yaml", "--profiling=false"]


def test_extra_args_remove_with_none(table, rules, seed_cfg):
    seed = seed_exec_start("10.240.0.11")["kube-apiserver"]
    extra = {"kubelet-https": None, "--runtime-config": None, "not-set": None}
    flags = _flags(rules, table, seed_cfg, "kube-apiserver", "1.18.6", extra)
    assert flags == [
        f for f in seed if f not in ("--kubelet-https=true", "--runtime-config=api/all=true")
    ]


def test_extra_args_combined(table, rules, seed_cfg):
    extra = {"address": None, "bind-address": "127.0.0.1", "leader-elect": True}
    flags = _flags(rules, table, seed_cfg, "kube-controller-manager", "1.18.6", extra)
    seed = seed_exec_start("10.240.0.11")["kube-controller-manager"]
    assert flags == [*seed[1:], "--bind-address=127.0.0.1"]


def test_flags_reads_extra_args_from_the_config(modules, table, seed_cfg):
    set_path(seed_cfg, "controlplane:extra_args", {"kube-scheduler": {"v": 5}})
    mod = modules(
        "k8s_flags",
        __salt__={
            "k8s_cluster.config": lambda: seed_cfg,
            "k8s_cluster.controller": lambda: {"id": "k8s-controller-2", "address": "10.240.0.12"},
            "k8s_cluster.versions": lambda: table,
        },
    )
    assert mod.flags("kube-scheduler") == [
        "--config=/etc/kubernetes/config/kube-scheduler.yaml",
        "--v=5",
    ]
    assert mod.flags("kube-apiserver") == seed_exec_start("10.240.0.12")["kube-apiserver"]
    assert (
        mod.flags("kube-apiserver", address="10.240.0.13")[0] == "--advertise-address=10.240.0.13"
    )
    assert mod.apis() == {
        "scheduler_config": "kubescheduler.config.k8s.io/v1alpha1",
        "rbac": "rbac.authorization.k8s.io/v1",
        "encryption_config": "apiserver.config.k8s.io/v1",
        "encryption_config_kind": "EncryptionConfiguration",
        "kubelet_api_resources": [
            "nodes/proxy",
            "nodes/stats",
            "nodes/log",
            "nodes/spec",
            "nodes/metrics",
        ],
    }


def test_unknown_component(table, rules, seed_cfg):
    with pytest.raises(CommandExecutionError, match=r"kube-proxy.*kube-apiserver"):
        _flags(rules, table, seed_cfg, "kube-proxy", "1.18.6")


# --------------------------------------------------------------------------
# API versions
# --------------------------------------------------------------------------

SCHEDULER = "kubescheduler.config.k8s.io/"


@pytest.mark.parametrize(
    ("version", "scheduler_api"),
    [
        ("1.18.6", "v1alpha1"),
        ("1.19.0", "v1beta1"),
        ("1.20.15", "v1beta1"),
        ("1.21.14", "v1beta1"),
        ("1.22.0", "v1beta2"),
        ("1.22.17", "v1beta2"),
        ("1.23.0", "v1beta3"),
        ("1.24.17", "v1beta3"),
        ("1.25.0", "v1"),
        ("1.27.16", "v1"),
        ("1.28.15", "v1"),
        ("1.29.0", "v1"),
        ("1.30.4", "v1"),
        ("1.34.2", "v1"),
        ("1.37.1", "v1"),
    ],
)
def test_api_versions(table, rules, version, scheduler_api):
    assert rules.api_versions(table, version) == {
        "scheduler_config": SCHEDULER + scheduler_api,
        "rbac": "rbac.authorization.k8s.io/v1",
    }


def test_scheduler_api_at_1_18_is_the_seeds(table, rules):
    text = SEED.read_text(encoding="utf-8")
    seed_api = re.search(r"^apiVersion: (kubescheduler\S+)$", text, re.M)[1]
    assert rules.api_versions(table, "1.18.6")["scheduler_config"] == seed_api


def test_api_versions_below_the_table(table, rules):
    with pytest.raises(
        CommandExecutionError, match=r"no scheduler config API for Kubernetes 1\.17"
    ):
        rules.api_versions(table, "1.17.0")


# --------------------------------------------------------------------------
# The encryption config and the kubelet API subresources per version
# --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.18.6", "1.24.17", "1.29.0", "1.33.1", "1.37.1"])
def test_encryption_config_is_the_documented_form(modules, table, seed_cfg, version):
    set_path(seed_cfg, "kubernetes:version", version)
    mod = modules(
        "k8s_flags",
        __salt__={"k8s_cluster.config": lambda: seed_cfg, "k8s_cluster.versions": lambda: table},
    )
    apis = mod.apis()
    assert (apis["encryption_config"], apis["encryption_config_kind"]) == (
        "apiserver.config.k8s.io/v1",
        "EncryptionConfiguration",
    )


def test_row_at_picks_the_newest_row_not_above_the_minor(rules, table):
    rows = table["kubelet_api_resources"]
    assert rules.row_at(rows, (1, 17)) is None
    assert rules.row_at(rows, (1, 18))["since"] == "1.18"
    assert rules.row_at(rows, (1, 32))["since"] == "1.18"
    assert rules.row_at(rows, (1, 33))["since"] == "1.33"
    assert rules.row_at(list(reversed(rows)), (1, 37))["since"] == "1.33"


SEED_RESOURCES = ["nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"]
FINE_GRAINED = ["nodes/pods", "nodes/healthz", "nodes/configz"]


@pytest.mark.parametrize(
    ("version", "resources"),
    [
        ("1.18.6", SEED_RESOURCES),
        ("1.32.9", SEED_RESOURCES),
        ("1.33.0", SEED_RESOURCES + FINE_GRAINED),
        ("1.37.1", SEED_RESOURCES + FINE_GRAINED),
    ],
)
def test_kubelet_rbac_rules_per_version(modules, table, seed_cfg, version, resources):
    set_path(seed_cfg, "kubernetes:version", version)
    salt = {"k8s_cluster.config": lambda: seed_cfg, "k8s_cluster.versions": lambda: table}
    salt["k8s_flags.apis"] = modules("k8s_flags", __salt__=salt).apis
    role, binding = modules("k8s_rbac", __salt__=salt).manifests()
    assert role["rules"] == [{"apiGroups": [""], "resources": resources, "verbs": ["*"]}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert seed_cfg["rbac"]["cluster_role"]["rules"][0]["resources"] == SEED_RESOURCES


def test_kubelet_rules_keep_covering_rules_and_add_a_rule_when_none_fits(objects):
    covering = [{"apiGroups": [""], "resources": ["nodes/proxy", *FINE_GRAINED], "verbs": ["*"]}]
    assert objects.kubelet_rules(covering, FINE_GRAINED) == covering
    narrow = [{"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["get"]}]
    assert objects.kubelet_rules(narrow, ["nodes/stats"]) == [
        *narrow,
        {"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["*"]},
    ]
    assert objects.kubelet_rules([], []) == []
