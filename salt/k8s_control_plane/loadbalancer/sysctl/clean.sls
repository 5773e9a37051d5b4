#!py
"""
Undo loadbalancer.sysctl: remove our drop-in (loadbalancer:sysctl:config),
then give net.ipv4.ip_nonlocal_bind the value the host has without it: the
one its remaining sysctl configuration sets (what its next boot applies),
else the kernel's default, 0. Not a blind 0: another service on the host (a
second VIP, a proxy) may set the same key to 1 in a file of its own, and
would lose it. A value set by hand (sysctl -w) before the formula ran is not
brought back: nothing recorded it, and a reboot would not keep it either.
Nothing runs when the drop-in is already gone, so a second clean changes
nothing.
"""

KEY = "net.ipv4.ip_nonlocal_bind"
KERNEL_DEFAULT = "0"
# sysctl.d(5): of the files with one name the first directory's wins; all
# apply in file-name order, then /etc/sysctl.conf (procps' sysctl --system).
DIRS = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)
SYSCTL_CONF = "/etc/sysctl.conf"


def _configured(ours):
    """The value the host's sysctl files other than ``ours`` give KEY; None when none does."""
    chosen = {}
    for directory in DIRS:
        if not __salt__["file.directory_exists"](directory):
            continue
        for name in __salt__["file.readdir"](directory):
            path = f"{directory}/{name}"
            # Without ours, a file of the same name further down applies again.
            if name.endswith(".conf") and name not in chosen and path != ours:
                chosen[name] = path
    value = None
    for path in [chosen[name] for name in sorted(chosen)] + [SYSCTL_CONF]:
        for key, setting in (__salt__["sysctl.show"](config_file=path) or {}).items():
            if key.lstrip("-").replace("/", ".").strip() == KEY:
                value = str(setting).strip()
    return value


def run():
    root = sls.split(".")[0]
    sid = f"{root}-loadbalancer-sysctl-clean"
    ours = __salt__["k8s_cluster.config"]()["loadbalancer"]["sysctl"]["config"]
    value = _configured(ours)
    restored = KERNEL_DEFAULT if value is None else value
    return {
        f"{sid}-file-absent": {"file.absent": [{"name": ours}]},
        f"{sid}-cmd-run": {
            "cmd.run": [
                {"name": f"sysctl -w {KEY}={restored}"},
                {"onchanges": [{"file": f"{sid}-file-absent"}]},
            ]
        },
    }
