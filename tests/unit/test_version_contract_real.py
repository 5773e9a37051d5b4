"""
The version table (salt/k8s_control_plane/controlplane/parameters/versions.yaml) against the real
binaries: for every release the lab runs on upstream's code (tools/upstream_build.py
TESTED_RELEASES, built from k8s.io/kubernetes's Go modules, or taken from the build cache), each
component's flags as k8s_flags.flags writes them must be flags that release's binary
offers (`--help`), the flags the table says were removed by then must not be, the scheduler
must accept the rendered KubeSchedulerConfiguration, and `--version` must print the release. The
binaries also parse the whole command line written (pflag reads every flag and prints its
deprecation warnings before `--version` exits): it must parse, with exactly the warnings the
table declares. For these minors the binary is the authority (the double refuses them); the
double's contract (test_version_contract.py) covers the others. A cold build of a release takes
minutes, once per machine: `make test` builds the lab's releases (LAB_RELEASES) and checks the
others where they are cached.
"""

import re
import subprocess

import pytest

from tests.unit.test_version_contract import (
    COMPONENTS,
    TABLE,
    _minor,
    controlplane,
    declared_warnings,
    printed_warnings,
    write_files,
)
from tools import upstream_build

RELEASES = upstream_build.TESTED_RELEASES
_FLAG = re.compile(r"^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)", re.MULTILINE)


@pytest.fixture(scope="module")
def bin_dir():
    """bin_dir(version): the release's binaries, built once per machine (then cached). A
    release the lab tests do not run on (upstream_build.LAB_RELEASES) is checked where it is
    cached and skipped, saying how to build it, where it is not: building every release cold
    would take a cold `.ci/run` past its time."""

    def binaries(version):
        if version not in upstream_build.LAB_RELEASES and not upstream_build.cached(
            "kubernetes", version
        ):
            pytest.skip(
                f"{version} is not built on this machine (a cold build takes 7-13 minutes): "
                f"`make lab VERSION={version}` or `python -m tools.upstream_build kubernetes "
                f"{version}` builds it"
            )
        return upstream_build.build("kubernetes", version)

    return binaries


def offered(binary) -> set[str]:
    """The flags a binary lists in its --help (pflag hides deprecated flags there)."""
    proc = subprocess.run([binary, "--help"], capture_output=True, text=True, check=False)
    text = proc.stdout + proc.stderr
    flags = set(_FLAG.findall(text))
    assert len(flags) > 20, f"{binary} --help listed no flags: {text[:2000]}"
    return flags


@pytest.mark.parametrize("version", RELEASES)
def test_every_flag_written_is_offered_by_the_real_binary(modules, cluster_at, bin_dir, version):
    cfg, table, root = cluster_at(version, source="salt")
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    for component in COMPONENTS:
        flags = offered(bin_dir(version) / component)
        written = {f.split("=", 1)[0].removeprefix("--") for f in mod.flags(component)}
        assert written <= flags, f"{component} {version} lacks {sorted(written - flags)}"


def parse(binary, flags):
    """The binary parsing ``flags`` and exiting at --version (nothing is served or read)."""
    return subprocess.run(
        [binary, *flags, "--version"], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize("version", RELEASES)
def test_the_real_binaries_parse_the_flags_written_and_warn_as_declared(
    modules, cluster_at, bin_dir, version
):
    """The double's contract (test_version_contract.py) as far as a binary answers it without
    serving: every flag parses (names and values) and the deprecation warnings printed are the
    ones the table declares. pki:source salt, the default: the apiserver's kubelet client is the
    apiserver-kubelet-client pair."""
    cfg, table, root = cluster_at(version, source="salt")
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    apiserver = mod.flags("kube-apiserver")
    assert f"--kubelet-client-certificate={root}/pki/apiserver-kubelet-client.pem" in apiserver
    assert f"--kubelet-client-key={root}/pki/apiserver-kubelet-client-key.pem" in apiserver
    for component in COMPONENTS:
        flags = mod.flags(component)
        proc = parse(bin_dir(version) / component, flags)
        assert (proc.returncode, proc.stdout.strip()) == (0, f"Kubernetes v{version}"), (
            f"{component} {version}: {flags}\n{proc.stderr[-3000:]}"
        )
        declared = declared_warnings(table, component, _minor(version), flags)
        assert printed_warnings(proc.stderr) == declared, (component, version)


def test_a_declared_deprecation_is_what_the_real_apiserver_prints(modules, cluster_at, bin_dir):
    """Control for the warnings above (none is written at the real minors): --apiserver-count,
    deprecated in 1.24 (#108062), given through extra_args, is warned about as the table says."""
    version = RELEASES[-1]
    extra = {"kube-apiserver": {"apiserver-count": "3"}}
    cfg, table, root = cluster_at(version, extra_args=extra, source="salt")
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    flags = mod.flags("kube-apiserver")
    assert "--apiserver-count=3" in flags
    proc = parse(bin_dir(version) / "kube-apiserver", flags)
    assert proc.returncode == 0, proc.stderr[-3000:]
    declared = declared_warnings(table, "kube-apiserver", _minor(version), flags)
    assert printed_warnings(proc.stderr) == declared
    assert declared == [
        "Flag --apiserver-count has been deprecated, apiserver-count is deprecated and will be "
        "removed in a future version."
    ]


@pytest.mark.parametrize("version", RELEASES)
def test_flags_the_table_says_removed_are_gone_from_the_real_binary(bin_dir, version):
    minor = _minor(version)
    for component in COMPONENTS:
        flags = offered(bin_dir(version) / component)
        for entry in TABLE["flags"][component]:
            if "removed" in entry and minor >= _minor(entry["removed"]):
                assert entry["flag"] not in flags, (component, version, entry)


@pytest.mark.parametrize("version", RELEASES)
def test_the_real_scheduler_accepts_the_rendered_config(
    modules, cluster_at, bin_dir, tmp_path, version
):
    """--write-config-to loads and validates --config, writes the defaulted result and exits."""
    cfg, table, root = cluster_at(version, source="salt")
    mod = controlplane(modules, cfg, table)
    apis = write_files(mod, cfg, root)
    out = tmp_path / "written.yaml"
    proc = subprocess.run(
        [
            bin_dir(version) / "kube-scheduler",
            f"--config={root}/config/kube-scheduler.yaml",
            f"--write-config-to={out}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"apiVersion: {apis['scheduler_config']}" in out.read_text()


@pytest.mark.parametrize("version", RELEASES)
def test_the_real_binaries_print_their_release(bin_dir, version):
    for component in COMPONENTS:
        proc = subprocess.run(
            [bin_dir(version) / component, "--version"], capture_output=True, text=True, check=False
        )
        assert proc.stdout.strip() == f"Kubernetes v{version}", (component, proc)


def test_a_removed_flag_is_refused_by_the_real_apiserver(bin_dir):
    """Negative control: --cloud-provider, removed in 1.33 (#130162), is refused by name."""
    version = RELEASES[-1]
    binary = bin_dir(version) / "kube-apiserver"
    assert "cloud-provider" not in offered(binary)
    proc = subprocess.run(
        [binary, "--cloud-provider=external", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "unknown flag: --cloud-provider" in proc.stderr, proc.stderr[-1000:]
