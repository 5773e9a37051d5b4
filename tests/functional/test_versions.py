"""
The hardway cluster rendered at the Kubernetes minors whose files differ (1.18.6, the seed's; 1.24,
1.29, 1.33 and 1.37 with kubernetes:version overridden): the units, the scheduler and
encryption configs and the RBAC objects match the golden files, and the RBAC objects and config
files are valid for that minor.

RBAC objects are checked against the minor's OpenAPI schema with kubernetes-validate where the
package has the minor (1.37.0 of the package has 1.25-1.37; not 1.18 or 1.24), otherwise by
hand: apiVersion and kind, and the apiserver's own field validation as the kube double does it.
The config files are not API resources (no schema package has them): apiVersion and kind
against the double's facts for the minor, the fields the components require, and the double's
encryption config check.

Regenerate after an intended change with ``UPDATE_GOLDEN=1`` and review the diff.
"""

import importlib.resources

import pytest
import yaml

from tests.doubles.kube_double.apiserver import ApiError, validate_rbac
from tests.doubles.kube_double.checks import Checker
from tests.doubles.kube_double.flags import SCHEDULER_CONFIG_VERSIONS, exists_in
from tests.support.golden import GOLDEN, VERSIONED_FILES, golden_text
from tools.render import render_minion

MINION = "k8s-controller-1"  # applies the RBAC objects
# The version-dependent files of the golden list (the load balancer's are not).
FILES = VERSIONED_FILES
# version -> golden folder (1.18.6 is the hardway cluster itself, test_render's golden).
VERSIONS = {
    "1.18.6": "hardway",
    "1.24.0": "hardway-v1.24",
    "1.29.0": "hardway-v1.29",
    "1.33.0": "hardway-v1.33",
    "1.37.1": "hardway-v1.37",
}
REDACTED_KEY = "<redacted: k8s_control_plane:secrets:encryption_key>"
FINE_GRAINED = {"nodes/pods", "nodes/healthz", "nodes/configz"}


def schema_minors():
    """The Kubernetes minors kubernetes-validate has schemas for (empty without the package)."""
    try:
        root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    except ModuleNotFoundError:
        return set()
    found = set()
    for entry in root.iterdir():
        name = entry.name  # v1.29.0-local-strict
        if name.startswith("v1.") and name.endswith("-local-strict"):
            found.add(int(name.split(".")[1]))
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """rendered(minion_for, version) -> (out dir, encryption key), rendered once per version."""
    done = {}

    def render(minion_for, version):
        if version not in done:
            extra = None if version == "1.18.6" else {"kubernetes": {"version": version}}
            minion = minion_for("hardway", MINION, extra=extra)
            out = tmp_path_factory.mktemp(f"render-{version}")
            render_minion(minion, out)
            key = minion.pillar["k8s_control_plane"]["secrets"]["encryption_key"]
            done[version] = (out, key)
        return done[version]

    return render


@pytest.mark.parametrize("version", sorted(VERSIONS, key=lambda v: int(v.split(".")[1])))
def test_rendered_files_match_golden(minion_for, rendered, version):
    out, _ = rendered(minion_for, version)
    for name in FILES:
        golden = GOLDEN / VERSIONS[version] / MINION / name
        text = (out / name).read_text()
        assert text == golden_text(golden, text), f"{version}: {name}"


@pytest.mark.parametrize("version", list(VERSIONS))
def test_rbac_objects_are_valid_for_the_minor(minion_for, rendered, version):
    out, _ = rendered(minion_for, version)
    minor = int(version.split(".")[1])
    role = yaml.safe_load((out / FILES[5]).read_text())
    binding = yaml.safe_load((out / FILES[6]).read_text())
    for obj, kind in ((role, "ClusterRole"), (binding, "ClusterRoleBinding")):
        assert (obj["apiVersion"], obj["kind"]) == ("rbac.authorization.k8s.io/v1", kind)
        try:
            validate_rbac(obj, None)  # the apiserver's field validation, as the double has it
        except ApiError as exc:
            pytest.fail(f"{version} {kind}: {exc.message}")
    if minor in schema_minors():
        import kubernetes_validate  # only where the package has the minor

        for obj in (role, binding):
            kubernetes_validate.validate(obj, f"1.{minor}.0", strict=True)
    granted = {r for rule in role["rules"] for r in rule["resources"] if "*" in rule["verbs"]}
    assert {"nodes/proxy", "nodes/stats", "nodes/log", "nodes/metrics"} <= granted
    assert (granted >= FINE_GRAINED) == (minor >= 33)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_kubernetes_validate_covers_the_newer_goldens():
    """Which golden minors get the schema check: say so when the package lacks one."""
    minors = schema_minors()
    if not minors:
        pytest.skip("kubernetes-validate is not installed (requirements.txt pins it)")
    covered = sorted(m for m in (18, 24, 29, 33, 37) if m in minors)
    assert covered == [29, 33, 37], sorted(minors)


@pytest.mark.parametrize("version", list(VERSIONS))
def test_config_files_are_valid_for_the_minor(minion_for, rendered, version, tmp_path):
    out, key = rendered(minion_for, version)
    minor = int(version.split(".")[1])
    sched = yaml.safe_load((out / FILES[3]).read_text())
    assert sched["kind"] == "KubeSchedulerConfiguration"
    span = SCHEDULER_CONFIG_VERSIONS.get(sched["apiVersion"])
    assert span and exists_in(*span, minor), (version, sched["apiVersion"])
    assert (
        sched["clientConnection"]["kubeconfig"] == "/var/lib/kubernetes/kube-scheduler.kubeconfig"
    )
    assert sched["leaderElection"]["leaderElect"] is True

    text = (out / FILES[4]).read_text()
    assert REDACTED_KEY in text  # the golden holds no secret
    text = text.replace(REDACTED_KEY, key)
    enc = yaml.safe_load(text)
    assert (enc["apiVersion"], enc["kind"]) == (
        "apiserver.config.k8s.io/v1",
        "EncryptionConfiguration",
    )
    assert enc["resources"][0]["resources"] == ["secrets"]
    path = tmp_path / "encryption-config.yaml"
    path.write_text(text)
    Checker("kube-apiserver", minor, {}, str(tmp_path)).encryption_config(
        "encryption-provider-config", str(path)
    )


def test_units_differ_only_where_the_table_says(minion_for, rendered):
    """1.18 keeps the seed's --kubelet-https and controller-manager --address; 1.24 on have
    neither --apiserver-count nor the 1.18-only flags; 1.20 on carry the issuer."""
    for version in VERSIONS:
        out, _ = rendered(minion_for, version)
        minor = int(version.split(".")[1])
        api = (out / FILES[0]).read_text()
        kcm = (out / FILES[1]).read_text()
        assert ("--kubelet-https=true" in api) == (minor < 19)
        assert ("--apiserver-count=3" in api) == (minor < 24)
        assert ("--service-account-issuer=" in api) == (minor >= 20)
        assert ("--address=0.0.0.0" in kcm) == (minor < 19)
        assert ("--bind-address=0.0.0.0" in kcm) == (minor >= 19)
