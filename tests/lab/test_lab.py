"""End-to-end: the real orchestration on three systemd-nspawn controllers (tests/lab/lab.py).

In order: the lab itself (network, boot, keys, mirror), then the orchestration from fresh
containers, then the seed's checks, idempotence, and the VIP moving when haproxy stops.
Tests after the orchestration are skipped when it failed (its own test says why).
"""

import sys
import time
from hashlib import sha256
from pathlib import Path

import pytest

from tests.doubles.build import executable
from tests.lab import lab

HEALTHZ = f"curl -s -o /dev/null -w '%{{http_code}}' -m 5 -H 'Host: {lab.HEALTHZ_HOST}'"
RESULTS: dict = {}


@pytest.fixture(scope="module")
def up(fresh_lab):
    return fresh_lab


def need_orchestration():
    if not RESULTS.get("orchestrated"):
        pytest.skip("the first orchestration did not succeed (see its test)")


# --- the lab itself -------------------------------------------------------------------------


def test_network_lives_in_the_lab_namespace_only(up):
    out = lab.run(["ip", "-n", lab.NETNS, "-4", "-o", "addr", "show", "dev", lab.BRIDGE]).stdout
    assert f"inet {lab.MASTER_IP}/24" in out
    assert lab.root_namespace_leaks() == []
    assert lab.BRIDGE not in lab.run(["ip", "-o", "link"]).stdout
    # the lab namespace has no way out: no default route, only the bridge's subnet
    routes = lab.run(["ip", "-n", lab.NETNS, "-4", "route", "show", "table", "all"]).stdout
    assert "default" not in routes


def test_controllers_look_like_the_seed(up):
    hosts = lab.hosts_file()
    for name, address in lab.controllers().items():
        out = lab.cexec(name, f"hostname; ip -4 -o addr show dev {lab.IFACE}; cat /etc/hosts")
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0] == name
        assert f"inet {address}/24" in out.stdout
        assert hosts in out.stdout
        routes = lab.cexec(name, "ip -4 route").stdout
        assert "default" not in routes, f"{name} has a way out: {routes}"


def test_salt_reaches_every_controller(up):
    data, proc = lab.salt_json(["salt", "--static", "*", "test.ping"], timeout=60)
    assert data == dict.fromkeys(lab.controllers(), True), proc.stdout + proc.stderr


def test_mirror_serves_binaries_with_checksums(up):
    base = f"{lab.MIRROR_URL}/v{lab.kube_version()}/bin/linux/amd64"
    expected = (
        lab.MIRROR_DIR / f"v{lab.kube_version()}/bin/linux/amd64/kubectl.sha256"
    ).read_text()
    for name in lab.controllers():
        out = lab.cexec(name, f"curl -sf {base}/kubectl.sha256")
        assert out.returncode == 0 and out.stdout == expected, out.stderr
    # the doubles: one zipapp (tests/doubles/build.py) under each control-plane name
    double = executable(lab.kube_version())
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        path = lab.MIRROR_DIR / f"v{lab.kube_version()}/bin/linux/amd64/{name}"
        assert path.read_bytes() == double, name
        assert path.with_name(f"{name}.sha256").read_text().split()[0] == sha256(double).hexdigest()
    etcd = f"{lab.MIRROR_URL}/v{lab.etcd_version()}/bin/linux/amd64/etcd"
    check = f'curl -sf {etcd} -o /tmp/etcd && echo "$(curl -sf {etcd}.sha256)  /tmp/etcd"'
    out = lab.cexec("k8s-controller-1", f"{check} | sha256sum -c - && rm /tmp/etcd")
    assert out.returncode == 0, out.stdout + out.stderr


def test_labctl_exec_and_salt_pass_exit_codes_through(up):
    labctl = [sys.executable, str(Path(lab.__file__).with_name("labctl.py"))]
    proc = lab.run(
        [*labctl, "exec", "k8s-controller-3", "--", "echo", "a b", ";", "exit 7"], check=False
    )
    assert (proc.returncode, proc.stdout) == (0, "a b ; exit 7\n"), proc.stderr  # words are quoted
    proc = lab.run([*labctl, "exec", "k8s-controller-3", "--", "echo a b; exit 7"], check=False)
    assert (proc.returncode, proc.stdout) == (7, "a b\n"), proc.stderr  # one word is a shell line
    proc = lab.run(
        [*labctl, "salt", "--", "salt k8s-controller-2 test.ping --out=json"], check=False
    )
    assert proc.returncode == 0 and lab.parse_json(proc.stdout) == {"k8s-controller-2": True}


def test_no_vip_before_the_orchestration(up):
    assert lab.vip_holders() == []


# --- the orchestration --------------------------------------------------------------------------


def test_orchestration_succeeds_from_fresh_containers(up, measured):
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["orchestration (first)"] = time.monotonic() - start
    lab.print_report(report)
    assert report["ok"], "orchestration failed:\n" + "\n".join(report["errors"])[-6000:]
    # every step of salt/orch/control_plane.sls ran, in its order
    assert [step["id"] for step in report["steps"]] == lab.orchestration_steps()
    RESULTS["orchestrated"] = True


def test_vip_is_on_controller_1_only(up):
    need_orchestration()
    assert lab.vip_holders() == ["k8s-controller-1"]


def test_haproxy_answers_through_the_vip_and_locally(up):
    need_orchestration()
    for name in lab.controllers():
        for target in ("127.0.0.1", lab.vip()):
            code = lab.cexec(name, f"{HEALTHZ} http://{target}/healthz").stdout
            assert code == "200", f"{name}: haproxy on {target} answered {code!r}"


def test_apiserver_doubles_are_ready_and_rbac_exists(up):
    need_orchestration()
    for name, address in lab.controllers().items():
        out = lab.cexec(name, f"curl -sk -m 5 https://{address}:6443/readyz").stdout
        assert out == "ok", f"{name}: /readyz said {out!r}"
    # the RBAC objects, read with the admin client certificate from inside a controller
    name = "k8s-controller-2"
    api = "/apis/rbac.authorization.k8s.io/v1"
    role = lab.kube_api(name, f"{api}/clusterroles/system:kube-apiserver-to-kubelet")
    binding = lab.kube_api(name, f"{api}/clusterrolebindings/system:kube-apiserver")
    role_obj = lab.parse_json(role[1]) or {}
    assert role[0] == 200 and role_obj.get("kind") == "ClusterRole", role
    resources = {r for rule in role_obj.get("rules", []) for r in rule.get("resources", [])}
    assert {"nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"} <= resources
    bind_obj = lab.parse_json(binding[1]) or {}
    assert bind_obj.get("roleRef", {}).get("name") == "system:kube-apiserver-to-kubelet"
    assert {"kind": "User", "name": "kubernetes"}.items() <= (bind_obj["subjects"][0]).items()


def test_rbac_objects_read_back_with_the_real_kubectl(up):
    """The kubectl the formula installed (the mirror's, of the version's minor where a package
    has it) reads the RBAC objects back from a controller's apiserver."""
    need_orchestration()
    _, source = lab.kubectl_for(lab.kube_version())
    served = (lab.MIRROR_DIR / f"v{lab.kube_version()}/bin/linux/amd64/kubectl.sha256").read_text()
    name = "k8s-controller-3"
    installed = lab.cexec(name, "sha256sum /usr/local/bin/kubectl", check=True).stdout.split()[0]
    assert installed == served.split()[0], f"{name}: /usr/local/bin/kubectl is not the mirror's"
    version = lab.kubectl_client_version(name)
    minor = int(lab.kube_version().split(".")[1])
    # 1.18-1.20 have no package: Debian's kubernetes-client 1.20.2 stands in (said by `up`)
    expected_minor = minor if "real kubectl" in source else 20
    assert version.startswith(f"v1.{expected_minor}."), (version, source)
    role = lab.kubectl_get_json(name, "clusterrole", "system:kube-apiserver-to-kubelet")
    assert role.get("kind") == "ClusterRole", role
    resources = {r for rule in role.get("rules", []) for r in rule.get("resources", [])}
    assert {"nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"} <= resources
    binding = lab.kubectl_get_json(name, "clusterrolebinding", "system:kube-apiserver")
    assert binding["roleRef"]["name"] == "system:kube-apiserver-to-kubelet", binding
    assert {"kind": "User", "name": "kubernetes"}.items() <= binding["subjects"][0].items()


def test_up_again_reuses_the_running_lab(up, measured):
    need_orchestration()
    pids = {name: lab.container_pid(name) for name in lab.controllers()}
    start = time.monotonic()
    assert lab.bring_up(orchestration=False) == 0
    measured["up again (no orchestration)"] = time.monotonic() - start
    assert {name: lab.container_pid(name) for name in lab.controllers()} == pids


def test_second_orchestration_changes_nothing(up, measured):
    need_orchestration()
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["orchestration (no-op)"] = time.monotonic() - start
    assert report["ok"], "\n".join(report["errors"])
    assert report["state_changes"] == []


def test_highstate_is_clean(up):
    need_orchestration()
    data, proc = lab.salt_json(["salt", "--static", "k8s-controller-*", "state.apply"], 900)
    assert isinstance(data, dict) and set(data) == set(lab.controllers()), proc.stdout[-3000:]
    for minion, states in data.items():
        assert isinstance(states, dict), f"{minion}: {states}"
        failed = {k: v.get("comment") for k, v in states.items() if v.get("result") is not True}
        changed = {k: v.get("changes") for k, v in states.items() if v.get("changes")}
        assert not failed, f"{minion}: {failed}"
        assert not changed, f"{minion}: {changed}"


def _apply(name: str, test: bool) -> dict:
    argv = ["salt", "--static", name, "state.apply"] + (["test=True"] if test else [])
    data, proc = lab.salt_json(argv, 900)
    assert isinstance(data, dict) and isinstance(data.get(name), dict), proc.stdout[-3000:]
    return data[name]


def test_test_mode_predicts_the_real_apply_after_drift(up):
    need_orchestration()
    name = "k8s-controller-2"
    # Drift, as a hand edit and a lost file would make it.
    lab.cexec(name, "echo '# hand edit' >> /etc/haproxy/haproxy.cfg", check=True)
    lab.cexec(name, "rm /var/lib/kubernetes/kube-scheduler.kubeconfig", check=True)
    predicted = _apply(name, test=True)
    assert all(v["result"] is not False for v in predicted.values()), predicted
    will_change = {v["__id__"] for v in predicted.values() if v["result"] is None}
    applied = _apply(name, test=False)
    assert all(v["result"] is True for v in applied.values()), applied
    changed = {v["__id__"] for v in applied.values() if v["changes"]}
    assert "k8s_control_plane-loadbalancer-haproxy-file-managed" in changed
    assert "k8s_control_plane-pki-k8s_pki-kubeconfig_managed-kube-scheduler.kubeconfig" in changed
    assert will_change == changed
    again = _apply(name, test=False)
    assert [v["__id__"] for v in again.values() if v["changes"]] == []


# --- failover ---------------------------------------------------------------------------------


def test_vip_follows_haproxy(up, measured):
    need_orchestration()
    first, second = list(lab.controllers())[:2]
    assert lab.vip_holders() == [first]
    # The seed profile (the seed's cluster file pins it) lowers the holder's priority with a
    # positive weight: the next controller takes the VIP before the holder lets go, so a poll
    # can see both for about 0.1 s (bench/samples/failover.json: 3 of 5 trials). Counted, not
    # asserted; what must hold is exactly one holder once it has moved, and once it is back.
    try:
        lab.cexec(first, "systemctl stop haproxy", check=True)
        moved, most = lab.wait_for_holders([second], timeout=60)
        measured["VIP moved (haproxy stopped on the holder)"] = moved
    finally:
        lab.cexec(first, "systemctl start haproxy", check=True)
    back, most_back = lab.wait_for_holders([first], timeout=60)
    measured["VIP back (haproxy started again)"] = back
    measured["phases in which a poll saw two VIP holders (count)"] = int(most > 1) + int(
        most_back > 1
    )
    time.sleep(1)
    assert lab.vip_holders() == [first]
    code = lab.cexec(second, f"{HEALTHZ} http://{lab.vip()}/healthz").stdout
    assert code == "200", f"through the VIP after failback: {code!r}"
