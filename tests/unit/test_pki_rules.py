"""
The PKI's pure rules (_utils/k8s_control_plane/pki.py) as plain Python, the validation of
pki:source salt, and the master's ext_pillar (_pillar/k8s_pki.py) with Salt's
real x509 module: the CA and the cluster's one service-account signing key
are made once, kept root-only, given to the cluster's controllers only, and
an operator's own CA or service-account key is left alone.
"""

import base64
import copy
import datetime
import multiprocessing
import os
import stat
import threading

import pytest
import salt.config
import salt.loader
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.cluster import (
    REPO,
    cluster_config,
    cluster_pillar,
    errors_for,
    load_file,
    merged_config,
    rules,
    utils_mapping,
    utils_package,
)

ROOT = "k8s_control_plane"
# What the master's ext_pillar k8s_pki gives with pki:source salt (the CA with a managed etcd
# only): the service-account signing key is one per cluster, so that every apiserver accepts a
# ServiceAccount token any other issued.
FROM_MASTER = ("ca.pem", "ca-key.pem", "service-account-key.pem", "encryption_key")
# With either source the master also gives the key that seals the etcd snapshots. It gives the
# encryption key as the list of keys (secrets:encryption_keys; key1 until a rotation), and keeps
# it in its file encryption_key.
EXT_GIVES = ("ca.pem", "ca-key.pem", "service-account-key.pem", "encryption_keys", "backup_key")
MASTER_FILES = (*FROM_MASTER, "backup_key")
SA_KEY = "service-account-key.pem"
SA_KEY_MISSING = (
    "k8s_control_plane:secrets:service-account-key.pem: "
    "missing (the master's ext_pillar k8s_pki gives it: one signing key per cluster)"
)
# What each controller makes for itself: refused in the pillar with pki:source salt.
LEAF_SECRETS = (
    "kubernetes.pem",
    "kubernetes-key.pem",
    "service-account.pem",
    "admin.kubeconfig",
    "kube-controller-manager.kubeconfig",
    "kube-scheduler.kubeconfig",
)
HARDWAY_SANS = [
    "IP:10.32.0.1",
    "IP:10.240.0.10",
    "IP:10.240.0.11",
    "IP:10.240.0.12",
    "IP:10.240.0.13",
    "IP:127.0.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "DNS:k8s-controller",
    "DNS:k8s-controller-1",
    "DNS:k8s-controller-2",
    "DNS:k8s-controller-3",
]


@pytest.fixture(scope="module")
def k8s_pki():
    return utils_package().pki


def salt_pillar(cluster="hardway", **pki):
    """The cluster's pillar as a controller sees it with pki:source salt."""
    pillar = cluster_pillar(cluster)
    pillar["secrets"] = {name: pillar["secrets"][name] for name in FROM_MASTER}
    pillar["pki"] = {"source": "salt", **pki}
    return pillar


def salt_config(cluster="hardway", etcd_managed=False, **pki):
    pillar = salt_pillar(cluster, **pki)
    if etcd_managed:
        pillar["etcd"] = {
            **pillar.get("etcd", {}),
            "managed": True,
            "version": "3.4.23",
            "release_url": "https://example.invalid/etcd",
        }
    return merged_config(pillar)


def pillar_config(cluster="hardway", etcd_managed=False):
    cfg = cluster_config(cluster)
    assert cfg["pki"]["source"] == "pillar"
    if etcd_managed:
        cfg["etcd"]["managed"] = True
    return cfg


def _by_name(entries, directory=None):
    return {
        e["name"]: e
        for e in entries
        if e["kind"] != "directory" and (directory is None or e["path"].startswith(directory))
    }


# --------------------------------------------------------------------------
# The apiserver's SANs
# --------------------------------------------------------------------------


def test_apiserver_sans_of_the_seed_cluster(k8s_pki):
    """Every controller address, the VIP, 127.0.0.1, the first service IP, the in-cluster names."""
    assert k8s_pki.apiserver_sans(salt_config()) == HARDWAY_SANS


@pytest.mark.parametrize("cluster", ["hardway", "example"])
def test_apiserver_sans_cover_what_a_client_dials(k8s_pki, cluster):
    cfg = salt_config(cluster)
    sans = k8s_pki.apiserver_sans(cfg)
    assert len(sans) == len(set(sans))
    assert f"IP:{cfg['vip']['address']}" in sans
    assert "IP:127.0.0.1" in sans
    for controller in cfg["controllers"]:
        assert f"IP:{controller['address']}" in sans
        assert f"DNS:{controller['id']}" in sans
    for name in (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ):
        assert f"DNS:{name}" in sans
    assert f"IP:{k8s_pki.first_service_ip(cfg)}" in sans


@pytest.mark.parametrize(
    ("service_cidr", "first"),
    [("10.32.0.0/24", "10.32.0.1"), ("10.96.0.0/12", "10.96.0.1"), ("172.20.8.0/21", "172.20.8.1")],
)
def test_the_first_service_ip_comes_from_service_cidr(k8s_pki, service_cidr, first):
    cfg = salt_config()
    cfg["kubernetes"]["service_cidr"] = service_cidr
    assert k8s_pki.first_service_ip(cfg) == first
    assert k8s_pki.apiserver_sans(cfg)[0] == f"IP:{first}"


def test_changing_the_vip_changes_the_sans(k8s_pki):
    cfg = salt_config()
    before = k8s_pki.apiserver_sans(cfg)
    cfg["vip"]["address"] = "10.240.0.20"
    after = k8s_pki.apiserver_sans(cfg)
    assert "IP:10.240.0.20" in after and "IP:10.240.0.10" not in after
    assert [s for s in before if s != "IP:10.240.0.10"] == [
        s for s in after if s != "IP:10.240.0.20"
    ]
    # the planned apiserver certificate follows, and no other certificate names the VIP
    entries = _by_name(k8s_pki.pki_plan(cfg, "k8s-controller-1"))
    assert entries["kubernetes.pem"]["sans"] == after
    others = [e for n, e in entries.items() if e["kind"] == "certificate" and n != "kubernetes.pem"]
    assert others and all(not e["sans"] for e in others)


def test_without_a_vip_hostname_no_dns_name_for_it(k8s_pki):
    cfg = salt_config()
    del cfg["vip"]["hostname"]
    assert "DNS:k8s-controller" not in k8s_pki.apiserver_sans(cfg)


# --------------------------------------------------------------------------
# The plan per source
# --------------------------------------------------------------------------

# The keys each controller makes for itself (the service-account key comes from the master).
SALT_KEYS = (
    "kubernetes-key.pem",
    "apiserver-kubelet-client-key.pem",
    "admin-key.pem",
    "kube-controller-manager-key.pem",
    "kube-scheduler-key.pem",
)
SALT_CERTS = {
    "kubernetes.pem": "apiserver",
    "apiserver-kubelet-client.pem": "apiserver-kubelet-client",
    "service-account.pem": "service-account",
    "admin.pem": "admin",
    "kube-controller-manager.pem": "kube-controller-manager",
    "kube-scheduler.pem": "kube-scheduler",
}


def test_plan_with_source_salt(k8s_pki):
    cfg = salt_config()
    entries = k8s_pki.pki_plan(cfg, "k8s-controller-1")
    pki_dir = cfg["controlplane"]["pki_dir"]
    assert entries[0] == {"name": pki_dir, "path": pki_dir, "kind": "directory", "sls": "ca"}
    kinds = {}
    for e in entries[1:]:
        kinds.setdefault(e["kind"], []).append(e["name"])
        assert e["path"] == f"{pki_dir}/{e['name']}"
    # only the CA and the cluster's service-account key come from pillar: no leaf
    # certificate, no other key, no kubeconfig
    assert kinds["pillar"] == ["ca.pem", "ca-key.pem", SA_KEY]
    assert sorted(kinds["key"]) == sorted(SALT_KEYS)
    assert sorted(kinds["certificate"]) == sorted(SALT_CERTS)
    assert kinds["kubeconfig"] == [f"{u}.kubeconfig" for u in k8s_pki.KUBECONFIGS]
    assert kinds["template"] == ["encryption-config.yaml"]
    assert kinds["signer"] == ["ca-signer.pem"]
    assert set(kinds) == {"pillar", "key", "certificate", "kubeconfig", "template", "signer"}
    order = [e["name"] for e in entries]
    by_name = _by_name(entries)
    for name, kind in SALT_CERTS.items():
        cert = by_name[name]
        assert cert["policy"] == f"k8s_control_plane-hardway-{kind}"
        assert cert["key"] == f"{pki_dir}/{name[:-4]}-key.pem"
        assert cert["signing_cert"] == f"{pki_dir}/ca.pem"
        assert cert["signing_key"] == f"{pki_dir}/ca-key.pem"
        assert (cert["days_valid"], cert["days_remaining"]) == (365, 30)
        assert cert["mode"] == "0644" and cert["sls"] == "init"
        # the key is made before the certificate that uses it
        assert order.index(f"{name[:-4]}-key.pem") < order.index(name)
    assert by_name["kubernetes.pem"]["sans"] == HARDWAY_SANS
    for name in (*SALT_KEYS, SA_KEY):
        assert by_name[name]["mode"] == "0600"
    assert by_name["ca-key.pem"]["mode"] == "0600" and by_name["ca.pem"]["mode"] == "0644"
    assert {by_name[n]["sls"] for n in ("ca.pem", "ca-key.pem", "ca-signer.pem")} == {"ca"}
    # the controller-manager's signing CA alone, from the bundle and the key placed before it
    signer = by_name["ca-signer.pem"]
    assert (signer["bundle"], signer["key"], signer["mode"]) == (
        f"{pki_dir}/ca.pem",
        f"{pki_dir}/ca-key.pem",
        "0644",
    )
    assert order.index("ca-key.pem") < order.index("ca-signer.pem")
    for user, cn in (
        ("admin", "admin"),
        ("kube-controller-manager", "system:kube-controller-manager"),
        ("kube-scheduler", "system:kube-scheduler"),
    ):
        kubeconfig = by_name[f"{user}.kubeconfig"]
        assert kubeconfig["mode"] == "0600"
        assert kubeconfig["server"] == "https://127.0.0.1:6443"
        assert kubeconfig["user"] == cn
        assert kubeconfig["cluster"] == "kubernetes"
        assert (kubeconfig["ca"], kubeconfig["cert"], kubeconfig["key"]) == (
            f"{pki_dir}/ca.pem",
            f"{pki_dir}/{user}.pem",
            f"{pki_dir}/{user}-key.pem",
        )
        assert order.index(f"{user}.pem") < order.index(f"{user}.kubeconfig")
    assert by_name["encryption-config.yaml"]["mode"] == "0600"
    assert not [e for e in entries if e["sls"] == "etcd"]


@pytest.mark.parametrize("etcd_managed", [False, True])
def test_the_service_account_key_comes_from_the_master(k8s_pki, etcd_managed):
    """
    With pki:source salt the service-account signing key is the cluster's one (the master's
    ext_pillar gives it), placed from secrets like the CA, not made per controller; the
    controller still issues its own service-account.pem of it through the cluster's policy.
    """
    assert k8s_pki.CLUSTER_KEYS == ("service-account",)
    cfg = salt_config(etcd_managed=etcd_managed)
    pki_dir = cfg["controlplane"]["pki_dir"]
    for minion_id in ("k8s-controller-1", "k8s-controller-2", "k8s-controller-3"):
        entries = k8s_pki.pki_plan(cfg, minion_id)
        found = [e for e in entries if e["name"] == SA_KEY]
        # from secrets, root-only, in the init SLS (the controller's run), never an x509 key
        assert found == [
            {
                "name": SA_KEY,
                "path": f"{pki_dir}/{SA_KEY}",
                "kind": "pillar",
                "mode": "0600",
                "sls": "init",
            }
        ]
        assert k8s_pki.pki_requisite_module(found[0]) == "file"
        assert k8s_pki.pki_state_id(ROOT, found[0]) == (
            "k8s_control_plane-pki-file-managed-service-account-key.pem"
        )
        by_name = _by_name(entries)
        cert = by_name["service-account.pem"]
        assert cert["kind"] == "certificate" and cert["sls"] == "init"
        assert cert["key"] == f"{pki_dir}/{SA_KEY}"
        assert cert["policy"] == "k8s_control_plane-hardway-service-account"
        assert (cert["signing_cert"], cert["signing_key"]) == (
            f"{pki_dir}/ca.pem",
            f"{pki_dir}/ca-key.pem",
        )
        assert cert["sans"] == [] and cert["mode"] == "0644"
        order = [e["name"] for e in entries]
        assert order.index(SA_KEY) < order.index("service-account.pem")
        # every other key is still made on the controller
        assert not [e for e in entries if e["kind"] == "key" and e["name"] == SA_KEY]
        assert sorted(e["name"] for e in entries if e["kind"] == "key" and e["sls"] == "init") == (
            sorted(SALT_KEYS)
        )
    # with pki:source pillar it is one of the files the operator gives, as before
    pillar_entries = _by_name(k8s_pki.pki_plan(pillar_config(), "k8s-controller-1"))
    assert pillar_entries[SA_KEY]["kind"] == "pillar"
    assert pillar_entries["service-account.pem"]["kind"] == "pillar"


def test_plan_with_source_salt_and_a_managed_etcd(k8s_pki):
    cfg = salt_config(etcd_managed=True)
    etcd_dir = cfg["etcd"]["config_dir"]
    for minion_id, address in (
        ("k8s-controller-1", "10.240.0.11"),
        ("k8s-controller-3", "10.240.0.13"),
    ):
        entries = [e for e in k8s_pki.pki_plan(cfg, minion_id) if e["sls"] == "etcd"]
        assert [(e["kind"], e["path"]) for e in entries] == [
            ("directory", etcd_dir),
            ("pillar", f"{etcd_dir}/ca.pem"),
            ("pillar", f"{etcd_dir}/ca-key.pem"),
            ("key", f"{etcd_dir}/etcd-key.pem"),
            ("certificate", f"{etcd_dir}/etcd.pem"),
        ]
        cert = entries[-1]
        assert cert["policy"] == "k8s_control_plane-hardway-etcd"
        assert cert["sans"] == [
            f"IP:{address}",
            "IP:127.0.0.1",
            f"DNS:{minion_id}",
            "DNS:localhost",
        ]
        # signed with etcd's own copy of the CA: pki.etcd never writes the control plane's
        # PKI directory (whose files the rolling control plane step watches)
        assert cert["signing_key"] == f"{etcd_dir}/ca-key.pem"
        assert cert["signing_cert"] == f"{etcd_dir}/ca.pem"
    assert k8s_pki.etcd_check_files(cfg) == (
        f"{etcd_dir}/ca.pem",
        f"{etcd_dir}/etcd.pem",
        f"{etcd_dir}/etcd-key.pem",
    )


def test_plan_with_source_pillar_places_the_nine_secret_files(k8s_pki):
    cfg = pillar_config()
    entries = k8s_pki.pki_plan(cfg, "k8s-controller-1")
    pki_dir = cfg["controlplane"]["pki_dir"]
    placed = [(e["name"], e["mode"]) for e in entries if e["kind"] == "pillar"]
    assert placed == [
        ("ca.pem", "0644"),
        ("ca-key.pem", "0600"),
        ("kubernetes.pem", "0644"),
        ("kubernetes-key.pem", "0600"),
        ("service-account.pem", "0644"),
        ("service-account-key.pem", "0600"),
        ("admin.kubeconfig", "0600"),
        ("kube-controller-manager.kubeconfig", "0600"),
        ("kube-scheduler.kubeconfig", "0600"),
    ]
    assert placed == [(n, m) for n, m in k8s_pki.PILLAR_FILES]
    assert {e["kind"] for e in entries} == {"directory", "pillar", "template", "signer"}
    assert [e["name"] for e in entries if e["kind"] == "signer"] == ["ca-signer.pem"]
    assert all(e["path"] == f"{pki_dir}/{e['name']}" for e in entries if e["kind"] == "pillar")
    # nothing is made on the controller: no key, no certificate, no kubeconfig build
    assert not [e for e in entries if e["kind"] in ("key", "certificate", "kubeconfig")]
    with_etcd = k8s_pki.pki_plan(pillar_config(etcd_managed=True), "k8s-controller-1")
    etcd_dir = cfg["etcd"]["config_dir"]
    assert [(e["kind"], e["path"], e.get("mode")) for e in with_etcd if e["sls"] == "etcd"] == [
        ("directory", etcd_dir, None),
        ("pillar", f"{etcd_dir}/ca.pem", "0644"),
        ("pillar", f"{etcd_dir}/kubernetes.pem", "0644"),
        ("pillar", f"{etcd_dir}/kubernetes-key.pem", "0600"),
    ]


def test_the_kubelet_client_certificate_per_source(k8s_pki):
    salt_cfg, pillar_cfg = salt_config(), pillar_config()
    d = salt_cfg["controlplane"]["pki_dir"]
    assert k8s_pki.client_files(salt_cfg)["kubelet"] == (
        f"{d}/ca.pem",
        f"{d}/apiserver-kubelet-client.pem",
        f"{d}/apiserver-kubelet-client-key.pem",
    )
    assert k8s_pki.client_files(pillar_cfg)["kubelet"] == (
        f"{d}/ca.pem",
        f"{d}/kubernetes.pem",
        f"{d}/kubernetes-key.pem",
    )


# --------------------------------------------------------------------------
# Signing policies
# --------------------------------------------------------------------------

PINNED = {
    "apiserver": ("kubernetes", "Kubernetes", "serverAuth, clientAuth"),
    "apiserver-kubelet-client": ("kubernetes", "Kubernetes", "clientAuth"),
    "service-account": ("service-accounts", "Kubernetes", "clientAuth"),
    "admin": ("admin", "system:masters", "clientAuth"),
    "kube-controller-manager": (
        "system:kube-controller-manager",
        "system:kube-controller-manager",
        "clientAuth",
    ),
    "kube-scheduler": ("system:kube-scheduler", "system:kube-scheduler", "clientAuth"),
    "etcd": ("etcd", "Kubernetes", "serverAuth, clientAuth"),
}


def test_signing_policies_pin_subject_and_usages(k8s_pki):
    policies = k8s_pki.signing_policies("hardway")
    assert set(policies) == {f"k8s_control_plane-hardway-{kind}" for kind in PINNED}
    for kind, (cn, org, usages) in PINNED.items():
        policy = policies[f"k8s_control_plane-hardway-{kind}"]
        assert (policy["CN"], policy["O"], policy["extendedKeyUsage"]) == (cn, org, usages)
        assert policy["basicConstraints"] == "critical, CA:false"
        assert policy["keyUsage"] == "critical, digitalSignature, keyEncipherment"
        assert "days_valid" not in policy
    assert k8s_pki.signing_policies("other").keys().isdisjoint(policies)
    limited = k8s_pki.signing_policies("hardway", days_valid=90)
    assert {p["days_valid"] for p in limited.values()} == {90}


@pytest.fixture(scope="module")
def x509_mods():
    """Salt's x509 module (x509_v2) through Salt's loader, with the hardway policies in pillar."""
    opts = salt.config.minion_config(None)
    opts["file_client"] = "local"
    opts["pillar"] = {"x509_signing_policies": utils_package().pki.signing_policies("hardway")}
    return salt.loader.minion_mods(opts, whitelist=["x509", "pillar", "config"])


def _ca(mods):
    key = mods["x509.create_private_key"](algo="ec", keysize=256)
    cert = mods["x509.create_certificate"](
        signing_private_key=key,
        subject={"CN": "Test CA"},
        basicConstraints="critical, CA:true",
        keyUsage="critical, cRLSign, keyCertSign",
        subjectKeyIdentifier="hash",
        days_valid=30,
    )
    return cert, key


def _ekus(cert):
    value = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    return set(value)


@pytest.mark.parametrize("kind", sorted(PINNED))
def test_a_request_cannot_change_what_a_policy_pins(x509_mods, kind):
    """Salt's real x509_v2: a request for cluster-admin and server use gets the policy's."""
    ca_pem, ca_key = _ca(x509_mods)
    pem = x509_mods["x509.create_certificate"](
        signing_private_key=ca_key,
        signing_cert=ca_pem,
        private_key=x509_mods["x509.create_private_key"](algo="ec", keysize=256),
        signing_policy=f"k8s_control_plane-hardway-{kind}",
        CN="intruder",
        O="system:masters",
        extendedKeyUsage="serverAuth, clientAuth, codeSigning",
        basicConstraints="critical, CA:true",
        days_valid=1,
    )
    cert = x509.load_pem_x509_certificate(pem.encode())
    cn, org, usages = PINNED[kind]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        org
    ]
    names = {
        "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
        "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    assert _ekus(cert) == {names[u.strip()] for u in usages.split(",")}
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))


# --------------------------------------------------------------------------
# Which service watches which file
# --------------------------------------------------------------------------


def _watched(k8s_pki, cfg, service):
    entries = k8s_pki.pki_plan(cfg, "k8s-controller-1")
    ids = {k8s_pki.pki_state_id(ROOT, e): e for e in entries}
    found = []
    for requisite in k8s_pki.pki_watch_for(ROOT, entries, service):
        ((module, sid),) = requisite.items()
        entry = ids[sid]  # every requisite names a planned state
        assert module == k8s_pki.pki_requisite_module(entry)
        found.append((module, entry["path"]))
    return found


def test_watch_kube_scheduler_only_its_kubeconfig(k8s_pki):
    cfg = salt_config(etcd_managed=True)
    d = cfg["controlplane"]["pki_dir"]
    assert _watched(k8s_pki, cfg, "kube-scheduler") == [
        ("k8s_pki", f"{d}/kube-scheduler.kubeconfig")
    ]
    entries = k8s_pki.pki_plan(cfg, "k8s-controller-1")
    assert k8s_pki.pki_watch_for(ROOT, entries, "kube-scheduler") == [
        {"k8s_pki": "k8s_control_plane-pki-k8s_pki-kubeconfig_managed-kube-scheduler.kubeconfig"}
    ]
    pillar_cfg = pillar_config()
    assert k8s_pki.pki_watch_for(
        ROOT, k8s_pki.pki_plan(pillar_cfg, "k8s-controller-1"), "kube-scheduler"
    ) == [{"file": "k8s_control_plane-pki-file-managed-kube-scheduler.kubeconfig"}]


def test_watch_etcd_only_the_files_of_pki_etcd(k8s_pki):
    cfg = salt_config(etcd_managed=True)
    e = cfg["etcd"]["config_dir"]
    assert _watched(k8s_pki, cfg, "etcd") == [
        ("file", f"{e}/ca.pem"),
        ("file", f"{e}/ca-key.pem"),
        ("x509", f"{e}/etcd-key.pem"),
        ("x509", f"{e}/etcd.pem"),
    ]
    entries = k8s_pki.pki_plan(cfg, "k8s-controller-1")
    assert k8s_pki.pki_watch_for(ROOT, entries, "etcd") == [
        {"file": "k8s_control_plane-pki-etcd-file-managed-ca.pem"},
        {"file": "k8s_control_plane-pki-etcd-file-managed-ca-key.pem"},
        {"x509": "k8s_control_plane-pki-etcd-x509-private_key_managed-etcd-key.pem"},
        {"x509": "k8s_control_plane-pki-etcd-x509-certificate_managed-etcd.pem"},
    ]
    pillar_cfg = pillar_config(etcd_managed=True)
    assert _watched(k8s_pki, pillar_cfg, "etcd") == [
        ("file", f"{e}/ca.pem"),
        ("file", f"{e}/kubernetes.pem"),
        ("file", f"{e}/kubernetes-key.pem"),
    ]
    # without a managed etcd there is nothing for it to watch
    assert _watched(k8s_pki, salt_config(), "etcd") == []


def test_watch_apiserver_and_controller_manager(k8s_pki):
    cfg = salt_config(etcd_managed=True)
    d = cfg["controlplane"]["pki_dir"]
    assert _watched(k8s_pki, cfg, "kube-apiserver") == [
        ("file", f"{d}/ca.pem"),
        ("x509", f"{d}/kubernetes-key.pem"),
        ("x509", f"{d}/kubernetes.pem"),
        ("x509", f"{d}/apiserver-kubelet-client-key.pem"),
        ("x509", f"{d}/apiserver-kubelet-client.pem"),
        ("file", f"{d}/{SA_KEY}"),  # the cluster's one key, placed from the master's pillar
        ("x509", f"{d}/service-account.pem"),
        ("file", f"{d}/encryption-config.yaml"),
    ]
    assert _watched(k8s_pki, cfg, "kube-controller-manager") == [
        ("file", f"{d}/ca.pem"),
        ("file", f"{d}/ca-key.pem"),
        ("k8s_pki", f"{d}/ca-signer.pem"),
        ("file", f"{d}/{SA_KEY}"),
        ("k8s_pki", f"{d}/kube-controller-manager.kubeconfig"),
    ]
    # a new service-account key from the master restarts both readers
    entries = k8s_pki.pki_plan(cfg, "k8s-controller-1")
    sa_key = {"file": "k8s_control_plane-pki-file-managed-service-account-key.pem"}
    for service in ("kube-apiserver", "kube-controller-manager"):
        assert sa_key in k8s_pki.pki_watch_for(ROOT, entries, service)
    assert sa_key not in k8s_pki.pki_watch_for(ROOT, entries, "kube-scheduler")
    # the files of etcd's own directory never restart a control plane component
    for service in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        for _, path in _watched(k8s_pki, cfg, service):
            assert not path.startswith(cfg["etcd"]["config_dir"] + "/")


def test_state_ids(k8s_pki):
    cfg = salt_config(etcd_managed=True)
    ids = [k8s_pki.pki_state_id(ROOT, e) for e in k8s_pki.pki_plan(cfg, "k8s-controller-1")]
    assert len(ids) == len(set(ids))
    assert "k8s_control_plane-pki-ca-file-directory-var_lib_kubernetes" in ids
    assert "k8s_control_plane-pki-etcd-file-directory-etc_etcd" in ids
    assert "k8s_control_plane-pki-ca-file-managed-ca-key.pem" in ids
    assert "k8s_control_plane-pki-x509-certificate_managed-kubernetes.pem" in ids
    assert "k8s_control_plane-pki-file-managed-encryption-config.yaml" in ids


def test_kubeconfig_text_embeds_the_three_files(k8s_pki):
    text = k8s_pki.kubeconfig_text(
        "kubernetes", "https://127.0.0.1:6443", "CA\n", "CERT\n", "KEY\n", "admin"
    )
    assert text.startswith("# Managed by Salt")
    doc = yaml.safe_load(text)
    cluster = doc["clusters"][0]
    user = doc["users"][0]
    assert cluster["name"] == "kubernetes"
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == b"CA\n"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == b"CERT\n"
    assert base64.b64decode(user["user"]["client-key-data"]) == b"KEY\n"
    assert user["name"] == "admin"
    assert doc["contexts"][0]["context"] == {"cluster": "kubernetes", "user": "admin"}
    assert doc["current-context"] == doc["contexts"][0]["name"]


# --------------------------------------------------------------------------
# Validation of pki:source salt
# --------------------------------------------------------------------------


def test_a_salt_cluster_with_what_the_master_gives_is_valid():
    assert rules().validate_config(salt_config()) == []
    assert rules().validate_config(salt_config(etcd_managed=True)) == []


@pytest.mark.parametrize("name", LEAF_SECRETS)
def test_leaf_secrets_are_refused_with_source_salt(name):
    pillar = salt_pillar()
    full = cluster_pillar("hardway")["secrets"]
    pillar["secrets"][name] = full[name]
    errors = rules().validate_config(merged_config(pillar))
    found = errors_for(errors, f"secrets:{name}")
    assert len(found) == 1, errors
    assert "pki:source salt" in found[0] and "pki:source: pillar" in found[0]
    assert len(errors) == 1, errors
    # an error never quotes the secret
    for line in full[name].splitlines():
        if len(line) > 20:
            assert line not in "\n".join(errors)


def test_every_leaf_secret_is_named_at_once():
    pillar = salt_pillar()
    pillar["secrets"] = copy.deepcopy(cluster_pillar("hardway")["secrets"])
    errors = rules().validate_config(merged_config(pillar))
    assert sorted(e.split(": ")[0] for e in errors) == sorted(
        f"k8s_control_plane:secrets:{n}" for n in LEAF_SECRETS
    )
    # the service-account key is the master's to give, not a leaf secret
    assert not errors_for(errors, f"secrets:{SA_KEY}")


@pytest.mark.parametrize("etcd_managed", [False, True])
def test_the_service_account_key_is_required_with_source_salt(etcd_managed):
    pillar = salt_pillar()
    if etcd_managed:
        pillar["etcd"] = {
            **pillar.get("etcd", {}),
            "managed": True,
            "version": "3.4.23",
            "release_url": "https://example.invalid/etcd",
        }
    del pillar["secrets"][SA_KEY]
    errors = rules().validate_config(merged_config(pillar))
    # named on its own key, saying who gives it; not in the list of missing CA files
    assert errors == [SA_KEY_MISSING]
    assert not errors_for(errors, "secrets")


def test_a_missing_service_account_key_is_still_a_missing_file_with_source_pillar():
    pillar = cluster_pillar("hardway")
    assert pillar.get("pki", {}).get("source", "pillar") == "pillar"
    del pillar["secrets"][SA_KEY]
    errors = rules().validate_config(merged_config(pillar))
    assert errors == [
        "k8s_control_plane:secrets: missing service-account-key.pem (see docs/pki.md, 'Secrets')"
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("certificate", "is not an unencrypted PEM private key that parses", id="cert"),
        pytest.param("not a key", "is not PEM (no '-----BEGIN' line)", id="not-pem"),
        pytest.param(["a", "list"], "expected the file's text, got list", id="list"),
    ],
)
def test_a_service_account_key_that_is_no_key_is_refused_with_source_salt(value, problem):
    full = cluster_pillar("hardway")["secrets"]
    pillar = salt_pillar()
    if value == "certificate":  # the certificate offered as the key
        value = full["service-account.pem"]
    pillar["secrets"][SA_KEY] = value
    errors = rules().validate_config(merged_config(pillar))
    assert errors == [f"k8s_control_plane:secrets:{SA_KEY}: {problem}"]


@pytest.mark.parametrize("missing", ["ca.pem", "ca-key.pem"])
def test_the_ca_is_required_with_source_salt(missing):
    pillar = salt_pillar()
    del pillar["secrets"][missing]
    errors = rules().validate_config(merged_config(pillar))
    found = errors_for(errors, "secrets")
    assert len(found) == 1 and f"missing {missing} " in found[0], errors
    # an unmanaged etcd (the seed's): the master makes no CA, so the hint says who gives it
    assert "with etcd:managed false the master makes no CA" in found[0]


def test_the_encryption_key_is_required_with_source_salt():
    pillar = salt_pillar()
    del pillar["secrets"]["encryption_key"]
    errors = rules().validate_config(merged_config(pillar))
    assert errors_for(errors, "secrets:encryption_key") == [
        "k8s_control_plane:secrets:encryption_key: "
        "missing (the master's ext_pillar k8s_pki gives it)"
    ]


def test_no_secrets_at_all_names_the_four():
    pillar = salt_pillar()
    pillar["secrets"] = {}
    errors = rules().validate_config(merged_config(pillar))
    assert len(errors) == 3, errors
    # the CA (one error for both files), then the service-account key, then the encryption key
    assert errors[0].startswith("k8s_control_plane:secrets: missing ca.pem, ca-key.pem (")
    assert SA_KEY not in errors[0]
    assert errors[1] == SA_KEY_MISSING
    assert errors_for(errors, "secrets:encryption_key") == [errors[2]]


def test_the_ca_key_must_be_the_ca_certificate_key_with_source_salt():
    pillar = salt_pillar()
    pillar["secrets"]["ca-key.pem"] = cluster_pillar("example")["secrets"]["ca-key.pem"]
    errors = rules().validate_config(merged_config(pillar))
    assert errors == [
        "k8s_control_plane:secrets:ca-key.pem: "
        "is not the key of secrets:ca.pem (their public keys differ)"
    ]


def test_a_ca_that_is_not_a_ca_is_refused_with_source_salt():
    full = cluster_pillar("hardway")["secrets"]
    pillar = salt_pillar()
    # the apiserver's own certificate and key offered as the CA (CA:false, no keyCertSign)
    pillar["secrets"]["ca.pem"] = full["kubernetes.pem"]
    pillar["secrets"]["ca-key.pem"] = full["kubernetes-key.pem"]
    errors = rules().validate_config(merged_config(pillar))
    assert errors_for(errors, "secrets:ca.pem"), errors


@pytest.mark.parametrize(("days", "renew"), [(30, 30), (30, 31), (1, 1), (365, 3649)])
def test_renew_before_days_must_be_below_days_valid(days, renew):
    errors = rules().validate_config(salt_config(days_valid=days, renew_before_days=renew))
    found = errors_for(errors, "pki:renew_before_days")
    assert len(found) == 1, errors
    assert f"{renew} is not below pki:days_valid ({days})" in found[0]


@pytest.mark.parametrize(("days", "renew"), [(30, 29), (2, 1), (3650, 3649)])
def test_renew_before_days_below_days_valid_is_valid(days, renew):
    assert rules().validate_config(salt_config(days_valid=days, renew_before_days=renew)) == []


def test_an_unknown_source_names_the_valid_ones():
    errors = rules().validate_config(salt_config(source="vault"))
    assert errors_for(errors, "pki:source") == [
        "k8s_control_plane:pki:source: 'vault' is invalid; valid: salt, pillar"
    ]


# --------------------------------------------------------------------------
# The master's ext_pillar
# --------------------------------------------------------------------------


def _hardway(etcd_managed=True):
    """The seed's cluster as the lab runs it: etcd managed (the master makes a CA only then)."""
    text = (REPO / "pillar" / "hardway.sls").read_text(encoding="utf-8")
    cfg = yaml.safe_load(text)["k8s_control_plane"]
    cfg["etcd"] = {**cfg.get("etcd", {}), "managed": etcd_managed}
    return cfg


def test_an_unmanaged_etcd_gets_no_ca_from_the_master(ext, tmp_path):
    """
    An external etcd trusts a CA of its own: the master makes none, the operator gives it.
    The service-account key has nothing to do with etcd: it is made all the same.
    """
    given = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway(False)})
    secrets = given["k8s_control_plane"]["secrets"]
    assert set(secrets) == {"encryption_keys", SA_KEY, "backup_key"}
    assert given["x509_signing_policies"]
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    assert not (directory / "ca.pem").exists() and not (directory / "ca-key.pem").exists()
    assert (directory / SA_KEY).read_text() == secrets[SA_KEY]
    assert _mode(directory / SA_KEY) == 0o600
    # every controller of the cluster gets that one key
    for minion_id in ("k8s-controller-2", "k8s-controller-3"):
        again = ext.ext_pillar(minion_id, {"k8s_control_plane": _hardway(False)})
        assert again == given
    # managing etcd later adds the CA and keeps the service-account key
    managed = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway(True)})
    assert set(managed["k8s_control_plane"]["secrets"]) == set(EXT_GIVES)
    assert managed["k8s_control_plane"]["secrets"][SA_KEY] == secrets[SA_KEY]


def test_the_backup_key_is_made_with_either_pki_source(ext, tmp_path):
    """
    The snapshots' backup key is not PKI: a cluster that brings its own certificates
    (pki:source pillar) gets it from the master all the same, and nothing else; a key the
    pillar gives is left alone; a minion the cluster does not list gets nothing.
    """
    cfg = {**_hardway(), "pki": {"source": "pillar"}}
    given = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": cfg})
    assert given == {"k8s_control_plane": {"secrets": {"backup_key": ANY_KEY}}}
    key = given["k8s_control_plane"]["secrets"]["backup_key"]
    assert len(base64.b64decode(key, validate=True)) == 32
    path = tmp_path / "master-pki" / "k8s_control_plane" / "hardway" / "backup_key"
    assert path.read_text().strip() == key and _mode(path) == 0o600
    assert ext.ext_pillar("k8s-controller-3", {"k8s_control_plane": cfg}) == given
    # with pki:source salt it is the same key
    salt_given = ext.ext_pillar("k8s-controller-2", {"k8s_control_plane": _hardway()})
    assert salt_given["k8s_control_plane"]["secrets"]["backup_key"] == key
    own = {**cfg, "secrets": {"backup_key": base64.b64encode(bytes(32)).decode()}}
    assert ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": own}) == {
        "k8s_control_plane": {"secrets": {}}
    }
    assert ext.ext_pillar("not-a-controller", {"k8s_control_plane": cfg}) == {}


def test_a_backup_key_given_must_be_32_bytes():
    pillar = salt_pillar()
    pillar["secrets"]["backup_key"] = base64.b64encode(bytes(16)).decode()
    errors = rules().validate_config(merged_config(pillar))
    assert errors == [
        "k8s_control_plane:secrets:backup_key: valid: base64 of 32 bytes (AES-256-GCM; "
        "the master's ext_pillar k8s_pki makes one)"
    ]


class _AnyKey:
    def __eq__(self, other):
        return isinstance(other, str) and len(other) == 44


ANY_KEY = _AnyKey()


def test_the_validation_says_who_gives_the_ca_of_an_unmanaged_etcd():
    pillar = salt_pillar()
    for name in ("ca.pem", "ca-key.pem"):
        del pillar["secrets"][name]
    errors = rules().validate_config(merged_config(pillar))
    assert len(errors) == 1 and "with etcd:managed false the master makes no CA" in errors[0]


def test_etcd_cannot_share_the_control_plane_pki_dir():
    pillar = salt_pillar()
    pillar["etcd"] = {**pillar.get("etcd", {}), "managed": True, "version": "3.4.23"}
    pillar["etcd"].update(release_url="https://example.invalid/etcd")
    pillar["etcd"]["config_dir"] = "/var/lib/kubernetes"
    errors = rules().validate_config(merged_config(pillar))
    assert errors_for(errors, "etcd:config_dir"), errors


@pytest.fixture
def ext(tmp_path, x509_functions):
    """_pillar/k8s_pki.py with its dunders: the real x509 functions, the real utils."""
    module = load_file(REPO / "_pillar" / "k8s_pki.py", "k8s_test_pillar_k8s_pki")
    module.__salt__ = dict(x509_functions)
    module.__utils__ = utils_mapping()
    module.__opts__ = {"pki_dir": str(tmp_path / "master-pki")}
    return module


def _spki(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_ca_is_made_once_and_kept_root_only(ext, tmp_path):
    first = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway()})
    secrets = first["k8s_control_plane"]["secrets"]
    assert set(secrets) == set(EXT_GIVES)
    base = tmp_path / "master-pki" / "k8s_control_plane"
    directory = base / "hardway"
    assert _mode(base) == 0o700 and _mode(directory) == 0o700
    for name in MASTER_FILES:
        assert _mode(directory / name) == 0o600, name
    assert (directory / "ca.pem").read_text() == secrets["ca.pem"]
    assert (directory / "ca-key.pem").read_text() == secrets["ca-key.pem"]
    assert _mode(directory / ".lock") == 0o600
    assert sorted(p.name for p in directory.iterdir()) == [".lock", *sorted(MASTER_FILES)]
    # the second call (another controller, a pillar refresh) gives the same CA and key
    for minion_id in ("k8s-controller-1", "k8s-controller-2", "k8s-controller-3"):
        again = ext.ext_pillar(minion_id, {"k8s_control_plane": _hardway()})
        assert again == first
    assert first["x509_signing_policies"] == utils_package().pki.signing_policies("hardway")


def test_the_service_account_key_is_made_once_per_cluster(ext, tmp_path):
    """
    One signing key for the whole cluster, not one per controller: a ServiceAccount token one
    apiserver signs verifies on every other. Made once, kept root-only beside the CA, given
    alike to every controller and on every later call (a pillar refresh, a master restart).
    """
    first = ext.ext_pillar("k8s-controller-2", {"k8s_control_plane": _hardway()})
    pem = first["k8s_control_plane"]["secrets"][SA_KEY]
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    assert (directory / SA_KEY).read_text() == pem
    assert _mode(directory / SA_KEY) == 0o600 and _mode(directory) == 0o700
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    # neither the CA's key nor anything else the master gives
    secrets = first["k8s_control_plane"]["secrets"]
    assert pem not in {secrets[n] for n in ("ca.pem", "ca-key.pem")}
    ca_key = serialization.load_pem_private_key(secrets["ca-key.pem"].encode(), password=None)
    assert _spki(ca_key.public_key()) != _spki(key.public_key())
    for _ in range(2):
        for minion_id in ("k8s-controller-1", "k8s-controller-2", "k8s-controller-3"):
            again = ext.ext_pillar(minion_id, {"k8s_control_plane": _hardway()})
            assert again["k8s_control_plane"]["secrets"][SA_KEY] == pem
    assert (directory / SA_KEY).read_text() == pem
    # a fresh module (another master worker) reads the kept key, it does not make another
    other = load_file(REPO / "_pillar" / "k8s_pki.py", "k8s_test_pillar_k8s_pki_other")
    other.__salt__, other.__utils__, other.__opts__ = ext.__salt__, ext.__utils__, ext.__opts__
    given = other.ext_pillar("k8s-controller-3", {"k8s_control_plane": _hardway()})
    assert given["k8s_control_plane"]["secrets"][SA_KEY] == pem


def test_the_ca_is_a_ca_and_the_encryption_key_32_bytes(ext):
    given = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway()})
    secrets = given["k8s_control_plane"]["secrets"]
    ca = x509.load_pem_x509_certificate(secrets["ca.pem"].encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    ca.verify_directly_issued_by(ca)
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert lifetime >= datetime.timedelta(days=3649)
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == (
        "CA hardway"
    )
    [key1] = secrets["encryption_keys"]
    assert key1["name"] == "key1"
    assert len(base64.b64decode(key1["secret"], validate=True)) == 32
    assert "\n" not in key1["secret"]
    # the validation accepts what the master gives
    pillar = {**_hardway(), "secrets": dict(secrets)}
    pillar["etcd"].update(version="3.4.23", release_url="https://example.invalid/etcd")
    assert rules().validate_config(merged_config(pillar)) == []


def test_each_cluster_has_its_own_ca(ext):
    hardway = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway()})
    other = {**_hardway(), "cluster": "other"}
    second = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": other})
    a, b = hardway["k8s_control_plane"]["secrets"], second["k8s_control_plane"]["secrets"]
    assert a["ca-key.pem"] != b["ca-key.pem"] and a["encryption_keys"] != b["encryption_keys"]
    assert a[SA_KEY] != b[SA_KEY]
    assert set(second["x509_signing_policies"]) == {
        f"k8s_control_plane-other-{kind}" for kind in PINNED
    }


@pytest.mark.parametrize(
    "pillar",
    [
        pytest.param({}, id="no-cluster"),
        pytest.param({"k8s_control_plane": "text"}, id="not-a-mapping"),
        pytest.param({"k8s_control_plane": {**_hardway(), "cluster": "Bad Name!"}}, id="bad-name"),
        pytest.param({"k8s_control_plane": {**_hardway(), "cluster": "../escape"}}, id="traversal"),
        pytest.param({"k8s_control_plane": {**_hardway(), "cluster": None}}, id="no-name"),
    ],
)
def test_nothing_for_a_minion_without_a_usable_cluster(ext, tmp_path, pillar):
    assert ext.ext_pillar("k8s-controller-1", pillar) == {}
    assert not (tmp_path / "master-pki").exists()


def test_a_minion_not_listed_gets_nothing(ext, tmp_path):
    for minion_id in ("k8s-worker-1", "k8s-controller-4", "k8s-controller"):
        assert ext.ext_pillar(minion_id, {"k8s_control_plane": _hardway()}) == {}
    assert not (tmp_path / "master-pki").exists()


def test_source_pillar_gets_only_the_backup_key(ext, tmp_path):
    cfg = {**_hardway(), "pki": {"source": "pillar"}}
    given = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": cfg})
    assert set(given["k8s_control_plane"]["secrets"]) == {"backup_key"}
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    assert sorted(p.name for p in directory.iterdir()) == [".lock", "backup_key"]


def test_an_operator_ca_is_left_alone(ext, tmp_path):
    full = cluster_pillar("hardway")["secrets"]
    cfg = {
        **_hardway(),
        "secrets": {"ca.pem": full["ca.pem"], "ca-key.pem": full["ca-key.pem"]},
    }
    given = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": cfg})
    # only the encryption key and the service-account key are given: the pillar's CA stays
    # what the operator wrote
    assert set(given["k8s_control_plane"]["secrets"]) == {"encryption_keys", SA_KEY, "backup_key"}
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    assert not (directory / "ca.pem").exists() and not (directory / "ca-key.pem").exists()
    # and a kept encryption key and service-account key too
    cfg["secrets"]["encryption_key"] = full["encryption_key"]
    cfg["secrets"][SA_KEY] = full[SA_KEY]
    cfg["secrets"]["backup_key"] = given["k8s_control_plane"]["secrets"]["backup_key"]
    again = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": cfg})
    assert again["k8s_control_plane"]["secrets"] == {}
    assert again["x509_signing_policies"] == given["x509_signing_policies"]


@pytest.mark.parametrize("etcd_managed", [False, True])
def test_an_operator_service_account_key_is_left_alone(ext, tmp_path, etcd_managed):
    """
    A service-account key the pillar already holds (say, the cluster's key from before it
    moved to pki:source salt, so that its tokens stay valid) is neither replaced nor copied.
    """
    full = cluster_pillar("hardway")["secrets"]
    cfg = {**_hardway(etcd_managed), "secrets": {SA_KEY: full[SA_KEY]}}
    given = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": cfg})
    secrets = given["k8s_control_plane"]["secrets"]
    assert SA_KEY not in secrets
    wanted = {"encryption_keys", "backup_key"} | (
        {"ca.pem", "ca-key.pem"} if etcd_managed else set()
    )
    assert set(secrets) == wanted
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    assert not (directory / SA_KEY).exists()
    # and the operator's key, not the master's, is what the validation sees: valid as is
    pillar = {**cfg, "secrets": {**cfg["secrets"], **secrets}}
    pillar["etcd"] = {
        **pillar["etcd"],
        "version": "3.4.23",
        "release_url": "https://example.invalid/etcd",
    }
    if not etcd_managed:  # the operator gives the external etcd's CA
        pillar["secrets"].update({n: full[n] for n in ("ca.pem", "ca-key.pem")})
    assert rules().validate_config(merged_config(pillar)) == []
    assert merged_config(pillar)["secrets"][SA_KEY] == full[SA_KEY]


def test_a_permissive_directory_is_made_root_only(ext, tmp_path):
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    directory.mkdir(parents=True)
    for path in (directory.parent, directory):
        path.chmod(0o755)
    ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway()})
    assert _mode(directory.parent) == 0o700 and _mode(directory) == 0o700


def test_a_key_left_without_its_certificate_is_replaced(ext, tmp_path):
    """A crash between the key and the certificate: the next call makes a whole CA."""
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    directory.mkdir(parents=True, mode=0o700)
    (directory / "ca-key.pem").write_text("left over\n")
    given = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway()})
    secrets = given["k8s_control_plane"]["secrets"]
    ca = x509.load_pem_x509_certificate(secrets["ca.pem"].encode())
    key = serialization.load_pem_private_key(secrets["ca-key.pem"].encode(), password=None)
    assert _spki(key.public_key()) == _spki(ca.public_key())
    assert (directory / "ca-key.pem").read_text() == secrets["ca-key.pem"]
    assert _mode(directory / "ca-key.pem") == 0o600


def test_a_configured_dir_is_used(ext, tmp_path):
    target = tmp_path / "srv-k8s-pki"
    given = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway()}, dir=str(target))
    assert (target / "hardway" / "ca.pem").read_text() == (
        given["k8s_control_plane"]["secrets"]["ca.pem"]
    )
    assert not (tmp_path / "master-pki").exists()


def test_concurrent_threads_end_with_one_ca(ext, tmp_path):
    count = 8
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def worker(index):
        try:
            barrier.wait()
            minion_id = f"k8s-controller-{index % 3 + 1}"
            results[index] = ext.ext_pillar(minion_id, {"k8s_control_plane": _hardway()})
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    kept = {name: (directory / name).read_text() for name in ("ca.pem", "ca-key.pem", SA_KEY)}
    for result in results:
        secrets = result["k8s_control_plane"]["secrets"]
        assert {n: secrets[n] for n in kept} == kept
        assert secrets == results[0]["k8s_control_plane"]["secrets"]
    ca = x509.load_pem_x509_certificate(kept["ca.pem"].encode())
    key = serialization.load_pem_private_key(kept["ca-key.pem"].encode(), password=None)
    assert _spki(key.public_key()) == _spki(ca.public_key())


def _process_worker(module, barrier, queue, minion_id):
    try:
        barrier.wait()
        given = module.ext_pillar(minion_id, {"k8s_control_plane": _hardway()})
        queue.put(("ok", given["k8s_control_plane"]["secrets"]))
    except Exception as exc:  # reported by the parent
        queue.put(("error", repr(exc)))


def test_concurrent_processes_end_with_one_ca(ext, tmp_path):
    """Master workers compile pillars in parallel processes: one CA survives."""
    count = 6
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(count)
    queue = context.Queue()
    processes = [
        context.Process(
            target=_process_worker, args=(ext, barrier, queue, f"k8s-controller-{i % 3 + 1}")
        )
        for i in range(count)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert [r for r in results if r[0] != "ok"] == []
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"
    kept = {name: (directory / name).read_text() for name in MASTER_FILES}
    for _, secrets in results:
        assert secrets["ca.pem"] == kept["ca.pem"]
        assert secrets["ca-key.pem"] == kept["ca-key.pem"]
        assert secrets["encryption_keys"] == [
            {"name": "key1", "secret": kept["encryption_key"].strip()}
        ]
        assert secrets[SA_KEY] == kept[SA_KEY]  # one service-account key survives too
    # the key kept is the certificate's key
    ca = x509.load_pem_x509_certificate(kept["ca.pem"].encode())
    key = serialization.load_pem_private_key(kept["ca-key.pem"].encode(), password=None)
    assert _spki(key.public_key()) == _spki(ca.public_key())


ENCRYPTION = {"source": ["salt://x/encryption-config.yaml.jinja"], "api_version": "v1", "kind": "K"}


@pytest.mark.parametrize("source", ["salt", "pillar"])
def test_pki_sls_states_cover_the_plan_once_and_hold_no_content(source):
    """The three pki SLS files' state data: every planned file once, in the SLS that plans
    it, each file state behind its directory's symlink guard, and no content."""
    build = utils_package().pki_states.pki_sls_states
    cfg = salt_config(etcd_managed=True) if source == "salt" else pillar_config(etcd_managed=True)
    validated = f"{ROOT}.cluster.validate"
    plan = utils_package().pki.pki_plan(cfg, "k8s-controller-1")
    seen = {}
    for sls in ("ca", "init", "etcd"):
        states = build(cfg, "k8s-controller-1", sls, validated, ENCRYPTION)
        for sid, body in states.items():
            assert sid not in seen, sid
            seen[sid] = sls
            ((fun, args),) = body.items()
            flat = {k: v for arg in args for k, v in arg.items()}
            assert not {"contents", "text", "new_key"} & set(flat), sid
            if fun not in ("file.directory", "k8s_pki.no_symlinks"):
                guards = [r for r in flat["require"] if "k8s_pki" in r]
                assert len(guards) == 1 and "no_symlinks" in guards[0]["k8s_pki"], sid
    planned = {utils_package().pki.pki_state_id(ROOT, e): e["sls"] for e in plan}
    assert {sid: sls for sid, sls in seen.items() if sid in planned} == planned
    pillar_files = [e for e in plan if e["kind"] == "pillar"]
    for entry in pillar_files:
        sid = utils_package().pki.pki_state_id(ROOT, entry)
        assert seen[sid] == entry["sls"]


def test_pki_sls_states_refuse_an_unknown_sls_and_a_missing_encryption_source():
    build = utils_package().pki_states.pki_sls_states
    cfg = salt_config()
    validated = f"{ROOT}.cluster.validate"
    with pytest.raises(ValueError, match="unknown pki sls 'kube'; valid: ca, init, etcd"):
        build(cfg, "k8s-controller-1", "kube", validated)
    with pytest.raises(ValueError, match=r"encryption-config\.yaml: pass encryption"):
        build(cfg, "k8s-controller-1", "init", validated)
    assert build(cfg, "k8s-controller-1", "ca", validated)  # ca plans no template


def test_a_ca_rotation_gives_the_bundle_and_the_signing_key_of_each_phase(ext, tmp_path):
    """
    trust: old + new, the old key; sign: new + old, the new key (made once, by the ext_pillar,
    with its label in OU); drop swaps the master's files: the new CA alone.
    """
    ca = utils_package().ca_rotation
    directory = tmp_path / "master-pki" / "k8s_control_plane" / "hardway"

    def given():
        secrets = ext.ext_pillar("k8s-controller-1", {"k8s_control_plane": _hardway()})
        secrets = secrets["k8s_control_plane"]["secrets"]
        certs = [
            x509.load_pem_x509_certificate(("-----BEGIN CERTIFICATE-----" + b).encode())
            for b in secrets["ca.pem"].split("-----BEGIN CERTIFICATE-----")[1:]
        ]
        return certs, secrets["ca-key.pem"]

    (old,), old_key = given()
    ca.write_ca_rotation(str(directory), {"phase": "trust", "label": "20261206T190000Z"})
    (first, second), key = given()
    assert (_spki(first.public_key()), key) == (_spki(old.public_key()), old_key)
    unit = second.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert unit == "CA hardway 20261206T190000Z"
    assert _mode(directory / "ca-next-key.pem") == 0o600
    ca.write_ca_rotation(str(directory), {"phase": "sign", "label": "20261206T190000Z"})
    (first2, second2), key2 = given()
    assert first2 == second and second2 == old
    signing = serialization.load_pem_private_key(key2.encode(), password=None)
    assert _spki(signing.public_key()) == _spki(second.public_key())
    ca.write_ca_rotation(str(directory), {"phase": "drop", "label": "20261206T190000Z"})
    ca.retire_ca_files(str(directory), "20261206T200000Z")
    ca.write_ca_rotation(str(directory), None)
    (only,), key3 = given()
    assert only == second and key3 == key2
