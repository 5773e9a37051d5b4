"""
The cluster PKI's pure rules (no I/O): which files a controller holds, what
each certificate is (its signing policy, its SANs), which service reads each
file, and the kubeconfig text built from a certificate.

Two sources, chosen per cluster with ``pki:source``:

``salt`` (the default)
    The master keeps the cluster's CA and encryption key (``_pillar/k8s_pki.py``,
    an ext_pillar) and gives them, with the signing policies, to the cluster's
    controllers only. Each controller makes its own private keys
    (``x509.private_key_managed``: no leaf key crosses the network) and signs
    its certificates locally through the signing policies
    (``x509.certificate_managed``), which pin each certificate's subject and
    key usages whatever the request says. The CA key does reach the
    controllers: the seed's kube-controller-manager signs with it
    (``--cluster-signing-key-file``), so every controller holds a copy.

``pillar``
    Every certificate, key and kubeconfig comes from
    ``k8s_control_plane:secrets`` (the seed's layout, made elsewhere).

Used by _modules/k8s_pki.py (the plan and the report), the pki SLS files,
_pillar/k8s_pki.py (the policies) and the tests.
"""

import base64
import ipaddress
import os
from typing import Any

import yaml

from .facts import pki_files, pki_source
from .names import PILLAR_KEY

SOURCES = ("salt", "pillar")
API_DNS = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
# Every certificate Salt issues, by signing policy: its subject and extended
# key usages. The policy pins them; a request cannot change them.
POLICIES = {
    "apiserver": ({"CN": "kubernetes", "O": "Kubernetes"}, "serverAuth, clientAuth"),
    # The apiserver's client certificate to the kubelets: user "kubernetes",
    # which the seed's RBAC (system:kube-apiserver-to-kubelet) binds.
    "apiserver-kubelet-client": ({"CN": "kubernetes", "O": "Kubernetes"}, "clientAuth"),
    "service-account": ({"CN": "service-accounts", "O": "Kubernetes"}, "clientAuth"),
    "admin": ({"CN": "admin", "O": "system:masters"}, "clientAuth"),
    "kube-controller-manager": (
        {"CN": "system:kube-controller-manager", "O": "system:kube-controller-manager"},
        "clientAuth",
    ),
    "kube-scheduler": (
        {"CN": "system:kube-scheduler", "O": "system:kube-scheduler"},
        "clientAuth",
    ),
    # etcd's serving and peer certificate, one per controller (its own address).
    "etcd": ({"CN": "etcd", "O": "Kubernetes"}, "serverAuth, clientAuth"),
}
# The files placed from k8s_control_plane:secrets with pki:source pillar, in
# order, with their modes (k8s_control_plane.pki_files, the validation's list).
PILLAR_FILES = tuple((f["name"], f["mode"]) for f in pki_files())
# What the master gives with pki:source salt (the rest the controllers make).
FROM_MASTER = ("ca.pem", "ca-key.pem", "encryption_key")
# Keys the master makes once per cluster with pki:source salt (the controllers sign their own
# certificate of it): the service-account signing key, so that a token one apiserver issued is
# accepted by every other (kubeadm shares sa.key across control-plane nodes the same way).
CLUSTER_KEYS = ("service-account",)
# The CA that signs, alone: kube-controller-manager's --cluster-signing-cert-file takes exactly
# one certificate (pkg/controller/certificates/signer/ca_provider.go: "expected 1
# certificate"), while ca.pem is a bundle of two during a CA rotation. Written on each
# controller from ca.pem, the certificate that matches ca-key.pem (k8s_pki.signer_managed).
SIGNER = "ca-signer.pem"
# Which files each service reads: a change restarts that service only.
READERS = {
    "kube-apiserver": (
        "ca.pem",
        "kubernetes.pem",
        "kubernetes-key.pem",
        "apiserver-kubelet-client.pem",
        "apiserver-kubelet-client-key.pem",
        "service-account.pem",
        "service-account-key.pem",
        "encryption-config.yaml",
    ),
    "kube-controller-manager": (
        "ca.pem",
        "ca-key.pem",
        SIGNER,
        "service-account-key.pem",
        "kube-controller-manager.kubeconfig",
    ),
    "kube-scheduler": ("kube-scheduler.kubeconfig",),
}
# Client certificates and the kubeconfig each is embedded in.
KUBECONFIGS = ("admin", "kube-controller-manager", "kube-scheduler")


def policy_name(cluster: str, kind: str) -> str:
    """The signing policy's name for a certificate kind of a cluster."""
    return f"k8s_control_plane-{cluster}-{kind}"


def signing_policies(cluster: str, days_valid: int | None = None) -> dict[str, dict[str, Any]]:
    """
    The x509_signing_policies of a cluster (x509_v2's format): subject,
    basicConstraints, keyUsage and extendedKeyUsage pinned per kind.
    """
    policies = {}
    for kind, (subject, usages) in POLICIES.items():
        policy: dict[str, Any] = {
            "basicConstraints": "critical, CA:false",
            "keyUsage": "critical, digitalSignature, keyEncipherment",
            "extendedKeyUsage": usages,
            "subjectKeyIdentifier": "hash",
            "authorityKeyIdentifier": "keyid:always",
            **subject,
        }
        if days_valid:
            policy["days_valid"] = days_valid
        policies[policy_name(cluster, kind)] = policy
    return policies


def first_service_ip(cfg: dict[str, Any]) -> str:
    """The first address of kubernetes:service_cidr: the kubernetes Service's ClusterIP."""
    return str(ipaddress.ip_network(str(cfg["kubernetes"]["service_cidr"]), strict=False)[1])


def apiserver_sans(cfg: dict[str, Any]) -> list[str]:
    """
    The apiserver certificate's SANs, in order: the first service IP, the VIP,
    every controller's address, 127.0.0.1, the in-cluster names, the VIP's
    hostname and every controller id (the names a client may dial).
    """
    ips = [first_service_ip(cfg), cfg["vip"]["address"]]
    ips += [c["address"] for c in cfg["controllers"]] + ["127.0.0.1"]
    names = list(API_DNS)
    if cfg["vip"].get("hostname"):
        names.append(cfg["vip"]["hostname"])
    names += [c["id"] for c in cfg["controllers"]]
    return _unique([*(f"IP:{ip}" for ip in ips), *(f"DNS:{n}" for n in names)])


def etcd_sans(me: dict[str, Any]) -> list[str]:
    """One controller's etcd SANs: its address, 127.0.0.1, its id and localhost."""
    return [f"IP:{me['address']}", "IP:127.0.0.1", f"DNS:{me['id']}", "DNS:localhost"]


def _unique(items):
    return list(dict.fromkeys(items))


def _pillar_entry(directory, name, mode, sls):
    return {
        "name": name,
        "path": f"{directory}/{name}",
        "kind": "pillar",
        "mode": mode,
        "sls": sls,
    }


def _signer(directory):
    return {
        "name": SIGNER,
        "path": f"{directory}/{SIGNER}",
        "kind": "signer",
        "mode": "0644",
        "sls": "ca",
        "bundle": f"{directory}/ca.pem",
        "key": f"{directory}/ca-key.pem",
    }


def _key(directory, name, sls):
    return {"name": name, "path": f"{directory}/{name}", "kind": "key", "mode": "0600", "sls": sls}


def _cert(cfg, directory, name, kind, sans, sls, ca_dir=None):
    pki = cfg["pki"]
    ca_dir = ca_dir or cfg["controlplane"]["pki_dir"]
    return {
        "name": f"{name}.pem",
        "path": f"{directory}/{name}.pem",
        "kind": "certificate",
        "mode": "0644",
        "sls": sls,
        "policy": policy_name(cfg["cluster"], kind),
        "key": f"{directory}/{name}-key.pem",
        "signing_cert": f"{ca_dir}/ca.pem",
        "signing_key": f"{ca_dir}/ca-key.pem",
        "sans": sans,
        "days_valid": pki["days_valid"],
        "days_remaining": pki["renew_before_days"],
    }


def pki_plan(cfg: dict[str, Any], minion_id: str) -> list[dict[str, Any]]:
    """
    Every PKI file of controller ``minion_id``, in the order they are made:
    ``{"name", "path", "kind", "mode", "sls", ...}`` with ``kind`` one of
    ``directory``, ``pillar`` (from secrets), ``key``, ``certificate``
    (with ``policy``, ``key``, ``sans``, ``days_valid``, ``days_remaining``),
    ``kubeconfig`` (with ``cert``, ``key``, ``ca``, ``server``, ``user``),
    ``signer`` (the signing CA alone, from ``bundle`` and ``key``: SIGNER) and
    ``template`` (the encryption config). ``sls`` is ``ca``, ``init`` or
    ``etcd``: the pki SLS file that makes it.
    """
    cp = cfg["controlplane"]
    pki_dir = cp["pki_dir"]
    etcd = cfg["etcd"]
    me = next(c for c in cfg["controllers"] if c["id"] == minion_id)
    entries = [{"name": pki_dir, "path": pki_dir, "kind": "directory", "sls": "ca"}]
    if etcd.get("managed"):
        directory = etcd["config_dir"]
        entries.append({"name": directory, "path": directory, "kind": "directory", "sls": "etcd"})
    if pki_source(cfg) == "pillar":
        for name, mode in PILLAR_FILES:
            entries.append(
                _pillar_entry(pki_dir, name, mode, "ca" if name in FROM_MASTER else "init")
            )
        entries.append(_signer(pki_dir))
        if etcd.get("managed"):
            # etcd serves with the apiserver's certificate, as the seed's chapter 07 does.
            for name in ("ca.pem", "kubernetes.pem", "kubernetes-key.pem"):
                mode = dict(PILLAR_FILES)[name]
                entries.append(_pillar_entry(etcd["config_dir"], name, mode, "etcd"))
    else:
        entries.append(_pillar_entry(pki_dir, "ca.pem", "0644", "ca"))
        entries.append(_pillar_entry(pki_dir, "ca-key.pem", "0600", "ca"))
        entries.append(_signer(pki_dir))
        issued = [
            ("kubernetes", "apiserver", apiserver_sans(cfg)),
            ("apiserver-kubelet-client", "apiserver-kubelet-client", []),
            ("service-account", "service-account", []),
            *((user, user, []) for user in KUBECONFIGS),
        ]
        for name, kind, sans in issued:
            if name in CLUSTER_KEYS:  # one key per cluster, from the master (ext_pillar k8s_pki)
                entries.append(_pillar_entry(pki_dir, f"{name}-key.pem", "0600", "init"))
            else:
                entries.append(_key(pki_dir, f"{name}-key.pem", "init"))
            entries.append(_cert(cfg, pki_dir, name, kind, sans, "init"))
        server = f"https://127.0.0.1:{cp['apiserver_port']}"
        for user in KUBECONFIGS:
            entries.append(
                {
                    "name": f"{user}.kubeconfig",
                    "path": f"{pki_dir}/{user}.kubeconfig",
                    "kind": "kubeconfig",
                    "mode": "0600",
                    "sls": "init",
                    "ca": f"{pki_dir}/ca.pem",
                    "cert": f"{pki_dir}/{user}.pem",
                    "key": f"{pki_dir}/{user}-key.pem",
                    "server": server,
                    "cluster": cfg["cluster_name"],
                    "user": POLICIES[user][0]["CN"],
                }
            )
        if etcd.get("managed"):
            # etcd signs from its own copy of the CA: pki.etcd (orch-etcd, on every
            # controller at once) never touches pki_dir, whose files the control plane
            # services watch in the rolling step
            directory = etcd["config_dir"]
            entries.append(_pillar_entry(directory, "ca.pem", "0644", "etcd"))
            entries.append(_pillar_entry(directory, "ca-key.pem", "0600", "etcd"))
            entries.append(_key(directory, "etcd-key.pem", "etcd"))
            entries.append(
                _cert(cfg, directory, "etcd", "etcd", etcd_sans(me), "etcd", ca_dir=directory)
            )
    entries.append(
        {
            "name": "encryption-config.yaml",
            "path": f"{pki_dir}/encryption-config.yaml",
            "kind": "template",
            "mode": "0600",
            "sls": "init",
        }
    )
    return entries


def client_files(cfg: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """
    The apiserver's client files (CA, certificate, key) for etcd and for the
    kubelets, by pki:source: {"etcd": (...), "kubelet": (...)}. With a managed
    etcd, etcd's own directory holds what the health checks present to it.
    """
    pki_dir = cfg["controlplane"]["pki_dir"]
    api = (f"{pki_dir}/ca.pem", f"{pki_dir}/kubernetes.pem", f"{pki_dir}/kubernetes-key.pem")
    kubelet = api
    if pki_source(cfg) != "pillar":
        kubelet = (
            f"{pki_dir}/ca.pem",
            f"{pki_dir}/apiserver-kubelet-client.pem",
            f"{pki_dir}/apiserver-kubelet-client-key.pem",
        )
    return {"etcd": api, "kubelet": kubelet}


def etcd_check_files(cfg: dict[str, Any]) -> tuple[str, str, str]:
    """(ca, cert, key) the health checks present to etcd from a controller."""
    etcd = cfg["etcd"]
    if not etcd.get("managed"):
        return client_files(cfg)["etcd"]
    base = etcd["config_dir"]
    name = "kubernetes" if pki_source(cfg) == "pillar" else "etcd"
    return (f"{base}/ca.pem", f"{base}/{name}.pem", f"{base}/{name}-key.pem")


def pki_state_id(root: str, entry: dict[str, Any]) -> str:
    """The state ID of a plan entry: <root>-pki[-<sls>]-<module>-<function>-<name>."""
    sls = "" if entry["sls"] == "init" else f"-{entry['sls']}"
    function = {
        "directory": "directory",
        "pillar": "managed",
        "template": "managed",
        "key": "private_key_managed",
        "certificate": "certificate_managed",
        "kubeconfig": "kubeconfig_managed",
        "signer": "signer_managed",
    }[entry["kind"]]
    name = entry["name"]
    if entry["kind"] == "directory":
        name = entry["path"].strip("/").replace("/", "_")
    return f"{root}-pki{sls}-{pki_requisite_module(entry)}-{function}-{name}"


def pki_requisite_module(entry: dict[str, Any]) -> str:
    """The state module of a plan entry, for a requisite: file, x509 or k8s_pki."""
    modules = {"key": "x509", "certificate": "x509", "kubeconfig": "k8s_pki", "signer": "k8s_pki"}
    return modules.get(entry["kind"], "file")


def pki_watch_for(root: str, entries: list[dict[str, Any]], service: str) -> list[dict[str, str]]:
    """
    The requisites on the PKI files ``service`` reads: etcd those of pki.etcd,
    a control plane component its READERS among the others.
    """
    if service == "etcd":
        chosen = [e for e in entries if e["sls"] == "etcd"]
    else:
        chosen = [e for e in entries if e["sls"] != "etcd" and e["name"] in READERS[service]]
    return [
        {pki_requisite_module(e): pki_state_id(root, e)} for e in chosen if e["kind"] != "directory"
    ]


def kubeconfig_text(
    cluster: str, server: str, ca_pem: str, cert_pem: str, key_pem: str, user: str
) -> str:
    """A kubeconfig with the CA, client certificate and key embedded (one context)."""

    def b64(text):
        return base64.b64encode(text.encode()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"certificate-authority-data": b64(ca_pem), "server": server},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(cert_pem),
                    "client-key-data": b64(key_pem),
                },
            }
        ],
        "contexts": [{"name": "default", "context": {"cluster": cluster, "user": user}}],
        "current-context": "default",
    }
    return "# Managed by Salt (k8s_pki.kubeconfig_managed): do not edit.\n" + yaml.safe_dump(
        doc, sort_keys=False
    )


def master_keys_dir(opts: dict[str, Any], given: str | None = None) -> str:
    """
    The folder where the master's ext_pillar k8s_pki keeps each cluster's CA and keys
    (``<folder>/<cluster>/``): its ``dir`` option (``given``, else read from the master's
    ``ext_pillar`` config), else ``<pki_dir>/k8s_control_plane``. One answer for the
    ext_pillar and the runners that read the keys there.
    """
    if not given:
        for entry in opts.get("ext_pillar") or []:
            options = entry.get("k8s_pki") if isinstance(entry, dict) else None
            if isinstance(options, dict) and options.get("dir"):
                given = options["dir"]
    return given or os.path.join(opts["pki_dir"], PILLAR_KEY)


def cluster_keys_dir(opts: dict[str, Any], cluster: str, who: str) -> str:
    """
    ``<master_keys_dir>/<cluster>`` for a runner that changes what is there; a symlink in
    either part is refused (CommandExecutionError naming ``who``): the keys stay where the
    ext_pillar made them.
    """
    from salt.exceptions import CommandExecutionError

    base = master_keys_dir(opts)
    directory = os.path.join(base, cluster)
    if os.path.islink(base) or os.path.islink(directory):
        raise CommandExecutionError(f"{who}: {directory} or its parent is a symlink: refused")
    return directory
