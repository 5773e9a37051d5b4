"""
`make render` (tools/render.py's main) refuses the corpus's invalid pillars
(tests/corpus/invalid.yaml): it exits 1, prints every error of the case, and
writes or removes nothing. A sample by default (about 2 s a case: one
in-process minion per controller); CORPUS_ALL=1 runs every case.
"""

import os
import pathlib

import pytest

from tests.corpus import case_files, cases
from tests.support import pki
from tests.support.cluster import PREFIX, versions_table
from tools.render import main

SAMPLE = {
    "combined-faults",
    "combined-controllers-and-priorities",
    "controllers-empty",
    "controllers-mapping",
    "controller-id-dotdot",
    "controller-id-space",
    "vip-as-string-and-bad-version",
    "secrets-as-string",
    "seed-style-auth-pass",
    "tls-port-etcd-client",
    "pem-armour-around-garbage",
    "sans-without-vip",
    "loadbalancer-typo",
    "yaml-duplicate-key",
    "yaml-tab",
}
CASES = [c for c in cases() if os.environ.get("CORPUS_ALL") or c["name"] in SAMPLE]


def _write_case(pillar_dir, case):
    text, secrets = case_files(case)
    pillar_dir.mkdir(exist_ok=True)
    (pillar_dir / "case.sls").write_text(text)
    if secrets is not None:
        # the case's cluster file says its pki:source (pillar, or the case's own)
        pki.write_secrets_sls(pillar_dir / "case-secrets.sls", secrets, source=None)


def _expected(case):
    table = versions_table()
    supported = f"{table['supported']['min']}.x - {table['supported']['max']}.x"
    errors = [
        e.replace("{supported}", supported).replace("<file>", "case.sls") for e in case["errors"]
    ]
    if "text" in case:
        return errors
    count = f"{len(errors)} error{'' if len(errors) == 1 else 's'}"
    return [
        f"render: pillar/case.sls is invalid ({count}); nothing was written:",
        *(f"- {PREFIX}{e}" for e in errors),
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_render_refuses(tmp_path, capsys, case):
    _write_case(tmp_path / "pillar", case)
    out = tmp_path / "out"
    code = main(["--cluster", "case", "--pillar-dir", str(tmp_path / "pillar"), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.splitlines() == _expected(case)
    assert not out.exists()
    assert "Traceback" not in captured.out + captured.err


def test_a_rejected_render_keeps_what_out_holds(tmp_path, capsys):
    """An invalid pillar removes nothing: not OUT/<id>, not a directory an id points at."""
    case = next(c for c in cases() if c["name"] == "controller-id-dotdot")
    _write_case(tmp_path / "pillar", case)
    out = tmp_path / "out"
    kept = [out / "k8s-controller-1" / "MANIFEST", tmp_path / "x" / "keep"]
    for path in kept:
        path.parent.mkdir(parents=True)
        path.write_text("before\n")
    code = main(["--cluster", "case", "--pillar-dir", str(tmp_path / "pillar"), "--out", str(out)])
    assert code == 1
    assert "controllers:2:id: '../x' is not a valid minion id" in capsys.readouterr().err
    assert all(path.read_text() == "before\n" for path in kept)


def test_render_never_writes_outside_out(tmp_path):
    from tools.render import _write

    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="outside"):
        _write(out, "../../escaped", "x", "0644")
    assert not (tmp_path / "escaped").exists()
    _write(out, "/etc/ok", "x", "0644")
    assert (out / "etc" / "ok").read_text() == "x"


def test_an_unknown_cluster_is_one_line(tmp_path, capsys):
    code = main(["--cluster", "nope", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("render: no pillar/nope.sls; valid clusters: ")
    assert pathlib.Path(tmp_path / "out").exists() is False
