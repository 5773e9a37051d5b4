"""
The layered configuration (k8s_cluster.config, the utils' merge_layers) and
``validate_config`` (_utils/k8s_control_plane/), one case per rule.

The merged configurations are built as ``k8s_cluster.config`` builds them
(tests/support/cluster.py): the repository's parameter files under the
cluster's pillar file, plus a throwaway PKI as the secrets.
"""

import base64
import copy

import pytest

from tests.support.cluster import (
    DELETE,
    PREFIX,
    cluster_config,
    cluster_dunders,
    cluster_pillar,
    cluster_secrets,
    errors_for,
    parameter_layers,
    set_path,
    versions_table,
)

# The clusters of pillar/ and the profile each one takes (hardway sets
# `profile: seed`; example sets none, so the default `tuned` applies).
CLUSTERS = {"hardway": "seed", "example": "tuned"}


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def secrets():
    """Generate every cluster's PKI once for the session."""
    return {cluster: cluster_secrets(cluster) for cluster in CLUSTERS}


@pytest.fixture
def configs(secrets):
    return {cluster: cluster_config(cluster) for cluster in CLUSTERS}


@pytest.fixture(scope="session")
def table():
    return versions_table()


# --------------------------------------------------------------------------
# The layering
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("cluster", "profile"), sorted(CLUSTERS.items()))
def test_profile_of_each_cluster(rules, cluster, profile):
    defaults, _, _ = parameter_layers("Debian", None)
    assert rules.profile_of(cluster_pillar(cluster), defaults) == profile


def test_layering_order(configs):
    seed, example = configs["hardway"], configs["example"]
    ka, haproxy = seed["loadbalancer"]["keepalived"], seed["loadbalancer"]["haproxy"]
    # profile/seed.yaml over defaults.yaml
    assert (ka["check_interval"], ka["check_weight"], ka["check_fall"]) == (5, 2, None)
    assert (haproxy["check"], haproxy["inter"], haproxy["verify_backend_tls"]) == (
        "tls",
        "10s",
        False,
    )
    # pillar over defaults; keys the pillar leaves out keep their defaults
    assert seed["vip"] == {
        "address": "10.240.0.10",
        "hostname": "k8s-controller",
        "interface": "enp0s8",
        "subnet": None,
        "virtual_router_id": 51,
    }
    assert seed["kubernetes"]["release_url"] == "https://dl.k8s.io/release"
    assert seed["controlplane"]["pki_dir"] == "/var/lib/kubernetes"
    # lists are replaced, never concatenated
    assert seed["etcd"]["servers"] == [f"https://10.240.0.1{i}:2379" for i in (1, 2, 3)]
    assert [c["id"] for c in seed["controllers"]] == [f"k8s-controller-{i}" for i in (1, 2, 3)]
    # the tuned profile keeps the defaults
    ka = example["loadbalancer"]["keepalived"]
    assert (ka["check_interval"], ka["check_weight"], ka["check_fall"]) == (1, 0, 2)
    assert example["loadbalancer"]["haproxy"]["check"] == "readyz"
    assert example["vip"]["interface"] is None
    assert example["vip"]["hostname"] is None


@pytest.mark.parametrize(
    ("os_family", "booleans"), [("Debian", []), ("RedHat", ["haproxy_connect_any"])]
)
def test_os_family_layer(os_family, booleans):
    cfg = cluster_config("hardway", os_family=os_family)
    assert cfg["loadbalancer"]["haproxy"]["selinux_booleans"] == booleans


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_config_reads_the_salt_tree_like_the_fixture(modules, configs, cluster):
    """k8s_cluster.config (cp.list_master/cp.get_file_str mocked) == the fixture's merge."""
    pillar = cluster_pillar(cluster)
    mod = modules("k8s_cluster", **cluster_dunders(pillar, pillar["controllers"][0]["id"]))
    assert mod._config(with_secrets=True) == configs[cluster]
    assert mod.validate() == {"valid": True, "errors": []}


def test_merge_layers_does_not_mutate_its_inputs(rules):
    defaults, os_layers, profile_layers = parameter_layers("Debian", "tuned")
    before = copy.deepcopy((defaults, os_layers, profile_layers))
    rules.merge_layers(defaults, os_layers, profile_layers, cluster_pillar("hardway"))
    example = rules.merge_layers(defaults, os_layers, profile_layers, cluster_pillar("example"))
    assert example["vip"]["interface"] is None
    assert (defaults, os_layers, profile_layers) == before


# --------------------------------------------------------------------------
# Valid configurations
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "minion_id"),
    [
        *((("hardway", f"k8s-controller-{i}")) for i in (1, 2, 3)),
        *((("example", f"prod-cp-{i}")) for i in (1, 2, 3)),
        ("hardway", None),
    ],
)
def test_pillar_clusters_are_valid(configs, table, rules, cluster, minion_id):
    assert rules.validate_config(configs[cluster], table, minion_id) == []


@pytest.mark.parametrize(
    ("cluster", "changes"),
    [
        # weight 0 (FAULT on a failed check): any gap between priorities
        ("example", {"controllers:0:priority": 250, "controllers:2:priority": 1}),
        ("hardway", {"controllers:0:priority": 200, "loadbalancer:keepalived:check_weight": 0}),
        # a positive weight larger than every gap
        ("hardway", {"controllers:0:priority": 110, "loadbalancer:keepalived:check_weight": 20}),
        ("hardway", {"loadbalancer:keepalived:check_weight": -2}),
        # VRRPv2 with an 8-character password; VRRPv3 with sub-second adverts
        (
            "hardway",
            {"loadbalancer:keepalived:vrrp_version": 2, "secrets:vrrp_auth_pass": "k8s-hard"},
        ),
        ("example", {"loadbalancer:keepalived:advert_int": 0.5}),
        # every supported minor, and a leading v
        ("hardway", {"kubernetes:version": "1.34.0"}),
        ("hardway", {"kubernetes:version": "v1.18.6"}),
        # an explicit subnet larger than /24
        ("hardway", {"vip:subnet": "10.240.0.0/16"}),
        ("hardway", {"vip:interface": None}),
        (
            "hardway",
            {"etcd:managed": True, "etcd:version": "3.4.23", "etcd:release_url": "https://e.io"},
        ),
        ("hardway", {"loadbalancer:haproxy:check": "readyz"}),
        # structured authorization where the apiserver takes it, instead of the mode
        (
            "hardway",
            {
                "kubernetes:version": "1.32.1",
                "controlplane:extra_args": {
                    "kube-apiserver": {
                        "authorization-config": "/etc/kubernetes/authz.yaml",
                        "authorization-mode": None,
                    }
                },
            },
        ),
        # a removed flag taken out by hand (null) is no error
        ("hardway", {"controlplane:extra_args": {"kube-apiserver": {"kubelet-https": None}}}),
    ],
    ids=lambda value: value if isinstance(value, str) else ",".join(value),
)
def test_valid_variants(table, rules, cluster, changes):
    cfg = cluster_config(cluster)
    for path, value in changes.items():
        set_path(cfg, path, value)
    assert rules.validate_config(cfg, table, cfg["controllers"][0]["id"]) == []


# --------------------------------------------------------------------------
# One case per rule: the error names the key and what is valid
# --------------------------------------------------------------------------

B64_10 = base64.b64encode(b"0123456789").decode()
_TABLE = versions_table()
SUPPORTED = f"{_TABLE['supported']['min']}.x - {_TABLE['supported']['max']}.x"

CASES = [
    # -- required keys ------------------------------------------------------
    ("missing-cluster", "hardway", {"cluster": None}, "cluster", ["DNS label"]),
    ("bad-cluster-name", "hardway", {"cluster": "Hard_Way"}, "cluster", ["DNS label"]),
    ("missing-controllers", "hardway", {"controllers": DELETE}, "controllers", ["a list of"]),
    ("empty-controllers", "hardway", {"controllers": []}, "controllers", ["{id, address}"]),
    ("missing-vip", "hardway", {"vip": DELETE}, "vip", ["address", "virtual_router_id"]),
    ("missing-vip-address", "hardway", {"vip:address": None}, "vip:address", ["IPv4"]),
    (
        "missing-version",
        "hardway",
        {"kubernetes:version": None},
        "kubernetes:version",
        [SUPPORTED],
    ),
    (
        "missing-controller-address",
        "hardway",
        {"controllers:1:address": DELETE},
        "controllers:1:address",
        ["IPv4"],
    ),
    ("missing-controller-id", "hardway", {"controllers:1:id": None}, "controllers:1:id", ["id"]),
    # -- wrong types --------------------------------------------------------
    (
        "controllers-not-a-list",
        "hardway",
        {"controllers": {"k8s-controller-1": "10.240.0.11"}},
        "controllers",
        ["a list of {id, address}"],
    ),
    (
        "controller-not-a-mapping",
        "hardway",
        {"controllers:2": "10.240.0.13"},
        "controllers:2",
        ["id and address"],
    ),
    (
        "controller-unknown-key",
        "hardway",
        {"controllers:2:prio": 5},
        "controllers:2:prio",
        ["unknown key; did you mean priority? valid: id, address, priority"],
    ),
    ("address-int", "hardway", {"controllers:0:address": 12345}, "controllers:0:address", ["IPv4"]),
    ("vip-address-int", "hardway", {"vip:address": 168820746}, "vip:address", ["IPv4"]),
    ("vrid-string", "hardway", {"vip:virtual_router_id": "51"}, "vip:virtual_router_id", ["1-255"]),
    ("vrid-bool", "hardway", {"vip:virtual_router_id": True}, "vip:virtual_router_id", ["1-255"]),
    ("vrid-256", "hardway", {"vip:virtual_router_id": 256}, "vip:virtual_router_id", ["1-255"]),
    (
        "priority-bool",
        "hardway",
        {"controllers:0:priority": True},
        "controllers:0:priority",
        ["an integer 1-254"],
    ),
    (
        "priority-string",
        "example",
        {"controllers:0:priority": "150"},
        "controllers:0:priority",
        ["an integer 1-254"],
    ),
    (
        "vrrp-version-bool",
        "hardway",
        {"loadbalancer:keepalived:vrrp_version": True},
        "loadbalancer:keepalived:vrrp_version",
        ["valid: 2, 3"],
    ),
    (
        "vrrp-version-4",
        "hardway",
        {"loadbalancer:keepalived:vrrp_version": 4},
        "loadbalancer:keepalived:vrrp_version",
        ["valid: 2, 3"],
    ),
    (
        "advert-int-bool",
        "hardway",
        {"loadbalancer:keepalived:advert_int": True},
        "loadbalancer:keepalived:advert_int",
        ["a number > 0"],
    ),
    (
        "advert-int-0",
        "hardway",
        {"loadbalancer:keepalived:advert_int": 0},
        "loadbalancer:keepalived:advert_int",
        ["a number > 0"],
    ),
    (
        "check-weight-bool",
        "hardway",
        {"loadbalancer:keepalived:check_weight": True},
        "loadbalancer:keepalived:check_weight",
        ["-253..253"],
    ),
    (
        "check-weight-254",
        "hardway",
        {"loadbalancer:keepalived:check_weight": 254},
        "loadbalancer:keepalived:check_weight",
        ["-253..253"],
    ),
    (
        "priority-base-bool",
        "hardway",
        {"loadbalancer:keepalived:priority_base": True},
        "loadbalancer:keepalived:priority_base",
        ["1-254"],
    ),
    (
        "tls-port-bool",
        "hardway",
        {"loadbalancer:haproxy:tls_port": True},
        "loadbalancer:haproxy:tls_port",
        ["1-65535"],
    ),
    (
        "http-port-string",
        "hardway",
        {"loadbalancer:haproxy:http_port": "80"},
        "loadbalancer:haproxy:http_port",
        ["1-65535"],
    ),
    (
        "etcd-managed-string",
        "hardway",
        {"etcd:managed": "yes"},
        "etcd:managed",
        ["valid: true, false"],
    ),
    (
        "etcd-servers-string",
        "hardway",
        {"etcd:servers": "https://10.240.0.11:2379"},
        "etcd:servers",
        ["a list of URLs"],
    ),
    (
        # issue 20: with a managed etcd the servers follow the controller list
        "etcd-managed-servers-not-the-controllers",
        "hardway",
        {
            "etcd:managed": True,
            "etcd:version": "3.7.0",
            "etcd:release_url": "http://10.240.0.1:8080",
            "etcd:servers:2": "https://10.240.0.99:2379",
        },
        "etcd:servers",
        ["follow controllers", "valid: unset, or exactly https://10.240.0.11:2379,"],
    ),
    (
        "etcd-server-http",
        "hardway",
        {"etcd:servers:1": "http://10.240.0.12:2379"},
        "etcd:servers:1",
        ["https://HOST:PORT"],
    ),
    ("cluster-name-int", "hardway", {"cluster_name": 42}, "cluster_name", ["one word"]),
    # -- addresses ----------------------------------------------------------
    (
        "bad-ipv4-octet",
        "hardway",
        {"controllers:1:address": "10.240.0.256"},
        "controllers:1:address",
        ["IPv4 address"],
    ),
    ("bad-ipv4-short", "hardway", {"vip:address": "10.240.0"}, "vip:address", ["IPv4 address"]),
    ("ipv6-vip", "hardway", {"vip:address": "fd00::10"}, "vip:address", ["IPv4 address"]),
    (
        "vip-outside-explicit-subnet",
        "example",
        {"vip:address": "192.168.51.10"},
        "vip:address",
        ["outside vip:subnet 192.168.50.0/24"],
    ),
    (
        "controller-outside-explicit-subnet",
        "hardway",
        {"vip:subnet": "10.240.0.0/28", "controllers:2:address": "10.240.0.20"},
        "controllers:2:address",
        ["outside vip:subnet 10.240.0.0/28"],
    ),
    (
        "bad-explicit-subnet",
        "hardway",
        {"vip:subnet": "10.240.0.10/24"},
        "vip:subnet",
        ["IPv4 network in CIDR form"],
    ),
    (
        "vip-outside-implicit-24",
        "hardway",
        {"vip:address": "10.240.1.10"},
        "vip:address",
        ["10.240.0.0/24", "set vip:subnet"],
    ),
    (
        "vip-is-a-controller",
        "hardway",
        {"vip:address": "10.240.0.12"},
        "vip:address",
        ["must be unused"],
    ),
    ("bad-interface", "hardway", {"vip:interface": "enp0s8 "}, "vip:interface", ["null"]),
    # -- uniqueness ---------------------------------------------------------
    (
        "duplicate-id",
        "hardway",
        {"controllers:2:id": "k8s-controller-1"},
        "controllers:2:id",
        ["duplicate id 'k8s-controller-1'", "controllers:0"],
    ),
    (
        "duplicate-address",
        "hardway",
        {"controllers:2:address": "10.240.0.11"},
        "controllers:2:address",
        ["duplicate address 10.240.0.11", "controllers:0"],
    ),
    (
        "duplicate-explicit-priority",
        "example",
        {"controllers:2:priority": 150},
        "controllers:2:priority",
        ["duplicate priority 150", "each must be unique"],
    ),
    (
        "explicit-priority-equals-computed",
        "hardway",
        {"controllers:2:priority": 101},
        "controllers:2:priority",
        ["duplicate priority 101"],
    ),
    # -- VRRP priorities and weights ----------------------------------------
    (
        "priority-255",
        "example",
        {"controllers:0:priority": 255},
        "controllers:0:priority",
        ["1-254"],
    ),
    ("priority-0", "example", {"controllers:2:priority": 0}, "controllers:2:priority", ["1-254"]),
    (
        "computed-priority-0",
        "hardway",
        {"loadbalancer:keepalived:priority_base": 2},
        "controllers:2:priority",
        ["computed priority 0", "1-254"],
    ),
    (
        "priority-gap-150-100-weight-2",
        "hardway",
        {"controllers:0:priority": 150},
        "loadbalancer:keepalived:check_weight",
        ["gap 50", "|weight| > 50", "weight 0"],
    ),
    (
        "priority-gap-equal-to-weight",
        "hardway",
        {"controllers:0:priority": 102},
        "loadbalancer:keepalived:check_weight",
        ["gap 2", "|weight| > 2"],
    ),
    (
        "priority-gap-negative-weight",
        "example",
        {"loadbalancer:keepalived:check_weight": -10},
        "loadbalancer:keepalived:check_weight",
        ["|weight| > 10"],
    ),
    # -- VRRP authentication and timing -------------------------------------
    (
        "auth-pass-with-vrrp3",
        "hardway",
        {"secrets:vrrp_auth_pass": "k8s"},
        "secrets:vrrp_auth_pass",
        ["VRRPv3", "vrrp_version to 2"],
    ),
    (
        "auth-pass-longer-than-8-vrrp2",
        "hardway",
        {"loadbalancer:keepalived:vrrp_version": 2, "secrets:vrrp_auth_pass": "k8s-hardway"},
        "secrets:vrrp_auth_pass",
        ["1-8 characters"],
    ),
    (
        "advert-int-0.5-vrrp2",
        "hardway",
        {"loadbalancer:keepalived:vrrp_version": 2, "loadbalancer:keepalived:advert_int": 0.5},
        "loadbalancer:keepalived:advert_int",
        ["VRRPv3", "whole seconds >= 1"],
    ),
    # -- Kubernetes ---------------------------------------------------------
    (
        "version-1.17",
        "hardway",
        {"kubernetes:version": "1.17.0"},
        "kubernetes:version",
        ["unsupported", SUPPORTED],
    ),
    (
        "version-1.99",
        "hardway",
        {"kubernetes:version": "1.99.1"},
        "kubernetes:version",
        ["unsupported", SUPPORTED],
    ),
    (
        "version-malformed",
        "hardway",
        {"kubernetes:version": "1.18"},
        "kubernetes:version",
        ["X.Y.Z", SUPPORTED],
    ),
    (
        "version-float",
        "hardway",
        {"kubernetes:version": 1.18},
        "kubernetes:version",
        ["X.Y.Z", SUPPORTED],
    ),
    (
        "cidrs-overlap",
        "hardway",
        {"kubernetes:cluster_cidr": "10.32.0.0/16"},
        "kubernetes:service_cidr",
        ["overlaps kubernetes:cluster_cidr"],
    ),
    (
        "service-cidr-contains-controller",
        "hardway",
        {"kubernetes:service_cidr": "10.240.0.0/24"},
        "kubernetes:service_cidr",
        ["contains controllers:0 (10.240.0.11)"],
    ),
    (
        "cluster-cidr-contains-controller",
        "example",
        {"kubernetes:cluster_cidr": "192.168.0.0/16"},
        "kubernetes:cluster_cidr",
        ["contains controllers:2 (192.168.50.13)"],
    ),
    (
        "cidr-host-bits",
        "hardway",
        {"kubernetes:service_cidr": "10.32.0.1/24"},
        "kubernetes:service_cidr",
        ["CIDR form"],
    ),
    (
        "missing-cluster-cidr",
        "hardway",
        {"kubernetes:cluster_cidr": None},
        "kubernetes:cluster_cidr",
        ["a CIDR"],
    ),
    (
        "node-port-range-reversed",
        "hardway",
        {"kubernetes:node_port_range": "32767-30000"},
        "kubernetes:node_port_range",
        ["LOW-HIGH within 1-65535"],
    ),
    (
        "node-port-range-single",
        "hardway",
        {"kubernetes:node_port_range": "30000"},
        "kubernetes:node_port_range",
        ["LOW-HIGH within 1-65535"],
    ),
    (
        "node-port-range-too-high",
        "hardway",
        {"kubernetes:node_port_range": "30000-70000"},
        "kubernetes:node_port_range",
        ["LOW-HIGH within 1-65535"],
    ),
    (
        "release-url",
        "hardway",
        {"kubernetes:release_url": "dl.k8s.io/release"},
        "kubernetes:release_url",
        ["http(s) URL"],
    ),
    # -- haproxy ------------------------------------------------------------
    pytest.param(
        "hardway",
        {"loadbalancer:haproxy:tls_port": 6443},
        "loadbalancer:haproxy:tls_port",
        ["6443 collides with controlplane:apiserver_port", "a free port, e.g. 8443"],
        id="tls-port-equals-apiserver-port",
    ),
    (
        "tls-port-equals-http-port",
        "hardway",
        {"loadbalancer:haproxy:tls_port": 80},
        "loadbalancer:haproxy:tls_port",
        ["80 collides with loadbalancer:haproxy:http_port", "a free port"],
    ),
    (
        "haproxy-check",
        "hardway",
        {"loadbalancer:haproxy:check": "httpchk"},
        "loadbalancer:haproxy:check",
        ["valid: readyz, tls"],
    ),
    (
        "haproxy-inter",
        "example",
        {"loadbalancer:haproxy:inter": "half a second"},
        "loadbalancer:haproxy:inter",
        ["a haproxy duration > 0", "e.g. 2s or 500ms"],
    ),
    # -- etcd ---------------------------------------------------------------
    (
        "etcd-managed-without-version",
        "hardway",
        {"etcd:managed": True, "etcd:release_url": "https://github.com/etcd-io/etcd"},
        "etcd:version",
        ["required when etcd:managed is true"],
    ),
    (
        "etcd-managed-without-release-url",
        "hardway",
        {"etcd:managed": True, "etcd:version": "3.4.23"},
        "etcd:release_url",
        ["required when etcd:managed is true"],
    ),
    # -- secrets ------------------------------------------------------------
    (
        "secrets-missing",
        "hardway",
        {"secrets:ca.pem": DELETE, "secrets:admin.kubeconfig": DELETE},
        "secrets",
        ["missing ca.pem, admin.kubeconfig"],
    ),
    (
        "secrets-unknown-key",
        "hardway",
        {"secrets:ca.crt": "x"},
        "secrets:ca.crt",
        ["unknown key; valid: ca.pem, ca-key.pem"],
    ),
    (
        "secret-not-pem",
        "hardway",
        {"secrets:kubernetes.pem": "MIIC..."},
        "secrets:kubernetes.pem",
        ["not PEM", "-----BEGIN"],
    ),
    (
        "secret-not-kubeconfig",
        "hardway",
        {"secrets:kube-scheduler.kubeconfig": "apiVersion: v1\n"},
        "secrets:kube-scheduler.kubeconfig",
        ["not a kubeconfig"],
    ),
    (
        "encryption-key-not-base64",
        "hardway",
        {"secrets:encryption_key": "not base64!"},
        "secrets:encryption_key",
        ["base64 of 16, 24 or 32 bytes"],
    ),
    (
        "encryption-key-10-bytes",
        "hardway",
        {"secrets:encryption_key": B64_10},
        "secrets:encryption_key",
        ["base64 of 16, 24 or 32 bytes"],
    ),
    (
        "encryption-key-missing",
        "hardway",
        {"secrets:encryption_key": DELETE},
        "secrets:encryption_key",
        ["base64 of 32 random bytes"],
    ),
    # -- profile ------------------------------------------------------------
    ("unknown-profile", "hardway", {"profile": "fast"}, "profile", ["valid: tuned, seed"]),
]


def _param(case):
    if type(case) is tuple:  # pytest.param's ParameterSet is a tuple too
        case_id, *values = case
        return pytest.param(*values, id=case_id)
    return case


@pytest.mark.parametrize(("cluster", "changes", "key", "needles"), [_param(c) for c in CASES])
def test_rule(secrets, table, rules, cluster, changes, key, needles):
    cfg = cluster_config(cluster)
    for path, value in changes.items():
        set_path(cfg, path, value)
    errors = rules.validate_config(cfg, table)
    assert errors, "expected an error"
    assert all(e.startswith(PREFIX) for e in errors), errors
    matching = errors_for(errors, key)
    assert matching, f"no error filed under {key!r}: {errors}"
    assert any(all(n in e for n in needles) for e in matching), matching


def test_tls_port_equal_to_apiserver_port_is_reported(table, rules):
    """The collision itself is found (whichever key it is filed under)."""
    cfg = set_path(cluster_config("hardway"), "loadbalancer:haproxy:tls_port", 6443)
    errors = rules.validate_config(cfg, table)
    assert len(errors) == 1
    assert errors[0].startswith(f"{PREFIX}loadbalancer:haproxy:tls_port: 6443 collides with")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("vip", "10.240.0.10"),
        pytest.param("secrets", "see vault"),
        pytest.param("loadbalancer", "haproxy"),
        pytest.param("loadbalancer:keepalived", ["HAProxy"]),
        pytest.param("loadbalancer:haproxy", "tuned"),
        pytest.param("kubernetes", "1.18.6"),
        pytest.param("etcd", "external"),
        pytest.param("controllers", 3),
    ],
)
def test_non_mapping_section_is_reported(table, rules, path, value):
    """A pillar value where a mapping belongs (e.g. ``vip: 10.240.0.10``) names the key."""
    cfg = set_path(cluster_config("hardway"), path, value)
    errors = rules.validate_config(cfg, table, "k8s-controller-1")
    assert any(e.startswith(f"{PREFIX}{path}") for e in errors), errors


def test_missing_secrets_are_listed_in_one_error(table, rules):
    cfg = cluster_config("hardway")
    cfg["secrets"] = {}
    errors = rules.validate_config(cfg, table)
    missing = errors_for(errors, "secrets")
    assert len(missing) == 1
    assert missing[0] == (
        f"{PREFIX}secrets: missing ca.pem, ca-key.pem, kubernetes.pem, kubernetes-key.pem, "
        "service-account.pem, service-account-key.pem, admin.kubeconfig, "
        "kube-controller-manager.kubeconfig, kube-scheduler.kubeconfig (see docs/pki.md, 'Secrets')"
    )
    assert errors_for(errors, "secrets:encryption_key")


def test_etcd_managed_without_version_and_url_reports_both(table, rules):
    cfg = set_path(cluster_config("hardway"), "etcd:managed", True)
    errors = rules.validate_config(cfg, table)
    assert [e.split(": ")[0] for e in errors] == [
        f"{PREFIX}etcd:version",
        f"{PREFIX}etcd:release_url",
    ]


def test_weight_zero_has_no_gap_constraint(table, rules):
    cfg = cluster_config("example")
    for index, priority in enumerate((254, 100, 1)):
        set_path(cfg, f"controllers:{index}:priority", priority)
    assert cfg["loadbalancer"]["keepalived"]["check_weight"] == 0
    assert rules.validate_config(cfg, table) == []
    set_path(cfg, "loadbalancer:keepalived:check_weight", 2)
    assert errors_for(rules.validate_config(cfg, table), "loadbalancer:keepalived:check_weight")


@pytest.mark.parametrize("minion_id", ["k8s-worker-1", "prod-cp-1", "k8s-controller-4"])
def test_this_minion_not_listed(table, rules, minion_id):
    errors = rules.validate_config(cluster_config("hardway"), table, minion_id)
    assert errors == [
        f"{PREFIX}controllers: this minion ({minion_id}) is not listed; "
        "listed: ['k8s-controller-1', 'k8s-controller-2', 'k8s-controller-3']"
    ]


def test_this_minion_not_listed_through_validate(modules):
    pillar = cluster_pillar("example")
    mod = modules("k8s_cluster", **cluster_dunders(pillar, "k8s-controller-1"))
    report = mod.validate()
    assert report["valid"] is False
    assert errors_for(report["errors"], "controllers")
    assert "prod-cp-1" in report["errors"][0]


def test_all_errors_at_once(table, rules):
    cfg = cluster_config("hardway")
    changes = {
        "cluster": "Hard_Way",
        "profile": "fast",
        "vip:address": "10.240.0.11",
        "kubernetes:version": "1.17.0",
        "loadbalancer:haproxy:check": "httpchk",
        "secrets:ca.pem": DELETE,
        "controllers:2:address": "10.240.0.12",
    }
    for path, value in changes.items():
        set_path(cfg, path, value)
    errors = rules.validate_config(cfg, table, "k8s-worker-1")
    keys = {e.split(": ")[0].removeprefix(PREFIX) for e in errors}
    expected = {
        "cluster",
        "profile",
        "vip:address",
        "kubernetes:version",
        "loadbalancer:haproxy:check",
        "secrets",
        "controllers:2:address",
        "controllers",
    }
    assert expected <= keys, errors
    assert len(errors) >= 8


def test_not_a_mapping(rules):
    assert rules.validate_config(["cluster"]) == [f"{PREFIX}: must be a mapping"]


def test_validate_reports_a_broken_layer(modules):
    pillar = cluster_pillar("hardway")
    dunders = cluster_dunders(pillar, "k8s-controller-1")
    dunders["__pillar__"] = {"k8s_control_plane": ["not", "a", "mapping"]}
    report = modules("k8s_cluster", **dunders).validate()
    assert report == {"valid": False, "errors": ["pillar 'k8s_control_plane' must be a mapping"]}


CP, LB, XA = "controlplane", "loadbalancer", "controlplane:extra_args"


@pytest.mark.parametrize(
    ("path", "value", "key", "text"),
    [
        (XA, ["--v=4"], XA, "expected a mapping"),
        (XA, {"kubelet": {}}, f"{XA}:kubelet", "valid:"),
        (XA, {"kube-apiserver": ["v"]}, f"{XA}:kube-apiserver", "flag -> value"),
        (XA, {"kube-scheduler": {"v": "2 --x"}}, f"{XA}:kube-scheduler:v", "one word"),
        (f"{CP}:binaries", ["kubectl"], f"{CP}:binaries", "must include kube-apiserver"),
        (f"{CP}:ready_timeout", "3m", f"{CP}:ready_timeout", "a number > 0"),
        ("rbac:apply_from", "k8s-controller-9", "rbac:apply_from", "one of ['k8s-controller-1'"),
        ("rbac:cluster_role", None, "rbac:cluster_role", "missing (expected a mapping with name"),
        (
            "rbac:cluster_role_binding",
            {"name": "x"},
            "rbac:cluster_role_binding:user",
            "expected a string, got nothing",
        ),
        (f"{LB}:haproxy:selinux_booleans", "x", f"{LB}:haproxy:selinux_booleans", "list of names"),
        (
            f"{LB}:keepalived:check_fall",
            0,
            f"{LB}:keepalived:check_fall",
            "an integer > 0, or null",
        ),
        (f"{LB}:sysctl:config", None, f"{LB}:sysctl:config", "an absolute path"),
    ],
)
def test_component_settings(table, rules, path, value, key, text):
    cfg = set_path(cluster_config("hardway"), path, value)
    errors = rules.validate_config(cfg, table, "k8s-controller-1")
    assert any(e.startswith(f"{PREFIX}{key}: ") and text in e for e in errors), errors


def test_managed_etcd_version_and_url_types(table, rules):
    cfg = cluster_config("hardway")
    cfg["etcd"].update({"managed": True, "version": 3.4, "release_url": 5})
    errors = rules.validate_config(cfg, table, "k8s-controller-1")
    assert any(e.startswith(f"{PREFIX}etcd:version: 3.4; required") for e in errors), errors
    assert any(e.startswith(f"{PREFIX}etcd:release_url: 5; required") for e in errors), errors


def test_a_secret_of_the_wrong_type_is_not_echoed(table, rules):
    cfg = cluster_config("hardway")
    cfg["secrets"] = "-----BEGIN PRIVATE KEY-----\nSECRETSTUFF"
    errors = rules.validate_config(cfg, table, "k8s-controller-1")
    assert errors == [f"{PREFIX}secrets: expected a mapping, got str"]


# --------------------------------------------------------------------------
# No early returns; secrets never shown
# --------------------------------------------------------------------------


def test_a_bad_vip_hides_no_other_vip_error(table, rules):
    cfg = cluster_config("hardway")
    cfg["vip"].update(
        {"address": "10.240.0.300", "interface": "enp0s8 ", "subnet": "10.240.0.10/24"}
    )
    keys = [e.split(": ")[0].removeprefix(PREFIX) for e in rules.validate_config(cfg, table)]
    assert keys == ["vip:interface", "vip:address", "vip:subnet"]


def test_a_bad_priority_base_hides_no_duplicate_priority(table, rules):
    cfg = cluster_config("hardway")
    set_path(cfg, "loadbalancer:keepalived:priority_base", "high")
    set_path(cfg, "controllers:0:priority", 50)
    set_path(cfg, "controllers:1:priority", 50)
    keys = [e.split(": ")[0].removeprefix(PREFIX) for e in rules.validate_config(cfg, table)]
    assert keys == ["loadbalancer:keepalived:priority_base", "controllers:1:priority"]


@pytest.mark.parametrize("section", ["vip", "kubernetes", "etcd", "controlplane", "loadbalancer"])
def test_a_section_of_the_wrong_type_leaves_the_others_checked(table, rules, section):
    cfg = set_path(cluster_config("hardway"), section, "oops")
    set_path(cfg, "cluster", "Hard_Way")
    set_path(cfg, "rbac:apply_from", "nobody")
    keys = [e.split(": ")[0].removeprefix(PREFIX) for e in rules.validate_config(cfg, table)]
    assert {section, "cluster", "rbac:apply_from"} <= set(keys), keys


def test_config_never_shows_a_secret_looking_value(modules):
    pillar = cluster_pillar("hardway")
    pillar["loadbalancer"] = {"keepalived": {"auth_pass": "hunter2"}, "haproxy": {"password": "x1"}}
    pillar["secrets"]["vrrp_auth_pass"] = "k8spass"
    mod = modules("k8s_cluster", **cluster_dunders(pillar, "k8s-controller-1"))
    shown = mod.config()
    assert shown["loadbalancer"]["keepalived"]["auth_pass"] == "<secret>"
    assert shown["loadbalancer"]["haproxy"]["password"] == "<secret>"
    assert set(shown["secrets"].values()) == {"<secret>"}
    text = repr(shown)
    for value in ("hunter2", "x1", "k8spass", *pillar["secrets"].values()):
        assert repr(value)[1:-1] not in text
    # the names and every other value stay
    assert shown["etcd"]["initial_cluster_token"] == "etcd-cluster-0"
    assert "vrrp_auth_pass" in shown["secrets"]
    # and the validation refuses the seed-style password without showing it
    errors = mod.validate()["errors"]
    assert errors[0].startswith(f"{PREFIX}loadbalancer:keepalived:auth_pass: unknown key; ")
    assert "secrets:vrrp_auth_pass" in errors[0]
    assert not any("hunter2" in e or "k8spass" in e for e in errors)
