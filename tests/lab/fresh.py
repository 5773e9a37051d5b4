"""
Snapshots of controllers the formula never touched: taken in a fresh lab after boot and before
its first orchestration (files, unit files and enablement links, unit states, users and
groups, packages, sysctl, addresses, listening ports), which test_clean compares with the
controllers after its clean states. test_lab takes them in its own fresh lab and hands that lab,
converged, to test_clean with them (tests/lab/conftest.py): no second fresh lab and first
orchestration. A fresh lab forgets them (``FRESH`` holds those of the running lab only).
"""

import json

from tools.lab import lab

# {"snapshots": {controller: snapshot}} of the running lab, from before its first orchestration
FRESH: dict = {}

SNAPSHOT = r"""
import hashlib, json, os, pwd, grp, subprocess
ROOTS = ["/etc", "/lib/systemd/system", "/usr/sbin", "/usr/local", "/var/lib/kubernetes",
         "/var/lib/etcd", "/var/lib/haproxy"]
UNITS = ["haproxy", "keepalived", "etcd", "kube-apiserver", "kube-controller-manager",
         "kube-scheduler"]
def describe(path):
    st = os.lstat(path)
    kind = {0o040000: "dir", 0o120000: "link", 0o100000: "file"}.get(st.st_mode & 0o170000, "other")
    text = f"{kind} {st.st_mode & 0o7777:04o} {st.st_uid}:{st.st_gid}"
    if kind == "link":
        text += " -> " + os.readlink(path)
    elif kind == "file":
        with open(path, "rb") as fh:
            text += " sha256:" + hashlib.sha256(fh.read()).hexdigest()[:16]
    return text
DERIVED = {"/etc/ld.so.cache", "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-"}
files = {}
for root in ROOTS:
    if not os.path.lexists(root):
        continue
    files[root] = describe(root)
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            if os.path.join(top, name) not in DERIVED:
                files[os.path.join(top, name)] = describe(os.path.join(top, name))
auto = subprocess.run(["apt-mark", "showauto"], capture_output=True, text=True,
                      check=True).stdout.split()
owned = {}
for pkg in auto:
    for info in (pkg, pkg + ":amd64"):
        for suffix in (".list", ".conffiles"):
            path = f"/var/lib/dpkg/info/{info}{suffix}"
            if os.path.exists(path):
                owned.update((line.strip(), pkg) for line in open(path) if line.strip())
units = {}
for unit in UNITS:
    out = subprocess.run(["systemctl", "show", "-p", "LoadState,ActiveState,UnitFileState",
                          unit + ".service"], capture_output=True, text=True).stdout
    units[unit] = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
packages = {}  # every package dpkg knows in a state other than purged: version and status
out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version} ${Status}\\n"],
                     capture_output=True, text=True, check=True).stdout
for line in out.splitlines():
    pkg, version, status = line.split(" ", 2)
    if not status.endswith(" not-installed"):
        packages[pkg] = version if status == "install ok installed" else f"{version} {status}"
ports = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
addrs = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "enp0s8"],
                       capture_output=True, text=True).stdout.split()
print(json.dumps({
    "files": files,
    "units": units,
    "users": sorted(u.pw_name for u in pwd.getpwall()),
    "groups": sorted(g.gr_name for g in grp.getgrall()),
    "packages": packages,
    "sysctl net.ipv4.ip_nonlocal_bind": open("/proc/sys/net/ipv4/ip_nonlocal_bind").read().strip(),
    "addresses": sorted(w for w in addrs if "/" in w and "." in w),
    "listening tcp ports": sorted(ports),
    "auto-installed": auto,
    # dpkg may list /sbin/x for /usr/sbin/x (merged /usr)
    "files of auto-installed packages": {
        p: owned.get(p) or owned.get(p[4:]) for p in files
        if p in owned or (p.startswith("/usr/") and p[4:] in owned)},
}))
"""


def snapshot(name: str) -> dict:
    proc = lab.cexec(name, "python3 -", input=SNAPSHOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def remember() -> dict:
    """Snapshot every controller of a lab not yet orchestrated, kept for test_clean."""
    FRESH["snapshots"] = {name: snapshot(name) for name in lab.controllers()}
    return FRESH["snapshots"]
