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

It refuses safely: every controller is validated before anything under OUT
is written or removed (an invalid pillar exits 1 with every error, and OUT is
untouched); nothing is written outside OUT; a YAML fault in the cluster file
(a duplicate key, a tab) is one line, ``render: pillar/<file>:<line>: <problem>``.
"""

import argparse
import hashlib
import pathlib
import re
import shutil
import sys
import tempfile
import time

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.support import pki
from tests.support.files import write_file
from tests.support.minion import REPO, Minion, controller_grains


class _StrictLoader(yaml.SafeLoader):
    """YAML as Salt reads it, but a key written twice is an error (not the last one wins)."""


def _mapping(loader, node):
    loader.flatten_mapping(node)
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line + 1)
        except TypeError:
            continue  # an unhashable key: construct_mapping names it
        if first != key_node.start_mark.line + 1:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {first})", key_node.start_mark
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_cluster_text(text, shown):
    """
    A cluster file's k8s_control_plane mapping; a YAML fault exits with one
    line, ``render: <shown>:<line>: <problem>``.
    """
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader that refuses duplicate keys
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise SystemExit(f"render: {shown}{line}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SystemExit(f"render: {shown}: {exc}") from None
    cfg = doc.get("k8s_control_plane") if isinstance(doc, dict) else None
    if not isinstance(cfg, dict):
        raise SystemExit(f"render: {shown}: expected a mapping under k8s_control_plane")
    return cfg


def _pillar_root(cluster, tmp, pillar_dir):
    """A pillar root whose top gives every minion the cluster (and its secrets)."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", cluster) or ".." in cluster:
        raise SystemExit(f"render: {cluster!r} is not a cluster file name")
    cluster_file = pillar_dir / f"{cluster}.sls"
    if not cluster_file.exists():
        known = sorted(p.stem for p in pillar_dir.glob("*.sls") if p.stem != "top")
        raise SystemExit(f"render: no pillar/{cluster}.sls; valid clusters: {', '.join(known)}")
    cfg = load_cluster_text(cluster_file.read_text(encoding="utf-8"), f"pillar/{cluster}.sls")
    secrets_file = pillar_dir / f"{cluster}-secrets.sls"
    root = pathlib.Path(tmp) / "pillar"
    root.mkdir()
    notes = []
    if secrets_file.exists():
        load_cluster_text(secrets_file.read_text(encoding="utf-8"), f"pillar/{secrets_file.name}")
    else:
        pki.write_secrets_sls(root / f"{cluster}-secrets.sls", pki.secrets_for_cluster(cfg))
        notes.append(f"no pillar/{cluster}-secrets.sls: rendered with a throwaway PKI")
    (root / "top.sls").write_text(f"base:\n  '*':\n    - {cluster}\n    - {cluster}-secrets\n")
    return [root, pillar_dir], cfg, notes


def _probes(cfg):
    """
    (minion id, controller entry) to validate with: every listed controller
    with an id, else one probe (so an empty or broken list is still reported).
    The entries are made safe for the grains; the validation judges the real ones.
    """
    controllers = cfg.get("controllers") if isinstance(cfg.get("controllers"), list) else []
    found = []
    for entry in controllers:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
            address = entry.get("address")
            safe = {"id": entry["id"], "address": str(address) if address else "127.0.0.2"}
            found.append((entry["id"], safe))
    return found or [("render-probe", {"id": "render-probe", "address": "127.0.0.2"})]


def _inside(out, target):
    """target (resolved) is a directory strictly inside out (resolved)."""
    out, target = out.resolve(), target.resolve()
    return out in target.parents


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
    if not _inside(out, target):
        raise SystemExit(f"render: {path} would be written outside {out}; refused")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keys, kubeconfigs and the encryption config are 0600 from their first byte.
    write_file(target, text, int(str(mode or "0644"), 8))


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
            rendered = pathlib.Path(sfn)  # Salt's temporary file: it may hold a secret
            text = rendered.read_text()
            rendered.unlink(missing_ok=True)
            origin = source
        elif chunk.get("contents") is not None:
            text, origin = str(chunk["contents"]), "(contents in the SLS)"
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
    parser.add_argument(
        "--pillar-dir", default=str(REPO / "pillar"), help="where <cluster>.sls is (pillar/)"
    )
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    try:
        return _render(args, out)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        raise


def _render(args, out):
    with tempfile.TemporaryDirectory(prefix="k8s-render-") as tmp:
        pillar_roots, cfg, notes = _pillar_root(
            args.cluster, tmp, pathlib.Path(args.pillar_dir).resolve()
        )
        vip = cfg.get("vip") if isinstance(cfg.get("vip"), dict) else {}
        interface = vip.get("interface") if isinstance(vip.get("interface"), str) else None
        for note in notes:
            print(f"note: {note}")
        # Validate every controller before anything is written or removed.
        minions, errors = [], []
        for index, (minion_id, controller) in enumerate(_probes(cfg)):
            minion = Minion(
                minion_id,
                pathlib.Path(tmp) / f"minion-{index}",  # never a path made of the id
                pillar_roots,
                controller_grains(controller, interface or "eth0", args.os_family),
            )
            report = minion.modules["k8s_cluster.validate"]()
            errors += [e for e in report["errors"] if e not in errors]
            minions.append((minion_id, minion))
        if errors:
            count = len(errors)
            raise SystemExit(
                f"render: pillar/{args.cluster}.sls is invalid ({count} error"
                f"{'' if count == 1 else 's'}); nothing was written:\n- " + "\n- ".join(errors)
            )
        for minion_id, _ in minions:
            if not _inside(out, out / minion_id) or (out / minion_id).resolve().parent != (
                out.resolve()
            ):
                raise SystemExit(f"render: {minion_id!r} is not a directory name under {out}")
        for minion_id, minion in minions:
            start = time.monotonic()
            target = out / minion_id
            shutil.rmtree(target, ignore_errors=True)
            manifest = render_minion(minion, target, args.with_secrets)
            took = time.monotonic() - start
            print(f"{minion_id}: {len(manifest)} managed items -> {target} ({took:.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
