"""
k8s_health.versions and its _binary_version: the installed binaries' versions
(real executables: small scripts in tmp_path) and the version the local
apiserver serves (its GET mocked).
"""

import subprocess

import pytest

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def executable(path, body):
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def health(modules, tmp_path):
    cfg = {
        "controlplane": {
            "bin_dir": str(tmp_path / "bin"),
            "apiserver_port": 6443,
            "pki_dir": "/var/lib/kubernetes",
        },
        "kubernetes": {"version": "v1.18.6"},
    }
    (tmp_path / "bin").mkdir()
    return modules("k8s_health", __salt__={"k8s_cluster.config": lambda: cfg})


def test_a_binary_that_prints_its_version(health, tmp_path):
    path = executable(tmp_path / "kube-apiserver", "echo 'Kubernetes v1.36.2'")
    assert health._binary_version(path) == "1.36.2"


def test_a_missing_binary_has_no_version(health, tmp_path):
    assert health._binary_version(str(tmp_path / "absent")) is None


def test_a_binary_that_fails_has_no_version(health, tmp_path):
    path = executable(tmp_path / "kube-apiserver", "echo 'Kubernetes v1.36.2'; exit 1")
    assert health._binary_version(path) is None


def test_a_binary_without_a_version_in_its_output_has_none(health, tmp_path):
    path = executable(tmp_path / "kube-apiserver", "echo 'Kubernetes 1.36'")
    assert health._binary_version(path) is None


def test_a_file_that_cannot_run_has_no_version(health, tmp_path):
    path = tmp_path / "kube-apiserver"
    path.write_text("not a program")
    path.chmod(0o644)
    assert health._binary_version(str(path)) is None


def test_a_binary_that_hangs_has_no_version(health, tmp_path, monkeypatch):
    """The real timeout path, shortened from 10 s (the script would sleep 30 s)."""
    path = executable(tmp_path / "kube-apiserver", "sleep 30; echo 'Kubernetes v1.36.2'")
    real_run = subprocess.run
    seen = []

    def short_run(*args, **kwargs):
        seen.append(kwargs["timeout"])
        return real_run(*args, **dict(kwargs, timeout=0.3))

    monkeypatch.setattr(subprocess, "run", short_run)
    assert health._binary_version(path) is None
    assert seen == [10]


def test_versions_of_every_binary_and_what_the_local_apiserver_serves(
    health, tmp_path, monkeypatch
):
    for component, version in zip(COMPONENTS, ("1.36.2", "1.36.1", "1.35.4"), strict=True):
        executable(tmp_path / "bin" / component, f"echo 'Kubernetes v{version}'")
    asked = []

    def get(url, ca_file=None, timeout=3.0, **kwargs):
        asked.append((url, ca_file))
        return {"ok": True, "status": 200, "body": '{"gitVersion": "v1.36.2"}'}

    monkeypatch.setattr(health, "_get", get)
    assert health.versions() == {
        "installed": {
            "kube-apiserver": "1.36.2",
            "kube-controller-manager": "1.36.1",
            "kube-scheduler": "1.35.4",
        },
        "serving": "1.36.2",
        "pillar": "1.18.6",
    }
    assert asked == [("https://127.0.0.1:6443/version", "/var/lib/kubernetes/ca.pem")]


def test_versions_without_an_apiserver_asks_nothing(health, tmp_path, monkeypatch):
    executable(tmp_path / "bin" / "kube-scheduler", "echo 'Kubernetes v1.36.2'")
    monkeypatch.setattr(health, "_get", lambda *a, **k: pytest.fail("asked an apiserver"))
    assert health.versions() == {
        "installed": {
            "kube-apiserver": None,
            "kube-controller-manager": None,
            "kube-scheduler": "1.36.2",
        },
        "serving": None,
        "pillar": "1.18.6",
    }


def test_versions_with_an_apiserver_that_does_not_answer(health, tmp_path, monkeypatch):
    executable(tmp_path / "bin" / "kube-apiserver", "echo 'Kubernetes v1.36.2'")
    down = {"ok": False, "status": None, "body": "", "error": "connection refused"}
    monkeypatch.setattr(health, "_get", lambda *a, **k: down)
    assert health.versions()["serving"] is None


@pytest.mark.parametrize(
    ("inter", "seconds"),
    [("500ms", 0.25), ("10s", 0.5), ("2000", 0.5), ("60ms", 0.05), ("1s", 0.5), ("400ms", 0.2)],
)
def test_wait_ready_looks_again_at_half_haproxys_check_interval(health, inter, seconds):
    assert health._poll_interval({"loadbalancer": {"haproxy": {"inter": inter}}}) == seconds
