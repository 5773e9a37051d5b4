"""
A masterless Salt minion in-process (salt loaders, no daemons), standing in
for one controller: its id, grains (address on the VIP interface, os_family)
and pillar come from the cluster's pillar file. Used by ``make render`` and
the functional tests.
"""

import copy
import pathlib

import salt.config
import salt.loader
import salt.pillar

REPO = pathlib.Path(__file__).resolve().parents[2]


def minion_opts(minion_id, root_dir, pillar_roots, file_roots=None):
    """Masterless minion options rooted in root_dir."""
    root_dir = pathlib.Path(root_dir)
    for sub in ("cache", "pki", "log", "run"):
        (root_dir / sub).mkdir(parents=True, exist_ok=True)
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": minion_id,
            "root_dir": str(root_dir),
            "cachedir": str(root_dir / "cache"),
            "pki_dir": str(root_dir / "pki"),
            "sock_dir": str(root_dir / "run"),
            "log_file": str(root_dir / "log" / "minion"),
            "file_client": "local",
            "file_roots": {"base": [str(p) for p in (file_roots or [REPO / "salt"])]},
            # The project's custom modules, as a master would sync them.
            "module_dirs": [str(REPO / "_modules")],
            "states_dirs": [str(REPO / "_states")],
            "utils_dirs": [str(REPO / "_utils")],
            "pillar_roots": {"base": [str(p) for p in pillar_roots]},
            "state_top": "top.sls",
            "test": False,
            "grains_cache": False,
            "pillar_mask_output": False,
        }
    )
    return opts


class Minion:
    """One controller's loaders: ``modules``, ``states``, ``grains``, ``pillar``."""

    def __init__(self, minion_id, root_dir, pillar_roots, grains=None, file_roots=None):
        self.opts = minion_opts(minion_id, root_dir, pillar_roots, file_roots)
        base = salt.loader.grains(self.opts)
        base.update(grains or {})
        base["id"] = minion_id
        self.opts["grains"] = base
        self.grains = base
        self.refresh_pillar()

    def refresh_pillar(self):
        self.opts["pillar"] = salt.pillar.get_pillar(
            self.opts, self.grains, self.opts["id"], saltenv="base"
        ).compile_pillar()
        self.pillar = self.opts["pillar"]
        self.utils = salt.loader.utils(self.opts)
        self.modules = salt.loader.minion_mods(
            self.opts, utils=self.utils, whitelist=None, context={}
        )
        self.states = salt.loader.states(self.opts, self.modules, self.utils, {})
        return self.pillar

    def with_pillar(self, pillar):
        """Replace the compiled pillar (for bad-input tests)."""
        self.opts["pillar"] = copy.deepcopy(pillar)
        self.pillar = self.opts["pillar"]
        self.modules = salt.loader.minion_mods(
            self.opts, utils=self.utils, whitelist=None, context={}
        )
        self.states = salt.loader.states(self.opts, self.modules, self.utils, {})
        return self


def controller_grains(controller, interface, os_family="Debian"):
    """The grains a controller would report: its address on ``interface``."""
    return {
        "os_family": os_family,
        "os": "Debian" if os_family == "Debian" else "Rocky",
        "ip4_interfaces": {"lo": ["127.0.0.1"], interface: [controller["address"]]},
        "ipv4": ["127.0.0.1", controller["address"]],
        "host": controller["id"],
        "nodename": controller["id"],
    }
