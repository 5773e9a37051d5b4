"""
loadbalancer.sysctl.clean gives net.ipv4.ip_nonlocal_bind back the value the
host has without our drop-in (its other sysctl files, else the kernel's 0),
not a blind 0. The SLS runs with a fake host: its sysctl.d files as a mapping.
"""

import importlib.util

import pytest

from tests.support.cluster import REPO

SLS = REPO / "salt" / "k8s_control_plane" / "loadbalancer" / "sysctl" / "clean.sls"
OURS = "/etc/sysctl.d/60-k8s-loadbalancer.conf"
SID = "k8s_control_plane-loadbalancer-sysctl-clean"


def clean(files):
    """run() of the SLS on a host whose sysctl files are ``files`` ({path: {key: value}})."""
    spec = importlib.util.spec_from_loader("sysctl_clean_sls", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(SLS.read_text(), str(SLS), "exec"), module.__dict__)
    dirs = {path.rsplit("/", 1)[0] for path in files}
    module.__salt__ = {
        "k8s_cluster.config": lambda: {"loadbalancer": {"sysctl": {"config": OURS}}},
        "file.directory_exists": lambda d: d in dirs,
        "file.readdir": lambda d: (
            [".", "..", *sorted(p.rsplit("/", 1)[1] for p in files if p.rsplit("/", 1)[0] == d)]
        ),
        "sysctl.show": lambda config_file: files.get(config_file, []),
    }
    module.sls = "k8s_control_plane.loadbalancer.sysctl.clean"
    return module.run()


def command(states):
    (name,) = [a["name"] for a in states[f"{SID}-cmd-run"]["cmd.run"] if "name" in a]
    return name


def test_the_drop_in_goes_and_the_kernel_default_comes_back():
    states = clean({OURS: {"net.ipv4.ip_nonlocal_bind": "1"}})
    assert states[f"{SID}-file-absent"] == {"file.absent": [{"name": OURS}]}
    assert command(states) == "sysctl -w net.ipv4.ip_nonlocal_bind=0"
    assert states[f"{SID}-cmd-run"]["cmd.run"][1] == {"onchanges": [{"file": f"{SID}-file-absent"}]}


@pytest.mark.parametrize(
    ("files", "value"),
    [
        # another service's drop-in keeps the key at 1
        ({"/etc/sysctl.d/50-vip.conf": {"net.ipv4.ip_nonlocal_bind": "1"}}, "1"),
        # file-name order: the later file wins; /etc/sysctl.conf last
        (
            {
                "/usr/lib/sysctl.d/10-a.conf": {"net.ipv4.ip_nonlocal_bind": "1"},
                "/etc/sysctl.d/20-b.conf": {"net/ipv4/ip_nonlocal_bind": "0"},
            },
            "0",
        ),
        (
            {
                "/etc/sysctl.d/90-z.conf": {"net.ipv4.ip_nonlocal_bind": "0"},
                "/etc/sysctl.conf": {"-net.ipv4.ip_nonlocal_bind": " 1"},
            },
            "1",
        ),
        # a file of ours' name further down applies once ours is gone
        ({"/usr/lib/sysctl.d/60-k8s-loadbalancer.conf": {"net.ipv4.ip_nonlocal_bind": "1"}}, "1"),
        # a same-named file in /etc masks the one in /usr/lib
        (
            {
                "/etc/sysctl.d/50-x.conf": {"kernel.pid_max": "4194304"},
                "/usr/lib/sysctl.d/50-x.conf": {"net.ipv4.ip_nonlocal_bind": "1"},
            },
            "0",
        ),
        # other keys, and files that are not .conf, do not count
        ({"/etc/sysctl.d/README": {"net.ipv4.ip_nonlocal_bind": "1"}}, "0"),
    ],
)
def test_the_value_the_host_configures_without_us(files, value):
    files = {OURS: {"net.ipv4.ip_nonlocal_bind": "1"}, **files}
    assert command(clean(files)) == f"sysctl -w net.ipv4.ip_nonlocal_bind={value}"
