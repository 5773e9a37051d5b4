"""keepalived roles (the utils' keepalived_role and priorities, the keepalived_role module)."""

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.cluster import cluster_config, set_path, versions_table

SEED_IDS = [f"k8s-controller-{i}" for i in (1, 2, 3)]
SEED_ADDRESSES = [f"10.240.0.1{i}" for i in (1, 2, 3)]


@pytest.fixture
def seed():
    return cluster_config("hardway")


@pytest.fixture
def example():
    return cluster_config("example")


@pytest.mark.parametrize(
    ("index", "state", "priority"),
    [(0, "MASTER", 101), (1, "BACKUP", 100), (2, "BACKUP", 99)],
)
def test_seed_roles(rules, seed, index, state, priority):
    role = rules.keepalived_role(seed, SEED_IDS[index], {})
    peers = [a for a in SEED_ADDRESSES if a != SEED_ADDRESSES[index]]
    assert role == {
        "id": SEED_IDS[index],
        "state": state,
        "priority": priority,
        "unicast_src_ip": SEED_ADDRESSES[index],
        "unicast_peers": peers,
        "vip": "10.240.0.10",
        "interface": "enp0s8",
        "virtual_router_id": 51,
    }


def test_seed_has_one_master_and_never_slave(rules, seed):
    states = [rules.keepalived_role(seed, cid, {})["state"] for cid in SEED_IDS]
    assert states.count("MASTER") == 1
    assert set(states) == {"MASTER", "BACKUP"}
    assert "SLAVE" not in states


def test_pillar_interface_wins_over_grains(rules, seed):
    grains = {"lo": ["127.0.0.1"], "eth1": ["10.240.0.11"]}
    assert rules.keepalived_role(seed, SEED_IDS[0], grains)["interface"] == "enp0s8"


@pytest.mark.parametrize(
    ("minion_id", "ip4_interfaces", "interface"),
    [
        (
            "k8s-controller-2",
            {"lo": ["127.0.0.1"], "enp0s3": ["10.0.2.15"], "enp0s8": ["10.240.0.12"]},
            "enp0s8",
        ),
        # the VIP already on the interface (this node is the holder)
        ("k8s-controller-1", {"eth1": ["10.240.0.11", "10.240.0.10"], "lo": []}, "eth1"),
        ("k8s-controller-3", {"bond0.240": ["10.240.0.13"], "eth0": None}, "bond0.240"),
    ],
)
def test_interface_from_grains_when_vip_interface_is_null(
    rules, seed, minion_id, ip4_interfaces, interface
):
    set_path(seed, "vip:interface", None)
    assert rules.keepalived_role(seed, minion_id, ip4_interfaces)["interface"] == interface


@pytest.mark.parametrize("ip4_interfaces", [None, {}, {"lo": ["127.0.0.1"], "eth0": ["10.0.2.15"]}])
def test_error_when_no_interface_carries_the_address(rules, example, ip4_interfaces):
    assert example["vip"]["interface"] is None
    with pytest.raises(CommandExecutionError) as err:
        rules.keepalived_role(example, "prod-cp-2", ip4_interfaces)
    message = str(err.value)
    assert "192.168.50.12" in message
    assert "prod-cp-2" in message
    assert "k8s_control_plane:vip:interface" in message


@pytest.mark.parametrize(
    ("minion_id", "state", "priority", "peers"),
    [
        ("prod-cp-1", "MASTER", 150, ["192.168.50.12", "192.168.50.13"]),
        ("prod-cp-2", "BACKUP", 140, ["192.168.50.11", "192.168.50.13"]),
        ("prod-cp-3", "BACKUP", 130, ["192.168.50.11", "192.168.50.12"]),
    ],
)
def test_example_explicit_priorities(rules, example, minion_id, state, priority, peers):
    address = {"prod-cp-1": "192.168.50.11", "prod-cp-2": "192.168.50.12"}.get(
        minion_id, "192.168.50.13"
    )
    role = rules.keepalived_role(example, minion_id, {"ens18": [address]})
    assert (role["state"], role["priority"]) == (state, priority)
    assert role["unicast_src_ip"] == address
    assert role["unicast_peers"] == peers
    assert (role["vip"], role["interface"], role["virtual_router_id"]) == (
        "192.168.50.10",
        "ens18",
        52,
    )


def test_master_is_the_highest_priority_not_the_first_listed(rules, example):
    example["controllers"] = [example["controllers"][i] for i in (2, 0, 1)]  # 130, 150, 140
    roles = {
        c["id"]: rules.keepalived_role(example, c["id"], {"ens18": [c["address"]]})
        for c in example["controllers"]
    }
    assert {cid: (r["state"], r["priority"]) for cid, r in roles.items()} == {
        "prod-cp-3": ("BACKUP", 130),
        "prod-cp-1": ("MASTER", 150),
        "prod-cp-2": ("BACKUP", 140),
    }
    # peers follow the list order
    assert roles["prod-cp-1"]["unicast_peers"] == ["192.168.50.13", "192.168.50.12"]


def test_explicit_priority_mixed_with_computed(rules, seed):
    set_path(seed, "controllers:2:priority", 200)
    roles = [rules.keepalived_role(seed, cid, {}) for cid in SEED_IDS]
    assert [(r["state"], r["priority"]) for r in roles] == [
        ("BACKUP", 101),
        ("BACKUP", 100),
        ("MASTER", 200),
    ]


@pytest.mark.parametrize("cluster", ["hardway", "example"])
def test_roles_take_the_one_priority_rule(rules, cluster):
    """The roles' priorities are the rule's, the one the validation checks."""
    cfg = cluster_config(cluster)
    computed = [
        rules.keepalived_role(cfg, c["id"], {"eth0": [c["address"]]})["priority"]
        for c in cfg["controllers"]
    ]
    assert computed == rules.priorities(cfg)


@pytest.mark.parametrize("minion_id", ["k8s-worker-1", "prod-cp-1", ""])
def test_unknown_minion_names_valid_ids(rules, seed, minion_id):
    with pytest.raises(CommandExecutionError) as err:
        rules.keepalived_role(seed, minion_id, {})
    assert str(err.value) == (
        f"{minion_id} is not in k8s_control_plane:controllers; "
        "valid: k8s-controller-1, k8s-controller-2, k8s-controller-3"
    )


def test_roles_of_a_valid_cluster_validate(rules, seed):
    """Sanity: the configuration the roles are computed from is a valid one."""
    assert rules.validate_config(seed, versions_table()) == []


def _with_config(modules, cfg, minion_id, ip4_interfaces):
    return modules(
        "k8s_keepalived",
        __salt__={"k8s_cluster.config": lambda: cfg},
        __grains__={"id": minion_id, "ip4_interfaces": ip4_interfaces},
    )


def test_role_uses_this_minions_grains(modules, example):
    mod = _with_config(modules, example, "prod-cp-2", {"ens18": ["192.168.50.12"]})
    role = mod.role()
    assert (role["id"], role["state"], role["interface"]) == ("prod-cp-2", "BACKUP", "ens18")
    # another controller's role: its interface comes from pillar only
    with pytest.raises(CommandExecutionError, match="vip:interface is not set"):
        mod.role("prod-cp-1")


def test_roles_reports_each_controller(modules, seed, example):
    roles = _with_config(modules, seed, "k8s-controller-2", {}).roles()
    assert [roles[cid]["state"] for cid in SEED_IDS] == ["MASTER", "BACKUP", "BACKUP"]
    roles = _with_config(modules, example, "prod-cp-1", {"ens18": ["192.168.50.11"]}).roles()
    assert roles["prod-cp-1"]["interface"] == "ens18"
    assert "vip:interface" in roles["prod-cp-2"]["error"]
