"""Functional fixtures: one in-process masterless minion per controller."""

import pathlib

import pytest
import yaml

from tests.support.minion import REPO, Minion, controller_grains


def cluster_file(cluster):
    with open(REPO / "pillar" / f"{cluster}.sls", encoding="utf-8") as handle:
        return yaml.safe_load(handle)["k8s_control_plane"]


@pytest.fixture(scope="session")
def pillar_root_for(tmp_path_factory, secrets_root):
    """A pillar root whose top gives every minion one cluster and its secrets."""
    made = {}

    def make(cluster, extra=None):
        key = (cluster, yaml.safe_dump(extra) if extra else "")
        if key not in made:
            root = tmp_path_factory.mktemp(f"pillar-{cluster}")
            entries = [cluster, f"{cluster}-secrets"]
            if extra:
                (root / "override.sls").write_text(yaml.safe_dump({"k8s_control_plane": extra}))
                entries.append("override")
            lines = "".join(f"    - {e}\n" for e in entries)
            (root / "top.sls").write_text(f"base:\n  '*':\n{lines}")
            made[key] = [root, REPO / "pillar", secrets_root]
        return made[key]

    return make


@pytest.fixture
def minion_for(tmp_path, pillar_root_for):
    """minion_for(cluster, controller_id, os_family='Debian', extra=None) -> Minion."""

    def make(cluster, controller_id, os_family="Debian", extra=None):
        cfg = cluster_file(cluster)
        controller = next(c for c in cfg["controllers"] if c["id"] == controller_id)
        interface = cfg["vip"].get("interface") or "eth0"
        return Minion(
            controller_id,
            pathlib.Path(tmp_path) / controller_id,
            pillar_root_for(cluster, extra),
            controller_grains(controller, interface, os_family),
        )

    return make
