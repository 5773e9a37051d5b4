"""Preflight (the utils' preflight): what a controller must have before anything is applied."""

from tests.support.cluster import PREFIX, cluster_config

GOOD = {"lo": ["127.0.0.1"], "enp0s8": ["10.240.0.12"]}


def test_a_ready_controller_passes(rules):
    assert rules.preflight(cluster_config("hardway"), "k8s-controller-2", GOOD) == []


def test_address_not_configured(rules):
    errors = rules.preflight(
        cluster_config("hardway"), "k8s-controller-2", {"enp0s8": ["10.240.0.99"]}
    )
    assert errors == [
        f"{PREFIX}controllers:1:address: 10.240.0.12 is not configured on k8s-controller-2; "
        "its IPv4 addresses: 10.240.0.99"
    ]


def test_vip_interface_missing(rules):
    errors = rules.preflight(
        cluster_config("hardway"),
        "k8s-controller-2",
        {"lo": ["127.0.0.1"], "eth1": ["10.240.0.12"]},
    )
    assert errors == [
        f"{PREFIX}vip:interface: enp0s8 does not exist on k8s-controller-2; valid: eth1"
    ]


def test_vip_interface_without_the_address(rules):
    grains = {"enp0s8": ["192.168.1.2"], "eth1": ["10.240.0.12"]}
    errors = rules.preflight(cluster_config("hardway"), "k8s-controller-2", grains)
    assert errors == [
        f"{PREFIX}vip:interface: enp0s8 does not carry 10.240.0.12 on k8s-controller-2; valid: eth1"
    ]


def test_interface_from_grains_when_unset(rules):
    cfg = cluster_config("example")
    assert cfg["vip"]["interface"] is None
    assert rules.preflight(cfg, "prod-cp-1", {"eth0": ["192.168.50.11"]}) == []
