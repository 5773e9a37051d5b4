"""
The contract between the formula's version table
(salt/k8s_control_plane/controlplane/parameters/versions.yaml) and the kube control plane test
doubles (tests/doubles/kube_double/flags.py), two tables written from separate readings of
upstream: for every minor the double covers, each component's flags as k8s_flags.flags
builds them (the utils' build_flags), with the files they point at rendered from the formula's
own templates (encryption config, scheduler config at the table's API version) and the cluster's
PKI, run through the double stamped with that minor in validate-only mode. The double must
accept them and print exactly the deprecation warnings the table declares. The double covers the
table's supported range up to the minors with a real build (tools/upstream_build.py
REAL_MINORS), where the binary is the authority (test_version_contract_real.py): together, the
whole range, once. Negative controls prove the contract can fail.
"""

import contextlib
import io
import os

import jinja2
import pytest

from tests.doubles.kube_double import COMPONENTS as DOUBLE_COMPONENTS
from tests.doubles.kube_double import SUPPORTED_MINORS
from tests.doubles.kube_double.__main__ import main as kube_double_main
from tests.doubles.kube_double.apiserver import RBAC_GROUP, rbac_versions
from tests.doubles.kube_double.flags import FLAGS as DOUBLE_FLAGS
from tests.doubles.kube_double.flags import SCHEDULER_CONFIG_VERSIONS
from tests.support.cluster import REPO, cluster_config, set_path, versions_table
from tools import upstream_build

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
FORMULA = REPO / "salt" / "k8s_control_plane"
# Each template where its component keeps it: the encryption config is pki's,
# the scheduler config the control plane's.
TEMPLATES = {
    "encryption-config.yaml.jinja": FORMULA / "pki" / "files" / "default",
    "kube-scheduler.yaml.jinja": FORMULA / "controlplane" / "files" / "default",
}
ADDRESS = "10.240.0.11"


def _minor(text):
    major, minor = str(text).split(".")[:2]
    return int(major), int(minor)


TABLE = versions_table()
LOW, HIGH = _minor(TABLE["supported"]["min"]), _minor(TABLE["supported"]["max"])
MINORS = list(range(LOW[1], HIGH[1] + 1))
# The table's minors split at the first one with a real build: the double's below, the real after.
REAL_MINORS = list(upstream_build.REAL_MINORS)
DOUBLE_MINORS = [m for m in MINORS if m < REAL_MINORS[0]]


def run_double(component, version, flags):
    """(exit status, stderr) of the double as ``component`` v``version``, validate-only."""
    err = io.StringIO()
    old = os.environ.get("KUBE_DOUBLE_VALIDATE_ONLY")
    os.environ["KUBE_DOUBLE_VALIDATE_ONLY"] = "1"
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = kube_double_main(["x", component, "--version-stamp", version, *flags])
    finally:
        if old is None:
            os.environ.pop("KUBE_DOUBLE_VALIDATE_ONLY", None)
        else:
            os.environ["KUBE_DOUBLE_VALIDATE_ONLY"] = old
    return status, err.getvalue()


def render(name, **context):
    loader = jinja2.FileSystemLoader(str(TEMPLATES[name]))
    env = jinja2.Environment(loader=loader, autoescape=False)
    return env.get_template(name).render(source=f"test of {name}", **context)


def controlplane(modules, cfg, table):
    return modules(
        "k8s_flags",
        __salt__={
            "k8s_cluster.config": lambda: cfg,
            "k8s_cluster.controller": lambda: {"id": "k8s-controller-1", "address": ADDRESS},
            "k8s_cluster.versions": lambda: table,
        },
    )


def write_files(mod, cfg, root):
    """The encryption and scheduler configs as the formula renders them, at the pillar's minor."""
    apis = mod.apis()
    secrets = cfg["secrets"]
    (root / "pki" / "encryption-config.yaml").write_text(
        render(
            "encryption-config.yaml.jinja",
            api_version=apis["encryption_config"],
            kind=apis["encryption_config_kind"],
            salt={"pillar.get": lambda _path, _default=None: secrets},
        )
    )
    (root / "config" / "kube-scheduler.yaml").write_text(
        render(
            "kube-scheduler.yaml.jinja",
            api_version=apis["scheduler_config"],
            pki_dir=cfg["controlplane"]["pki_dir"],
        )
    )
    return apis


def declared_warnings(table, component, minor, flags):
    """The deprecation lines the table declares for the flags written at ``minor``."""
    written = {f.split("=", 1)[0].lstrip("-") for f in flags}
    lines = []
    for entry in table["flags"][component]:
        deprecated = entry.get("deprecated")
        if entry["flag"] in written and deprecated and _minor(deprecated["since"]) <= minor:
            lines.append(deprecated["warning"])
    return sorted(lines)


def printed_warnings(stderr):
    return sorted(line for line in stderr.splitlines() if line.startswith("Flag --"))


# --------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------


def test_the_double_pretends_the_tables_supported_range():
    """The table's supported range is the double's plus the real minors: contiguous, no gap, no
    overlap (a minor is either pretended by the double or built from upstream, never both)."""
    assert (LOW[0], HIGH[0]) == (1, 1)
    assert MINORS[0] == 18 and MINORS[-1] == 37
    double = list(range(SUPPORTED_MINORS[0], SUPPORTED_MINORS[1] + 1))
    real = REAL_MINORS
    assert double[0] == LOW[1] and real[-1] == HIGH[1]  # from the table's first to its last
    assert double[-1] + 1 == real[0]  # no gap: the real minors begin where the double ends
    assert not set(double) & set(real)  # no overlap
    assert double + real == MINORS  # and nothing else: each of them once, in order
    assert double == DOUBLE_MINORS


@pytest.mark.parametrize("minor", DOUBLE_MINORS)
def test_every_components_flags_pass_the_double(modules, cluster_at, minor):
    version = f"1.{minor}.0"
    cfg, table, root = cluster_at(version)
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    for component in COMPONENTS:
        flags = mod.flags(component)
        status, stderr = run_double(component, version, flags)
        assert "unknown flag" not in stderr, f"{component} {version}: {stderr}"
        assert status == 0, f"{component} {version}: {flags}\n{stderr}"
        assert printed_warnings(stderr) == declared_warnings(table, component, (1, minor), flags)


@pytest.mark.parametrize("minor", [DOUBLE_MINORS[0], DOUBLE_MINORS[-1]])
def test_with_pki_source_salt_the_apiserver_presents_its_own_kubelet_client_certificate(
    modules, cluster_at, minor
):
    """
    pki:source salt (the default): the kubelet client flags name the
    apiserver-kubelet-client pair Salt issues, and the double accepts them;
    pki:source pillar (the seed's layout, the contract above) names kubernetes.pem. (The real
    minors: test_version_contract_real.py.)
    """
    version = f"1.{minor}.0"
    for source, name in (("salt", "apiserver-kubelet-client"), ("pillar", "kubernetes")):
        cfg, table, root = cluster_at(version, source=source)
        mod = controlplane(modules, cfg, table)
        write_files(mod, cfg, root)
        flags = mod.flags("kube-apiserver")
        assert f"--kubelet-client-certificate={root}/pki/{name}.pem" in flags, flags
        assert f"--kubelet-client-key={root}/pki/{name}-key.pem" in flags, flags
        status, stderr = run_double("kube-apiserver", version, flags)
        assert status == 0, f"{source} {version}: {flags}\n{stderr}"


@pytest.mark.parametrize("version", ["1.17.9", "1.38.0"])
def test_versions_outside_the_table_fail_validation_naming_the_range(rules, version):
    cfg = cluster_config("hardway")
    set_path(cfg, "kubernetes:version", version)
    errors = rules.validate_config(cfg, TABLE)
    assert (
        f"k8s_control_plane:kubernetes:version: {version} is unsupported; valid: 1.18.x - 1.37.x"
    ) in errors


def test_the_contract_covers_what_the_double_knows(rules):
    """
    The table against the double's own facts (tests/doubles/kube_double/, written from a
    separate reading of upstream): the same components, the table's minors below the first real
    one (16 x 3 runs of the parametrized contract test; the real minors' 4 x 3 are
    test_version_contract_real.py's, against the binaries), and at every such minor the table's
    scheduler config and RBAC API versions are ones the double serves at that minor.
    """
    double_minors = list(range(SUPPORTED_MINORS[0], SUPPORTED_MINORS[1] + 1))
    assert double_minors == DOUBLE_MINORS == MINORS[: MINORS.index(REAL_MINORS[0])]
    assert set(TABLE["flags"]) == set(DOUBLE_FLAGS) == set(DOUBLE_COMPONENTS) == set(COMPONENTS)
    assert len(double_minors) * len(DOUBLE_COMPONENTS) == 48
    assert len(REAL_MINORS) * len(COMPONENTS) == 12
    for minor in double_minors:
        apis = rules.api_versions(TABLE, f"1.{minor}.0")
        since, removed = SCHEDULER_CONFIG_VERSIONS[apis["scheduler_config"]]
        assert since <= minor and (removed is None or minor < removed), (minor, apis)
        group, version = apis["rbac"].split("/")
        assert group == RBAC_GROUP and version in rbac_versions(minor), (minor, apis)


# --------------------------------------------------------------------------
# The table's own annotations
# --------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_table_never_writes_a_flag_at_or_after_its_removal(component):
    for entry in TABLE["flags"][component]:
        if "removed" in entry:
            assert "until" in entry, entry["flag"]
            assert _minor(entry["until"]) <= _minor(entry["removed"]), entry["flag"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_required_flags_are_written_from_their_minor(rules, component):
    cfg = cluster_config("hardway")
    ctx = rules.flag_context(cfg, ADDRESS)
    for entry in TABLE["flags"][component]:
        since = (entry.get("required") or {}).get("since")
        for minor in MINORS if since else ():
            if (1, minor) >= _minor(since):
                flags = rules.build_flags(TABLE, component, f"1.{minor}.0", ctx)
                assert any(f.startswith(f"--{entry['flag']}=") for f in flags), (entry, minor)


def test_apiserver_count_only_before_1_24(rules):
    ctx = rules.flag_context(cluster_config("hardway"), ADDRESS)
    for minor in MINORS:
        flags = rules.build_flags(TABLE, "kube-apiserver", f"1.{minor}.0", ctx)
        assert ("--apiserver-count=3" in flags) == (minor < 24), minor


# --------------------------------------------------------------------------
# Negative controls: the contract can fail
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("component", "version", "flag", "value"),
    [
        ("kube-apiserver", "1.22.0", "kubelet-https", "true"),  # #101178
        ("kube-controller-manager", "1.24.0", "address", "0.0.0.0"),  # CHANGELOG-1.24
        ("kube-apiserver", "1.33.0", "cloud-provider", "external"),  # #130162
        ("kube-apiserver", "1.33.0", "cloud-config", "/etc/kubernetes/cloud.conf"),
        ("kube-apiserver", "1.26.0", "logtostderr", "true"),  # #112120
    ],
)
def test_a_removed_flag_fails_the_contract(modules, cluster_at, component, version, flag, value):
    cfg, table, root = cluster_at(version, extra_args={component: {flag: value}})
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    status, stderr = run_double(component, version, mod.flags(component))
    assert status == 1
    assert stderr.splitlines()[0] == f"Error: unknown flag: --{flag}"


def test_a_table_writing_a_removed_flag_fails_the_contract(modules, cluster_at):
    """The table as it would be had kubelet-https been kept until 1.23."""
    table = {**TABLE, "flags": {**TABLE["flags"]}}
    table["flags"]["kube-apiserver"] = [
        {**e, "until": "1.23"} if e["flag"] == "kubelet-https" else e
        for e in TABLE["flags"]["kube-apiserver"]
    ]
    cfg, _, root = cluster_at("1.22.5", table=table)
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    status, stderr = run_double("kube-apiserver", "1.22.5", mod.flags("kube-apiserver"))
    assert (status, stderr.splitlines()[0]) == (1, "Error: unknown flag: --kubelet-https")


def test_a_removed_scheduler_config_api_fails_the_contract(modules, cluster_at):
    """v1beta3 is gone in 1.29 (#119994): a table still writing it fails."""
    table = {
        **TABLE,
        "scheduler_config_api": [
            *TABLE["scheduler_config_api"][:-1],
            {"since": "1.25", "api": "kubescheduler.config.k8s.io/v1beta3"},
        ],
    }
    cfg, _, root = cluster_at("1.29.1", table=table)
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    status, stderr = run_double("kube-scheduler", "1.29.1", mod.flags("kube-scheduler"))
    assert status == 1
    assert "is registered for version" in stderr
    assert "kubescheduler.config.k8s.io/v1beta3" in stderr


@pytest.mark.parametrize(
    ("plugin", "last_minor"),
    [("DenyEscalatingExec", 20), ("SecurityContextDeny", 29), ("PersistentVolumeLabel", 30)],
)
def test_removed_admission_plugins_fail_the_contract(modules, cluster_at, plugin, last_minor):
    for minor, ok in ((last_minor, True), (last_minor + 1, False)):
        version = f"1.{minor}.2"
        plugins = f"NamespaceLifecycle,NodeRestriction,{plugin}"
        extra = {"kube-apiserver": {"enable-admission-plugins": plugins}}
        cfg, table, root = cluster_at(version, extra_args=extra)
        mod = controlplane(modules, cfg, table)
        write_files(mod, cfg, root)
        status, stderr = run_double("kube-apiserver", version, mod.flags("kube-apiserver"))
        assert (status == 0) == ok, (version, stderr)
        if not ok:
            unknown = f'plugin "{plugin}" is unknown'
            assert unknown in stderr.replace('\\"', '"'), stderr


def test_a_missing_deprecation_declaration_fails_the_contract(modules, cluster_at):
    """The double prints the 1.18 controller-manager's --address warning; a table without the
    declaration disagrees with it."""
    table = {**TABLE, "flags": {**TABLE["flags"]}}
    table["flags"]["kube-controller-manager"] = [
        {k: v for k, v in e.items() if k != "deprecated"}
        for e in TABLE["flags"]["kube-controller-manager"]
    ]
    cfg, _, root = cluster_at("1.18.6", table=table)
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    flags = mod.flags("kube-controller-manager")
    status, stderr = run_double("kube-controller-manager", "1.18.6", flags)
    assert status == 0
    assert printed_warnings(stderr) == [
        "Flag --address has been deprecated, see --bind-address instead."
    ]
    assert declared_warnings(table, "kube-controller-manager", (1, 18), flags) == []


# --------------------------------------------------------------------------
# Structured authorization: not offered; the double refuses the combination
# --------------------------------------------------------------------------

AUTHZ = """\
apiVersion: apiserver.config.k8s.io/v1
kind: AuthorizationConfiguration
authorizers:
  - type: Node
    name: node
  - type: RBAC
    name: rbac
"""


def test_authorization_config_is_exclusive_with_authorization_mode(modules, cluster_at):
    version = "1.32.3"
    cfg, table, root = cluster_at(version)
    authz = root / "authz.yaml"
    authz.write_text(AUTHZ)
    extra = {"kube-apiserver": {"authorization-config": str(authz)}}
    set_path(cfg, "controlplane:extra_args", extra)
    mod = controlplane(modules, cfg, table)
    write_files(mod, cfg, root)
    assert "--authorization-mode=Node,RBAC" in mod.flags("kube-apiserver")
    status, stderr = run_double("kube-apiserver", version, mod.flags("kube-apiserver"))
    assert status == 1
    assert (
        "--authorization-config can not be specified when --authorization-mode or "
        "--authorization-webhook-* flags are defined"
    ) in stderr
    set_path(cfg, "controlplane:extra_args:kube-apiserver:authorization-mode", None)
    status, stderr = run_double("kube-apiserver", version, mod.flags("kube-apiserver"))
    assert status == 0, stderr
