#!/usr/bin/env python3
"""
make render: write every file the states would manage on each controller of
a cluster to OUT/<minion id>/<absolute path>, rendered by Salt exactly as a
real apply would write it, plus OUT/<minion id>/MANIFEST (path, mode, source
of every managed file, binaries included) and, on the controller that applies
them, the API objects under OUT/<minion id>/_api/.

Secrets are replaced by a redaction marker unless --with-secrets is given.
When the cluster has no secrets file (pillar/<cluster>-secrets.sls), a
throwaway PKI is generated so that the pillar validates.
"""

import argparse
import hashlib
import os
import pathlib
import shutil
import sys
import tempfile
import time

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.support import pki
from tests.support.minion import REPO, Minion, controller_grains


def _pillar_root(cluster, tmp):
    """A pillar root whose top gives every minion the cluster (and its secrets)."""
    cluster_file = REPO / "pillar" / f"{cluster}.sls"
    if not cluster_file.exists():
        known = sorted(p.stem for p in (REPO / "pillar").glob("*.sls") if p.stem != "top")
        sys.exit(f"render: no pillar/{cluster}.sls; valid clusters: {', '.join(known)}")
    root = pathlib.Path(tmp) / "pillar"
    root.mkdir()
    notes = []
    if not (REPO / "pillar" / f"{cluster}-secrets.sls").exists():
        pki.write_secrets_sls(
            root / f"{cluster}-secrets.sls", pki.secrets_for_cluster_file(cluster_file)
        )
        notes.append(f"no pillar/{cluster}-secrets.sls: rendered with a throwaway PKI")
    (root / "top.sls").write_text(f"base:\n  '*':\n    - {cluster}\n    - {cluster}-secrets\n")
    with open(cluster_file, encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)["k8s_control_plane"]
    return [root, REPO / "pillar"], cfg, notes


def _redact(text, secrets, public, with_secrets):
    if with_secrets:
        return text
    for name, value in secrets.items():
        if not isinstance(value, str) or name in public:
            continue
        if text.strip() == value.strip():
            digest = hashlib.sha256(value.encode()).hexdigest()[:16]
            return f"<redacted: k8s_control_plane:secrets:{name} sha256:{digest}>\n"
        text = text.replace(value, f"<redacted: k8s_control_plane:secrets:{name}>")
    return text


def _write(out, path, text, mode):
    target = out / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    os.chmod(target, int(str(mode or "0644"), 8))


def render_minion(minion, out, with_secrets=False):
    """Render one controller's managed files into out; return the manifest lines."""
    mods = minion.modules
    secrets = minion.pillar["k8s_control_plane"].get("secrets") or {}
    report = mods["k8s_cluster.validate"]()
    if not report["valid"]:
        raise SystemExit("render: invalid pillar:\n- " + "\n- ".join(report["errors"]))
    public = {e["name"] for e in mods["k8s_cluster.pki_files"]() if e["mode"] == "0644"}
    low = mods["state.show_lowstate"]()
    if isinstance(low, list) and low and isinstance(low[0], str):
        raise SystemExit("render: " + "\n".join(low))
    manifest = []
    for chunk in low:
        if chunk["state"] == "k8s_object" and chunk["fun"] == "present":
            obj = chunk["manifest"]
            name = f"{obj['kind']}-{obj['metadata']['name'].replace(':', '_')}.yaml"
            _write(out, f"_api/{name}", yaml.safe_dump(obj, sort_keys=False), "0644")
            manifest.append(f"api {obj['kind']}/{obj['metadata']['name']} {obj['apiVersion']}")
            continue
        if chunk["state"] != "file" or chunk["fun"] != "managed":
            continue
        path, mode = chunk["name"], chunk.get("mode", "0644")
        source = chunk.get("source", "")
        if isinstance(source, list):  # TOFS: the first source that exists, as file.managed picks
            source = mods["file.source_list"](source, "", "base")[0]
        if chunk.get("contents_pillar"):
            text = mods["pillar.get"](chunk["contents_pillar"], unmask=True)
            origin = f"pillar:{chunk['contents_pillar']}"
        elif chunk.get("template"):
            sfn, _, comment = mods["file.get_managed"](
                name=path,
                template=chunk["template"],
                source=source,
                source_hash="",
                source_hash_name=None,
                user=chunk.get("user"),
                group=chunk.get("group"),
                mode=mode,
                attrs=None,
                saltenv="base",
                context=chunk.get("context"),
                defaults=chunk.get("defaults"),
            )
            if not sfn:
                raise SystemExit(f"render: {path}: {comment}")
            text = pathlib.Path(sfn).read_text()
            origin = source
        else:
            manifest.append(f"{path} {mode} {source} (checked against {chunk.get('source_hash')})")
            continue
        _write(out, path, _redact(text, secrets, public, with_secrets), mode)
        manifest.append(f"{path} {mode} {origin}")
    _write(out, "MANIFEST", "\n".join(manifest) + "\n", "0644")
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", default="hardway")
    parser.add_argument("--out", default="build/render")
    parser.add_argument("--os-family", default="Debian", choices=("Debian", "RedHat"))
    parser.add_argument("--with-secrets", action="store_true")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    with tempfile.TemporaryDirectory(prefix="k8s-render-") as tmp:
        pillar_roots, cfg, notes = _pillar_root(args.cluster, tmp)
        interface = cfg["vip"].get("interface") or "eth0"
        for note in notes:
            print(f"note: {note}")
        for controller in cfg["controllers"]:
            start = time.monotonic()
            minion = Minion(
                controller["id"],
                pathlib.Path(tmp) / controller["id"],
                pillar_roots,
                controller_grains(controller, interface, args.os_family),
            )
            target = out / controller["id"]
            shutil.rmtree(target, ignore_errors=True)
            manifest = render_minion(minion, target, args.with_secrets)
            took = time.monotonic() - start
            print(f"{controller['id']}: {len(manifest)} managed items -> {target} ({took:.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
