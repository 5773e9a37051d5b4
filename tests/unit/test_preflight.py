"""Preflight (the utils' preflight): what a controller must have before anything is applied."""

import pytest

from tests.support.cluster import (
    PREFIX,
    cluster_config,
    cluster_dunders,
    cluster_pillar,
    set_path,
    versions_table,
)

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


NO_ADDRESS = {"lo": ["127.0.0.1"], "eth1": ["10.240.0.99"]}


def test_the_preflight_waits_for_a_valid_configuration(rules):
    """A pillar error first, alone: the preflight's findings would only add noise or echoes."""
    cfg = set_path(cluster_config("hardway"), "vip:virtual_router_id", 0)
    found = rules.validate_minion(cfg, versions_table(), "k8s-controller-2", NO_ADDRESS)
    assert found == {
        "stage": "pillar",
        "errors": [f"{PREFIX}vip:virtual_router_id: 0; valid: an integer 1-255"],
    }
    found = rules.validate_minion(
        cluster_config("hardway"), versions_table(), "k8s-controller-2", NO_ADDRESS
    )
    assert found["stage"] == "preflight"
    assert [e.split(": ")[0] for e in found["errors"]] == [
        f"{PREFIX}controllers:1:address",
        f"{PREFIX}vip:interface",
    ]


def test_the_module_reports_the_pillar_errors_without_the_preflight(modules):
    pillar = cluster_pillar("hardway")
    pillar["vip"]["virtual_router_id"] = 0
    dunders = cluster_dunders(pillar, "k8s-controller-2")
    dunders["__grains__"]["ip4_interfaces"] = NO_ADDRESS
    report = modules("k8s_cluster", **dunders).validate()
    assert report == {
        "valid": False,
        "errors": [f"{PREFIX}vip:virtual_router_id: 0; valid: an integer 1-255"],
    }


@pytest.mark.parametrize(
    "cfg",
    [
        None,
        "controllers",
        {"controllers": "k8s-controller-2"},
        {"controllers": ["k8s-controller-2", None]},
        {"controllers": [{"id": "k8s-controller-2", "address": "10.240.0.12"}], "vip": "enp0s8"},
    ],
)
def test_the_preflight_of_a_malformed_configuration_reads_what_it_can(rules, cfg):
    """Called on its own (it is a public utils function), it never raises."""
    errors = rules.preflight(cfg, "k8s-controller-2", NO_ADDRESS)
    assert all("controllers:0:address" in e for e in errors)
