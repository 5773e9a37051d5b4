#!/usr/bin/env python3
"""Build Kubernetes and etcd release binaries from their upstream Go modules, cached.

Why a wrapper module: k8s.io/kubernetes's published go.mod requires its staging modules
(k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 with `replace => ./staging/src/...`, and
`go install pkg@version` refuses a module with replace directives. The accepted way
(kubernetes/kubernetes#79384) is a module of our own that requires k8s.io/kubernetes v1.Y.Z and
replaces each staging module with its published tag v0.Y.Z. The staging list is *generated*
from that release's own go.mod (`go mod edit -json`), never hand-copied; the `go` and `godebug`
lines come from it too.

Build settings are upstream's (hack/lib/golang.sh, hack/lib/version.sh of the release):
CGO_ENABLED=0, -trimpath, `-s -w`, tags selinux,notest,grpcnotrace, and the version stamped with
-X on k8s.io/component-base/version and k8s.io/client-go/pkg/version (component-base derives the
binary's effective version and feature-gate defaults from gitVersion: not cosmetic). The commit
is not stamped (the module zip does not carry it); gitTreeState is "archive", as upstream says
of a build from a source archive.

etcd: go.etcd.io/etcd/server/v3 (main.go calls etcdmain.Main), etcdctl/v3 and etcdutl/v3, each
built from a wrapper module that requires it (their own go.mod files replace siblings with ../
paths, which a dependency's replace lines do not carry over; their requires name real versions).

Everything lives outside the clone, in CACHE (default /var/cache/k8s-salt-lab/build): Go's module
and build caches, and one directory per release keyed by the Go version and this recipe's hash,
so that a fresh clone on the same machine finds the binaries warm.

    python3 tools/upstream_build.py kubernetes 1.37.2
    python3 tools/upstream_build.py etcd 3.7.0
    python3 tools/upstream_build.py list
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("K8S_BUILD_CACHE", "/var/cache/k8s-salt-lab/build"))

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBE_TAGS = "selinux,notest,grpcnotrace"
# hack/lib/version.sh sets each key on both packages.
VERSION_PACKAGES = ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version")
ETCD_COMMANDS = {
    "etcd": "go.etcd.io/etcd/server/v3",
    "etcdctl": "go.etcd.io/etcd/etcdctl/v3",
    "etcdutl": "go.etcd.io/etcd/etcdutl/v3",
}
# The etcd the lab runs: what Kubernetes 1.37.2 names for 1.34-1.37 (kubeadm's
# cmd/kubeadm/app/constants/constants.go DefaultEtcdVersion "3.7.0-0" and SupportedEtcdVersion;
# build/dependencies.yaml "etcd: version: 3.7.0"). Not the 3.6 line: 1.37.2 moved to 3.7.0.
ETCD_VERSION = "3.7.0"
# Minors whose k8s.io/kubernetes module graph the Go module proxy serves whole and that built
# here (measured; see docs/lab.md, "Real binaries"). Others run on the test doubles in the lab.
REAL_MINORS = range(34, 38)
# One release per real minor: the version table's contract runs against each one built here.
TESTED_RELEASES = ("1.34.4", "1.35.4", "1.36.3", "1.37.2")
# The releases `make test` builds when they are not cached (its lab tests run on them: the
# upgrade 1.36.3 -> 1.37.2, the lab's default 1.37.2). A cold build takes 7-13 minutes each on
# 2 cores: building all four would take a cold `.ci/run` past its 85 minutes. The others are
# built by `make upgrades` (1.35.4), `make lab VERSION=...` or `python -m tools.upstream_build
# kubernetes X`; their contract tests run wherever they are cached.
LAB_RELEASES = ("1.36.3", "1.37.2")
# `make upgrades`: the upgrade variants over three releases (a two-minor jump refused, the
# move_vip upgrade by pillar, then the command-line upgrade)
UPGRADE_PATH = ("1.35.4", "1.36.3", "1.37.2")
# Bump when the way a release is built changes: the hash keys the cache with the settings above.
RECIPE = 2


class BuildError(RuntimeError):
    """A build step failed; the message names the step and ends with Go's own output."""


def _say(msg: str) -> None:
    print(f"[build] {msg}", file=sys.stderr, flush=True)


def go_env() -> dict[str, str]:
    """The environment for every go command: this machine's proxy settings, our caches."""
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(CACHE / "gomod"),
        GOCACHE=str(CACHE / "gocache"),
        GOPATH=str(CACHE / "gopath"),
        GOFLAGS="-mod=mod",
        CGO_ENABLED="0",
        GOTOOLCHAIN=env.get("GOTOOLCHAIN", "local"),
    )
    return env


def go_binary() -> str:
    """The machine's go (on PATH, else where the machine kind installs it)."""
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists():
        raise BuildError("no go command: this machine kind installs Go 1.26 in /usr/local/go")
    return found


def _go(args: list[str], *, cwd: Path | None = None, step: str) -> str:
    proc = subprocess.run(
        [go_binary(), *args], cwd=cwd, env=go_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise BuildError(f"{step}: go {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


@functools.cache
def go_version() -> str:
    """The Go version, asked once per process (every cache lookup keys on it)."""
    return _go(["env", "GOVERSION"], step="go version").strip()


def recipe_key(kind: str) -> str:
    settings = {
        "recipe": RECIPE,
        "kind": kind,
        "tags": KUBE_TAGS,
        "commands": KUBE_COMMANDS if kind == "kubernetes" else ETCD_COMMANDS,
        "version_packages": VERSION_PACKAGES,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return f"{go_version()}-{digest}"


def real(version: str) -> bool:
    """Whether a Kubernetes version's minor has a real build (else the lab runs the doubles)."""
    return int(version.lstrip("v").split(".")[1]) in REAL_MINORS


def real_minors_text() -> str:
    return f"1.{REAL_MINORS[0]}-1.{REAL_MINORS[-1]}"


def release_dir(kind: str, version: str) -> Path:
    return CACHE / kind / f"v{version.lstrip('v')}" / recipe_key(kind)


# ---------------------------------------------------------------------------------------------
# the wrapper modules


def kubernetes_go_mod(version: str) -> str:
    """The wrapper go.mod for k8s.io/kubernetes v<version>, generated from that release's go.mod."""
    version = "v" + version.lstrip("v")
    info = json.loads(
        _go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], step="download")
    )
    upstream = json.loads(_go(["mod", "edit", "-json", info["GoMod"]], step="read go.mod"))
    staging_tag = "v0." + version.split(".", 1)[1]  # 1.37.2 <-> v0.37.2
    replaces = []
    for rep in upstream.get("Replace") or []:
        new = rep["New"]["Path"]
        if not new.startswith("./staging/src/"):
            raise BuildError(f"{version}: unexpected replace in upstream go.mod: {rep}")
        replaces.append(f"\t{rep['Old']['Path']} => {rep['Old']['Path']} {staging_tag}")
    if not replaces:
        raise BuildError(f"{version}: upstream go.mod has no staging replace block")
    godebug = [f"godebug {d['Key']}={d['Value']}" for d in upstream.get("GoDebug") or []]
    lines = [
        f"// Generated by tools/upstream_build.py from k8s.io/kubernetes {version}'s go.mod.",
        "module k8s-salt-lab/build/kubernetes",
        "",
        f"go {upstream['Go']}",
        *(["", *godebug] if godebug else []),
        "",
        f"require k8s.io/kubernetes {version}",
        "",
        "replace (",
        *replaces,
        ")",
        "",
    ]
    return "\n".join(lines)


def etcd_go_mod(version: str) -> str:
    version = "v" + version.lstrip("v")
    requires = [f"\t{mod} {version}" for mod in ETCD_COMMANDS.values()]
    return "\n".join(
        [
            "// Generated by tools/upstream_build.py.",
            "module k8s-salt-lab/build/etcd",
            "",
            "go 1.25",
            "",
            "require (",
            *requires,
            ")",
            "",
        ]
    )


# ---------------------------------------------------------------------------------------------
# building


def _ldflags(version: str) -> str:
    version = "v" + version.lstrip("v")
    major, minor = version[1:].split(".")[:2]
    stamp = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "archive",
        "buildDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    flags = [f"-X '{pkg}.{key}={val}'" for key, val in stamp.items() for pkg in VERSION_PACKAGES]
    return "all=" + " ".join(flags) + " -s -w"


def cached(kind: str, version: str) -> Path | None:
    """The bin/ directory of a finished build, or None."""
    bin_dir = release_dir(kind, version) / "bin"
    return bin_dir if (bin_dir.parent / "build.json").exists() else None


def build(kind: str, version: str) -> Path:
    """Build (or take from the cache) one release; returns its bin/ directory."""
    version = version.lstrip("v")
    done = cached(kind, version)
    if done:
        return done
    target = release_dir(kind, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build of a release at a time on this machine (two lab runs, or a run and a hand build).
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return cached(kind, version) or _build(kind, version, target)


def _build(kind: str, version: str, target: Path) -> Path:
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=target.parent))
    start = time.monotonic()
    try:
        if kind == "kubernetes":
            _say(f"generating the wrapper module for k8s.io/kubernetes v{version}")
            (work / "go.mod").write_text(kubernetes_go_mod(version))
            targets = {c: f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS}
            ldflags = _ldflags(version)
        elif kind == "etcd":
            (work / "go.mod").write_text(etcd_go_mod(version))
            targets = dict(ETCD_COMMANDS)
            ldflags = "all=-s -w"
        else:
            raise BuildError(f"unknown kind {kind!r}. Valid: kubernetes, etcd")
        _say(f"resolving the module graph of {kind} v{version}")
        # @version on each package: a bare `go get pkg` means @upgrade (the newest release)
        _go(["get", *(f"{p}@v{version}" for p in targets.values())], cwd=work, step="resolve")
        main_module = "k8s.io/kubernetes" if kind == "kubernetes" else ETCD_COMMANDS["etcd"]
        resolved = _go(["list", "-m", main_module], cwd=work, step="check").split()
        if resolved != [main_module, f"v{version}"]:
            raise BuildError(f"resolved {resolved}, not {main_module} v{version}")
        (work / "bin").mkdir()
        for name, pkg in targets.items():
            t0 = time.monotonic()
            _say(f"go build {name} v{version}")
            _go(
                [
                    "build",
                    "-trimpath",
                    f"-tags={KUBE_TAGS}" if kind == "kubernetes" else "-tags=",
                    f"-ldflags={ldflags}",
                    "-o",
                    str(work / "bin" / name),
                    pkg,
                ],
                cwd=work,
                step=f"build {name}",
            )
            _say(f"built {name} in {time.monotonic() - t0:.0f} s")
        record = {
            "kind": kind,
            "version": version,
            "go": go_version(),
            "recipe": recipe_key(kind),
            "seconds": round(time.monotonic() - start, 1),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
            "sizes_mb": {
                p.name: round(p.stat().st_size / 2**20, 1) for p in sorted((work / "bin").iterdir())
            },
        }
        (work / "build.json").write_text(json.dumps(record, indent=1) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.rename(work, target)
        for stale in target.parent.iterdir():  # builds of this release by an older recipe or Go
            if stale.is_dir() and stale != target and not stale.name.startswith("."):
                shutil.rmtree(stale, ignore_errors=True)
        _say(f"{kind} v{version} built in {record['seconds']:.0f} s: {record['sizes_mb']}")
        return target / "bin"
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def builds() -> list[dict]:
    """Every finished build in the cache, with its record."""
    return [json.loads(p.read_text()) for p in sorted(CACHE.glob("*/v*/*/build.json"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("kubernetes", "etcd", "list"))
    parser.add_argument("version", nargs="?")
    args = parser.parse_args(argv)
    if args.kind == "list":
        for rec in builds():
            print(json.dumps(rec))
        return 0
    if not args.version:
        parser.error("a version is required")
    try:
        print(build(args.kind, args.version))
    except BuildError as exc:
        print(f"[build] FAILED {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
