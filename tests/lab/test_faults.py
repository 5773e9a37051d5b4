"""Faults survived: each fault of tools/lab/faults.py on the VIP holder of a converged lab in the
default (tuned) profile, then its recovery; afterwards, within a bounded wait, exactly one
controller holds the VIP (the first again, by preemption), the API answers /readyz through the
VIP, every etcd member is healthy, and a probe through the VIP ran the whole time, its failed
calls counted (lab measurements). The VIP holders are polled every 10 ms throughout: how long two
controllers or none held it is measured too. Then the faults that do not move the VIP or that
need more than a recovery: an apiserver SIGKILLed, haproxy's config broken and reloaded, etcd's
quorum lost (stopped, then hung), the holder cut off the network and healed.
"""

import concurrent.futures
import os
import signal
import time

import pytest

from tools.lab import lab
from tools.lab.faults import FAULTS, heal_network, split_network
from tools.lab.master import BROKEN_WORKER
from tools.lab.probe import ApiProbe, probe_once

# Still on the test doubles at the seed's 1.18.6 (the lab's default is the real 1.37.2): not yet
# run on the real binaries within CI's budget (the orchestration-speed issue buys it back); the
# failover faults on real apiservers are measured by `make bench-quick` and `make bench`.
LAB_VERSION = "1.18.6"

# `make faults` runs each failover fault this many times in one run (the census adds up).
REPEAT = int(os.environ.get("K8S_FAULT_REPEAT", "1"))
TRIALS = range(1, REPEAT + 1)


def _tally(measured, fault, timeline, probe=None, moved=None):
    """Add one trial to the fault's totals: trials, holder censuses (polls every 10 ms) and
    how many saw two holders or none, the longest such moment, the probe's calls."""

    def add(key, value):
        measured[f"fault {fault}: {key} (count)"] = (
            measured.get(f"fault {fault}: {key} (count)", 0) + value
        )

    def worst(key, value):
        measured[f"fault {fault}: {key}"] = max(measured.get(f"fault {fault}: {key}", 0.0), value)

    census = timeline.census
    add("trials", 1)
    add("holder censuses", sum(census.values()))
    add("censuses with two holders", sum(n for holders, n in census.items() if holders > 1))
    add("censuses with no holder", census[0])
    worst("two holders, longest", timeline.seconds(lambda h: len(h) > 1))
    worst("no holder, longest", timeline.seconds(lambda h: not h))
    if moved is not None:
        worst("VIP on the next, slowest", moved)
    if probe is not None:
        add("probe calls", probe.result["calls"])
        add("failed calls", probe.result["failures"])


@pytest.fixture(scope="module")
def converged(converged_lab, measured):
    """The lab test_pki hands over (or a fresh one), switched to the tuned profile."""
    lab.set_overrides({"profile": "tuned"})
    try:
        start = time.monotonic()
        report, _ = lab.orchestrate()
        measured["faults: orchestration to the tuned profile"] = time.monotonic() - start
        assert report["ok"], "\n".join(report["errors"])[-6000:]
        lab.wait_for_holders([next(iter(lab.controllers()))], timeout=60)
        yield lab
    finally:
        lab.set_overrides(None)


@pytest.mark.parametrize("trial", TRIALS)
@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_on_the_holder_is_survived(name, trial, converged, measured):
    fault = FAULTS[name]
    first, second = list(lab.controllers())[:2]
    lab.salt_cmd(["salt", "*", "k8s_health.wait_ready", "timeout=120"], timeout=180)
    with ApiProbe("/readyz", interval=0.1) as probe, lab.HolderTimeline() as timeline:
        time.sleep(0.5)
        timeline.zero = time.monotonic()
        fault.inflict(first)
        lab.wait_for_holders([second], 30)
        if fault.recover:
            fault.recover(first)
        lab.wait_for_holders([first], 180)
        time.sleep(2)  # the VIP must stay: a flap shows up in the timeline
    points = timeline.relative()
    moved = next(t for t, holders in points if holders == [second])
    # the first back in sole charge is the last change: no flap in the 2 s after it
    left = next(i for i, (t, h) in enumerate(points) if t >= 0 and h != [first])
    back = next(i for i, (t, h) in enumerate(points) if i > left and h == [first])
    assert back == len(points) - 1, points
    assert lab.vip_holders() == [first]
    lab.salt_cmd(["salt", "*", "k8s_health.wait_ready", "timeout=120"], timeout=180)
    assert not probe_once("/readyz")["failures"], "the API does not answer through the VIP"
    # a host back from the dead rejoined: its etcd member healthy (its apiserver back in every
    # haproxy's rotation is what wait_ready above waited for)
    assert _etcd(first)["healthy"] == len(lab.controllers())
    assert probe.result["calls"] > 10, probe.result
    _tally(measured, name, timeline, probe, moved)


def test_an_apiserver_sigkilled_leaves_the_vip_and_is_routed_around(converged, measured):
    """
    The default profile's keepalived check watches haproxy, not the apiserver: the VIP stays
    where it is (moving it would cut every connection through it) while haproxy takes the dead
    apiserver out of rotation on its failed checks (inter 500ms, fall 2) and retries a failed
    connection on another (redispatch): no call through the VIP fails.
    """
    first, second = list(lab.controllers())[:2]
    lab.salt_cmd(["salt", "*", "k8s_health.wait_ready", "timeout=120"], timeout=180)
    with ApiProbe("/readyz", interval=0.1) as probe, lab.HolderTimeline() as timeline:
        time.sleep(0.5)
        lab.cexec(second, "systemctl kill -s KILL kube-apiserver", check=True)
        time.sleep(5)  # systemd restarts it (Restart=on-failure) after its RestartSec
        lab.salt_cmd(["salt", second, "k8s_health.wait_ready", "timeout=120"], timeout=180)
    assert timeline.seen == [[first]], timeline.points
    _tally(measured, "apiserver-kill", timeline, probe)
    assert probe.result["failures"] == 0, probe.result["failed"]


def _etcd(name):
    data, proc = lab.salt_json(["salt", "--static", name, "k8s_health.etcd"], 60)
    assert isinstance(data, dict) and isinstance(data.get(name), dict), proc.stdout[-2000:]
    return data[name]


def test_a_broken_haproxy_config_reloaded_keeps_the_running_one(converged, measured):
    """
    An operator's typo in haproxy.cfg and a reload on the holder: the unit's reload checks the
    file first (haproxy -c) and fails, so the running haproxy keeps its config, the VIP stays,
    no call fails; the next orchestration puts the managed file back.
    """
    first = next(iter(lab.controllers()))
    cfg = "/etc/haproxy/haproxy.cfg"
    with ApiProbe("/readyz", interval=0.1) as probe, lab.HolderTimeline() as timeline:
        time.sleep(0.5)
        lab.cexec(first, f"echo 'backend broken-by-hand' >> {cfg}; echo '  bogus-keyword' >> {cfg}")
        reload = lab.cexec(first, "systemctl reload haproxy")
        time.sleep(2)
    assert reload.returncode != 0, "the reload of an invalid config succeeded"
    assert lab.cexec(first, "systemctl is-active haproxy").stdout.strip() == "active"
    assert timeline.seen == [[first]], timeline.points
    assert probe.result["failures"] == 0, probe.result["failed"]
    report, _ = lab.orchestrate()
    assert report["ok"], "\n".join(report["errors"])[-4000:]
    assert lab.cexec(first, f"haproxy -c -q -f {cfg}").returncode == 0
    assert "bogus-keyword" not in lab.cexec(first, f"cat {cfg}", check=True).stdout
    _tally(measured, "haproxy-bad-config", timeline, probe)


def test_etcd_quorum_lost_refused_and_recovered(converged, measured):
    """
    etcd stopped on one controller: the API answers. Stopped on a second: quorum is lost and
    /readyz fails through the VIP; the orchestration starts them again (etcd is managed) and
    converges. Then hung on two (SIGSTOP: running to systemd, answering nothing): the
    orchestration refuses before the control plane, naming each etcd server, and no apiserver
    restarts; once they run again, the orchestration converges.
    """
    _, second, third = list(lab.controllers())[:3]
    lab.cexec(third, "systemctl stop etcd", check=True)
    lab.salt_cmd(["salt", "*", "k8s_health.wait_ready", "timeout=60"], timeout=90)
    assert not probe_once("/readyz")["failures"], "one etcd member down took the API away"
    lab.cexec(second, "systemctl stop etcd", check=True)
    lab.poll("/readyz through the VIP to fail", lambda: probe_once("/readyz")["failures"], 30)
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["fault etcd-stopped-on-two: orchestration"] = time.monotonic() - start
    assert report["ok"], "\n".join(report["errors"])[-4000:]
    assert _etcd(second)["healthy"] == len(lab.controllers())

    before = lab.unit_pids("kube-apiserver")
    for name in (second, third):
        lab.cexec(name, "systemctl kill -s STOP etcd", check=True)
    try:
        start = time.monotonic()
        report, _ = lab.orchestrate()
        measured["fault etcd-hung-on-two: refused after"] = time.monotonic() - start
        assert not report["ok"]
        errors = "\n".join(report["errors"])
        assert "orch-etcd-quorum: etcd has no quorum" in errors, errors[-4000:]
        assert f"https://{lab.controllers()[third]}:2379" in errors, errors[-4000:]
        assert "orch-controlplane: One or more requisite failed" in errors, errors[-4000:]
        assert lab.unit_pids("kube-apiserver") == before, (
            "an apiserver restarted without etcd quorum"
        )
    finally:
        for name in (second, third):
            lab.cexec(name, "systemctl kill -s CONT etcd")
    report, _ = lab.orchestrate()
    assert report["ok"], "\n".join(report["errors"])[-4000:]
    assert not probe_once("/readyz")["failures"]


@pytest.mark.parametrize("trial", TRIALS)
def test_the_holder_cut_off_and_healed_leaves_one_holder(trial, converged, measured):
    """
    The VIP holder cut off the network (every packet in and out of its lab link dropped, the
    link up): the others elect a new holder while the cut-off one keeps the VIP on its side, two
    holders being unavoidable while the split lasts; once healed, exactly the first holds it
    (preemption), with no flap, and the API answers through the VIP.
    """
    first, second = list(lab.controllers())[:2]
    with lab.HolderTimeline() as timeline:
        time.sleep(0.5)
        timeline.zero = time.monotonic()
        split_network(first)
        try:
            lab.wait_for_holders([first, second], 30)
            time.sleep(3)
        finally:
            healed = time.monotonic() - timeline.zero
            heal_network(first)
        lab.wait_for_holders([first], 60)
        time.sleep(2)
    points = timeline.relative()
    last_change = points[-1][0]
    assert points[-1][1] == [first], points
    assert last_change >= healed, points
    assert lab.vip_holders() == [first]
    lab.salt_cmd(["salt", "*", "k8s_health.wait_ready", "timeout=120"], timeout=180)
    assert not probe_once("/readyz")["failures"], "the API does not answer through the VIP"
    _tally(measured, "split", timeline)
    key = "fault split: one holder again after healing, slowest"
    measured[key] = max(measured.get(key, 0.0), last_change - healed)


def _applying(name, sls):
    """True while `name`'s minion runs a job that applies `sls` (its proc file names it)."""
    cmd = f"grep -qsl -- {sls} /var/cache/salt/minion/proc/* && echo yes"
    return lab.cexec(name, cmd).stdout.strip() == "yes"


def _orchestration_in_background(timeout):
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(lab.orchestrate, timeout)
    pool.shutdown(wait=False)
    return future


def _drift_the_control_plane(name):
    """A hand edit of a control-plane unit on ``name``: the orchestration's plan then finds a
    change there, so the run is the full one and its control-plane step applies ``name``
    (a converged cluster's run is one step that applies nothing)."""
    lab.cexec(name, "echo '# hand edit' >> /etc/systemd/system/kube-scheduler.service", check=True)


def _all_answer(timeout=120):
    names = list(lab.controllers())

    def answered():
        data, _ = lab.salt_json(["salt", "--static", "-t", "5", "*", "test.ping"], 60)
        return isinstance(data, dict) and all(data.get(n) is True for n in names)

    lab.poll("every minion to answer test.ping", answered, timeout, 1)


def test_a_minion_stopped_mid_orchestration_converges_on_the_rerun(converged, measured):
    """
    The second controller's salt-minion killed (and kept down) while the first controller's
    control plane is being applied: the run fails naming it (the checks after the rollout
    count a silent controller as failed, never as passed); started again, the same
    orchestration converges with no other step. (SIGKILL, not `systemctl stop`: salt-minion
    3008.4 took 90 s to stop on SIGTERM here, the unit's stop timeout.)
    """
    first, second = list(lab.controllers())[:2]
    _drift_the_control_plane(first)
    start = time.monotonic()
    run = _orchestration_in_background(600)
    lab.poll(
        "the control plane step on the first", lambda: _applying(first, "controlplane"), 120, 0.1
    )
    lab.cexec(second, "systemctl kill -s KILL salt-minion; systemctl stop salt-minion")
    report, _ = run.result(timeout=660)
    measured["fault minion-stopped: failed run"] = time.monotonic() - start
    assert not report["ok"]
    assert second in "\n".join(report["errors"]), report["errors"]
    lab.cexec(second, "systemctl start salt-minion", check=True)
    _all_answer()
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["fault minion-stopped: rerun"] = time.monotonic() - start
    assert report["ok"], "\n".join(report["errors"])[-4000:]
    assert not probe_once("/readyz")["failures"]


def test_the_master_killed_mid_orchestration_converges_on_the_rerun(converged, measured):
    """
    The salt-master SIGKILLed (its whole process group) while the control plane is being
    applied: the orchestration ends (it does not hang); the master started again, its minions
    reconnect by themselves and the same orchestration converges.
    """
    first = next(iter(lab.controllers()))
    _drift_the_control_plane(first)
    run = _orchestration_in_background(300)
    lab.poll(
        "the control plane step on the first", lambda: _applying(first, "controlplane"), 120, 0.1
    )
    start = time.monotonic()
    os.killpg(lab.pid_of("salt-master"), signal.SIGKILL)
    try:
        report, _ = run.result(timeout=360)
        outcome = "ok" if report["ok"] else "failed"
    except Exception as exc:  # the salt-run client may also die with its master
        outcome = f"{type(exc).__name__}"
    measured["fault master-killed: interrupted run ended after"] = time.monotonic() - start
    log = lab.LOG_DIR / "master.log"
    seen = log.stat().st_size if log.exists() else 0
    lab.ensure_master()
    _all_answer()
    if BROKEN_WORKER in log.read_text(errors="replace")[seen:]:
        # salt 3008.4's start-up race (lab.wait_master_workers_loaded): the operator's fix,
        # a clean restart, now with every minion connected
        lab.stop("salt-master", group=True)
        lab.ensure_master()
        _all_answer()
    start = time.monotonic()
    report, _ = lab.orchestrate()
    measured["fault master-killed: rerun"] = time.monotonic() - start
    assert report["ok"], f"interrupted run: {outcome}\n" + "\n".join(report["errors"])[-4000:]
    assert not probe_once("/readyz")["failures"]
