"""End-to-end: the real orchestration on three systemd-nspawn controllers (tools/lab/lab.py).

In order: the lab itself (network, boot, keys, mirror), then the orchestration from fresh
containers, then the seed's checks, idempotence, what only a real control plane shows, the VIP
moving when haproxy stops, leadership moving when its host dies (it kills a host), and last
that host back and the cluster converged, handed to test_clean with the snapshots taken before
the first orchestration (tests/lab/fresh.py). Tests after the orchestration are skipped when it
failed (its own test says why).

On the real binaries (the lab's default, 1.37.2, built from k8s.io/kubernetes's Go modules by
tools/upstream_build.py; skipped where the lab's version runs on the doubles):
* the seed's own verification, verbatim: `kubectl get componentstatuses --kubeconfig
  admin.kubeconfig` on every controller, and the kubelet RBAC asked both ways;
* `--version` prints the release; `kubectl get ns` and `create secret` work through the VIP;
* a Secret written through the VIP is stored encrypted in etcd (aescbc, the formula's
  encryption config) and read back the same through every apiserver;
* a ServiceAccount token issued by one apiserver is accepted by every other (one signing key
  per cluster, kept by the master);
* a CSR the admin approves is signed by the controller-manager with the cluster CA;
* a Deployment gets its ReplicaSet and Pods from the controller-manager, and the scheduler says
  why it cannot place them (the lab has no nodes);
* exactly one controller-manager and one scheduler lead (their Leases), and leadership moves
  when the leader's host dies (seconds measured).
"""

import base64
import json
import sys
import time
from hashlib import sha256
from pathlib import Path

import pytest

from tests.doubles.build import executable
from tests.lab import fresh
from tests.lab.handover import hand_over
from tools import upstream_build
from tools.lab import lab
from tools.lab.common import poll

VIP_SERVER = f"--server=https://{lab.vip()}:8443"  # haproxy's TLS passthrough frontend
PKI = "/var/lib/kubernetes"
ETCDCTL = (
    "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/ca.pem"
    " --cert=/etc/etcd/etcd.pem --key=/etc/etcd/etcd-key.pem"
)
real = pytest.mark.skipif(
    not lab.is_real(lab.kube_version()),
    reason=f"the lab's {lab.kube_version()} runs on the test doubles (no real build)",
)
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
    # upstream's binaries where the minor has a real build (tools/upstream_build.py), else the
    # doubles: one zipapp (tests/doubles/build.py) under each control-plane name
    version = lab.kube_version()
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        if lab.is_real(version):
            expected = (upstream_build.build("kubernetes", version) / name).read_bytes()
        else:
            expected = executable(version)
        path = lab.MIRROR_DIR / f"v{version}/bin/linux/amd64/{name}"
        assert path.read_bytes() == expected, name
        digest = sha256(expected).hexdigest()
        assert path.with_name(f"{name}.sha256").read_text().split()[0] == digest
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
    # the controllers as the formula never touched them, for test_clean (tests/lab/fresh.py)
    assert set(fresh.remember()) == set(lab.controllers())


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


def test_apiservers_are_ready_and_rbac_exists(up):
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
    # converged and healthy: one step, which reports what the plan job found on each controller
    assert [step["id"] for step in report["steps"]] == ["orch-converged"]
    comment = report["steps"][0]["comment"]
    for name in lab.controllers():
        assert f"{name} (" in comment and f"{name} ok" in comment, comment
    assert "k8s-controller-1 holds the VIP" in comment, comment


def test_a_drift_on_one_controller_gets_the_full_run_which_repairs_it(up, measured):
    """The no-op's single step is taken only when nothing would change: a hand edit on one
    controller makes the orchestration the full run, which repairs it; then one step again."""
    need_orchestration()
    name = "k8s-controller-3"
    lab.cexec(name, "echo '# hand edit' >> /etc/haproxy/haproxy.cfg", check=True)
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["orchestration (one drifted file)"] = time.monotonic() - start
    assert report["ok"], "\n".join(report["errors"])
    # a running cluster: etcd's members checked, no control plane to roll (nothing there changed)
    assert [step["id"] for step in report["steps"]] == lab.orchestration_steps(running=True)
    changes = report["state_changes"]
    assert changes and all(c.startswith("orch-loadbalancer: ") for c in changes), changes
    assert any("k8s_control_plane-loadbalancer-haproxy-file-managed" in c for c in changes)
    assert "# hand edit" not in lab.cexec(name, "cat /etc/haproxy/haproxy.cfg").stdout
    report, _ = lab.orchestrate()
    assert [step["id"] for step in report["steps"]] == ["orch-converged"], report["errors"]


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


# --- what only a real control plane shows (issue 17; skipped on the doubles) -------------------


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def kubectl(name: str, args: str, **kw) -> str:
    return ok(lab.kubectl(name, args, **kw))


# --- the seed's verification ------------------------------------------------------------------


@real
def test_componentstatuses_are_healthy_on_every_controller(up):
    """The seed's `kubectl get componentstatuses` (deprecated since 1.19 but still served: the
    1.37 kubectl prints "Warning: v1 ComponentStatus is deprecated in v1.19+" on stderr)."""
    need_orchestration()
    for name in lab.controllers():
        code, out, rows = lab.componentstatuses(name)
        assert code == 0, f"{name}: {out}"
        assert {"scheduler", "controller-manager", "etcd-0"} <= set(rows), f"{name}: {out}"
        assert set(rows.values()) == {"Healthy"}, f"{name}: {out}"


@real
def test_the_kubelet_rbac_authorizes_what_it_grants_and_nothing_else(up):
    need_orchestration()
    name = lab.rbac_controller()
    answers = {q: lab.can_i(name, q) for q in lab.CAN_I}
    assert answers == lab.CAN_I, answers


@real
def test_every_controller_runs_the_release_it_was_given(up):
    need_orchestration()
    version = lab.kube_version()
    for name in lab.controllers():
        for binary in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            out = ok(lab.cexec(name, f"{binary} --version")).strip()
            assert out == f"Kubernetes v{version}", f"{name}: {binary} --version: {out}"
    served = json.loads(kubectl("k8s-controller-2", f"{VIP_SERVER} version -o json"))
    assert served["serverVersion"]["gitVersion"] == f"v{version}", served


@real
def test_kubectl_lists_namespaces_and_creates_a_secret_through_the_vip(up):
    need_orchestration()
    name = "k8s-controller-1"
    namespaces = kubectl(name, f"{VIP_SERVER} get ns -o name").split()
    assert {"namespace/default", "namespace/kube-system"} <= set(namespaces), namespaces
    kubectl(name, f"{VIP_SERVER} create secret generic lab-secret --from-literal=word=plaintext42")
    RESULTS["secret"] = True


# --- data ---------------------------------------------------------------------------------------


@real
def test_a_secret_is_stored_encrypted_and_read_back_through_every_apiserver(up):
    need_orchestration()
    if not RESULTS.get("secret"):
        pytest.skip("the secret was not created (see the test before)")
    key = "/registry/secrets/default/lab-secret"
    for name in lab.controllers():
        head = ok(lab.cexec(name, f"{ETCDCTL} get {key} --print-value-only | head -c 23"))
        assert head == "k8s:enc:aescbc:v1:key1:", f"{name}: etcd holds {head!r}"
        plain = lab.cexec(name, f"{ETCDCTL} get {key} --print-value-only | grep -c plaintext42")
        assert plain.stdout.strip() == "0", f"{name}: the plaintext is in etcd"
        data = kubectl(name, "get secret lab-secret -o jsonpath={.data.word}")
        assert base64.b64decode(data) == b"plaintext42", f"{name}: {data!r}"


@real
def test_a_service_account_token_from_one_apiserver_is_accepted_by_every_other(up):
    need_orchestration()
    first = "k8s-controller-1"
    kubectl(first, "create serviceaccount lab-reader")
    token = kubectl(first, "create token lab-reader --duration=10m").strip()
    for name in lab.controllers():
        out = kubectl(
            name,
            f"--kubeconfig=/dev/null --server=https://127.0.0.1:6443"
            f" --certificate-authority={PKI}/ca.pem --token={token}"
            " auth whoami -o jsonpath={.status.userInfo.username}",
        )
        assert out == "system:serviceaccount:default:lab-reader", f"{name}: {out!r}"


@real
def test_a_csr_approved_by_the_admin_is_signed_by_the_controller_manager(up):
    need_orchestration()
    name = "k8s-controller-2"
    ok(
        lab.cexec(
            name,
            "umask 077; openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
            " -nodes -keyout /tmp/lab-user.key -subj /CN=lab-user/O=lab -out /tmp/lab-user.csr"
            " 2>/dev/null",
        )
    )
    request = base64.b64encode(ok(lab.cexec(name, "cat /tmp/lab-user.csr")).encode()).decode()
    csr = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "lab-user"},
        "spec": {
            "request": request,
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "expirationSeconds": 3600,
        },
    }
    ok(lab.kubectl(name, "apply -f -", input=json.dumps(csr)))
    kubectl(name, "certificate approve lab-user")
    issued = poll(
        "the signed certificate",
        lambda: lab.kubectl(name, "get csr lab-user -o jsonpath={.status.certificate}").stdout,
        timeout=60,
        interval=0.5,
    )
    lab.cexec(name, "cat > /tmp/lab-user.pem", input=base64.b64decode(issued).decode(), check=True)
    verified = ok(lab.cexec(name, f"openssl verify -CAfile {PKI}/ca.pem /tmp/lab-user.pem"))
    assert verified.strip() == "/tmp/lab-user.pem: OK", verified
    subject = ok(lab.cexec(name, "openssl x509 -noout -subject -in /tmp/lab-user.pem"))
    assert "CN = lab-user" in subject, subject


@real
def test_a_deployment_gets_pods_and_the_scheduler_says_why_it_cannot_place_them(up):
    need_orchestration()
    name = "k8s-controller-3"
    kubectl(name, "create deployment web --image=registry.invalid/web:1 --replicas=2")

    def pods():
        listed = json.loads(kubectl(name, "get pods -l app=web -o json"))["items"]
        return listed if len(listed) == 2 else None

    listed = poll("two pods of the deployment", pods, timeout=90, interval=0.5)
    owners = {ref["kind"] for pod in listed for ref in pod["metadata"]["ownerReferences"]}
    assert owners == {"ReplicaSet"}, owners

    def unschedulable():
        conds = [
            c
            for pod in pods() or []
            for c in pod["status"].get("conditions", [])
            if c["type"] == "PodScheduled" and c["status"] == "False"
        ]
        return conds if len(conds) == 2 else None

    conds = poll("the scheduler's verdict on both pods", unschedulable, timeout=90, interval=0.5)
    assert {c["reason"] for c in conds} == {"Unschedulable"}, conds
    lab.say(f"scheduler: {conds[0].get('message')}")


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


# --- leadership (kills a host: last) ------------------------------------------------------------


def lease_holders(name: str) -> dict[str, str]:
    """{component: the controller holding its Lease} read through `name`'s apiserver."""
    holders = {}
    for component in ("kube-controller-manager", "kube-scheduler"):
        proc = lab.kubectl(
            name, f"-n kube-system get lease {component} -o jsonpath={{.spec.holderIdentity}}"
        )
        holder = proc.stdout.strip().split("_")[0] if proc.returncode == 0 else ""
        holders[component] = holder
    return holders


@real
def test_one_leader_each_and_leadership_moves_when_its_host_dies(up, measured):
    need_orchestration()
    holders = poll(
        "both leases held",
        lambda: (held := lease_holders("k8s-controller-1")) and all(held.values()) and held,
        timeout=60,
        interval=0.5,
    )
    assert set(holders.values()) <= set(lab.controllers()), holders
    # exactly one lease per component
    leases = json.loads(kubectl("k8s-controller-1", "-n kube-system get leases -o json"))["items"]
    names = [lease["metadata"]["name"] for lease in leases]
    assert names.count("kube-controller-manager") == 1 and names.count("kube-scheduler") == 1
    victim = holders["kube-controller-manager"]
    witness = next(n for n in lab.controllers() if n != victim)
    start = time.monotonic()
    RESULTS["killed"] = victim
    lab.kill_container(victim)
    moved = poll(
        f"the leases to leave {victim}",
        lambda: (
            (now := lease_holders(witness)) and all(h and h != victim for h in now.values()) and now
        ),
        timeout=120,
        interval=0.25,
    )
    took = time.monotonic() - start
    measured["leadership moved after its host died"] = took
    lab.say(f"leases {holders} -> {moved} in {took:.1f}s after {victim} was killed")


def test_the_dead_host_comes_back_and_the_cluster_converges(up, measured):
    """The host leadership left boots again from its disk; one orchestration converges the
    cluster, which goes to test_clean (with the snapshots from before the first run)."""
    victim = RESULTS.get("killed")
    if not victim:
        pytest.skip("no host was killed (see the leadership test)")
    measured["dead host booted again"] = lab.restart_container(victim)
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["orchestration after the host came back"] = time.monotonic() - start
    assert report["ok"], "\n".join(report["errors"])[-6000:]
    lab.wait_for_holders([next(iter(lab.controllers()))], timeout=60)
    report, _ = lab.orchestrate()
    assert [step["id"] for step in report["steps"]] == ["orch-converged"], report["errors"]
    hand_over()  # converged, no override: test_clean takes this lab with fresh.FRESH
