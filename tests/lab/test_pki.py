"""The PKI component end to end (issue 9): the lab goes from bare containers to a verified
cluster with the certificates Salt makes (pki:source salt, the default), and:

- every controller's certificates chain to the cluster CA, their keys match, the apiserver's
  SANs are the planned ones (checked on the controllers with k8s_pki.certificates and again
  here with cryptography on the files themselves);
- changing the VIP in the pillar re-issues the apiserver certificate, and only it, on every
  controller; the orchestration converges and the API answers through the new VIP with TLS
  verified against the cluster CA for the VIP's address; a re-run changes nothing;
- a symlink in the PKI directory is refused, naming it, and nothing is written through it;
- pillar-supplied certificates (pki:source pillar) still work, and switching back to salt
  converges.
"""

import time

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.lab.handover import hand_over
from tools.lab import lab
from tools.lab.probe import probe_once

# Still on the test doubles at the seed's 1.18.6 (the lab's default is the real 1.37.2). On the
# real binaries (K8S_LAB_VERSION=1.37.2, 2026-12-05: 4 passed, 1 failed, 687 s) switching to
# pki:source pillar fails: orch-controlplane's batch counted controller-1 done while its state.sls
# still ran (it did not answer saltutil.find_job within the master's timeout during the heavy CA
# switch), and orch-rbac then found the job running. The orchestration-speed issue is to buy back
# this module's time on the real binaries (each orchestration here is 2-3x slower).
LAB_VERSION = "1.18.6"

PKI_DIR = "/var/lib/kubernetes"
NEW_VIP = "10.240.0.30"  # in the lab's subnet, unused by any controller
API_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _orchestrate(measured, label):
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured[f"pki: {label}"] = time.monotonic() - start
    assert report["ok"], f"{label} failed:\n" + "\n".join(report["errors"])[-6000:]
    return report


def _certificates() -> dict:
    data, proc = lab.salt_json(["salt", "--static", "k8s-controller-*", "k8s_pki.certificates"])
    assert isinstance(data, dict) and set(data) == set(lab.controllers()), proc.stdout[-2000:]
    return data


def _serials(report: dict) -> dict:
    return {
        (name, path): found.get("serial")
        for name, certs in report.items()
        for path, found in certs.items()
    }


def _cert(name: str, path: str) -> x509.Certificate:
    text = lab.cexec(name, f"cat {path}", check=True).stdout
    return x509.load_pem_x509_certificate(text.encode())


def _sans(cert):
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName)
    )


@pytest.fixture(scope="module")
def converged(converged_lab, measured):
    """A lab from bare containers to a verified cluster (the first orchestration is
    converged_lab's), handed to test_faults at the end."""
    try:
        yield
    finally:
        lab.set_overrides(None)


def test_every_certificate_chains_to_the_cluster_ca(converged):
    report = _certificates()
    for name, certs in report.items():
        assert certs, f"{name}: no certificate reported"
        for path, found in certs.items():
            assert not found.get("missing"), f"{name}:{path} missing"
            if path.endswith("/ca.pem"):
                continue
            assert found["signed_by_ca"], f"{name}:{path} is not signed by the cluster CA"
            assert found["key_matches"], f"{name}:{path}: its key does not match"
            assert found["days_left"] >= 360, f"{name}:{path}: {found['not_after']}"
        assert certs[f"{PKI_DIR}/kubernetes.pem"]["sans_as_planned"], certs
    # the same controller's files, read here: chain, SANs, subjects and usages
    first = next(iter(lab.controllers()))
    ca = _cert(first, f"{PKI_DIR}/ca.pem")
    api = _cert(first, f"{PKI_DIR}/kubernetes.pem")
    api.verify_directly_issued_by(ca)
    wanted = {lab.vip(), "127.0.0.1", "10.32.0.1", *lab.controllers().values(), *API_NAMES}
    assert wanted <= _sans(api), wanted - _sans(api)
    usages = api.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    admin = _cert(first, f"{PKI_DIR}/admin.pem")
    orgs = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    # each controller made its own keys: no two controllers share an apiserver key
    keys = {
        n: lab.cexec(n, f"sha256sum {PKI_DIR}/kubernetes-key.pem").stdout.split()[0]
        for n in lab.controllers()
    }
    assert len(set(keys.values())) == len(keys), keys


def test_kubeconfigs_are_built_from_the_certificates(converged):
    first = next(iter(lab.controllers()))
    for user in ("admin", "kube-controller-manager", "kube-scheduler"):
        text = lab.cexec(first, f"cat {PKI_DIR}/{user}.kubeconfig", check=True).stdout
        doc = yaml.safe_load(text)
        assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
        mode = lab.cexec(first, f"stat -c %a {PKI_DIR}/{user}.kubeconfig").stdout.strip()
        assert mode == "600"
    assert not probe_once("/readyz")["failures"], "the API does not answer through the VIP"


def test_a_new_vip_reissues_the_apiserver_certificate_only(converged, measured):
    before = _serials(_certificates())
    units = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
    pids = {unit: lab.unit_pids(unit) for unit in units}
    exits = {unit: lab.unit_restarts(unit) for unit in units}
    lab.set_overrides({"vip": {"address": NEW_VIP}})
    try:
        _orchestrate(measured, "orchestration after the VIP changed")
        after = _serials(_certificates())
        changed = {key for key in before if before[key] != after.get(key)}
        assert changed == {(n, f"{PKI_DIR}/kubernetes.pem") for n in lab.controllers()}
        # only the service that reads it was restarted (one controller at a time: the
        # rollout). A real controller-manager or scheduler that leads exits when its own
        # apiserver (127.0.0.1) restarts ("leaderelection lost") and systemd starts it again:
        # its PID changes with NRestarts, which a restart by Salt does not count.
        restarted, exited = set(), {}
        for unit in units:
            now, counts = lab.unit_pids(unit), lab.unit_restarts(unit)
            for name in lab.controllers():
                if now[name] == pids[unit][name]:
                    continue
                if counts[name] != exits[unit][name]:
                    exited.setdefault(unit, []).append(name)
                else:
                    restarted.add(unit)
        measured["pki: exited and restarted by systemd during the rollout (count)"] = sum(
            len(v) for v in exited.values()
        )
        assert restarted == {"kube-apiserver"}, (restarted, exited)
        assert "kube-apiserver" not in exited and "etcd" not in exited, exited
        first = next(iter(lab.controllers()))
        assert NEW_VIP in _sans(_cert(first, f"{PKI_DIR}/kubernetes.pem"))
        assert lab.vip() == NEW_VIP
        lab.wait_for_holders([first], timeout=60)
        # TLS to the new VIP's address, verified against the cluster CA: the served
        # certificate names it
        result = probe_once("/readyz")
        assert result["calls"] and not result["failures"], result
        report = _orchestrate(measured, "re-run after the VIP changed")
        assert report["state_changes"] == [], report["state_changes"]
    finally:
        lab.set_overrides(None)
        _orchestrate(measured, "orchestration back to the seed's VIP")
    assert not probe_once("/readyz")["failures"]


def test_a_symlink_in_the_pki_dir_is_refused(converged):
    name = list(lab.controllers())[1]
    key = f"{PKI_DIR}/admin-key.pem"
    lab.cexec(name, f"mv {key} /root/admin-key.pem.kept && ln -s /tmp/stolen {key}", check=True)
    try:
        data, proc = lab.salt_json(
            ["salt", "--static", name, "state.apply", "k8s_control_plane.pki"]
        )
        states = data[name]
        guard = [
            v for v in states.values() if v["__id__"].endswith("no_symlinks-var_lib_kubernetes")
        ]
        assert guard and guard[0]["result"] is False, proc.stdout[-3000:]
        assert f"{key} -> /tmp/stolen" in guard[0]["comment"]
        written = [v["__id__"] for v in states.values() if v["changes"]]
        assert written == [], written
        assert lab.cexec(name, "test -e /tmp/stolen").returncode != 0, "written through the link"
    finally:
        lab.cexec(name, f"rm -f {key} && mv /root/admin-key.pem.kept {key}", check=True)
    data, _ = lab.salt_json(["salt", "--static", name, "state.apply", "k8s_control_plane.pki"])
    assert all(v["result"] is True for v in data[name].values())
    assert [v["__id__"] for v in data[name].values() if v["changes"]] == []


def test_pillar_supplied_certificates_still_work(converged, measured):
    secrets = lab.ensure_pki()
    lab.set_overrides(lab.pillar_pki_override())
    try:
        _orchestrate(measured, "orchestration with pki:source pillar")
        first = next(iter(lab.controllers()))
        served = lab.cexec(first, f"cat {PKI_DIR}/kubernetes.pem", check=True).stdout
        assert served == secrets["kubernetes.pem"]
        assert not probe_once("/readyz")["failures"]
    finally:
        lab.set_overrides(None)
    _orchestrate(measured, "orchestration back to pki:source salt")
    report = _certificates()
    for name, certs in report.items():
        for path, found in certs.items():
            if not path.endswith("/ca.pem"):
                assert found["signed_by_ca"], f"{name}:{path} not re-issued by the salt CA"
    assert not probe_once("/readyz")["failures"]
    hand_over()  # converged at pki:source salt, no override: test_faults takes this lab
