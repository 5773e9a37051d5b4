"""Parameter layers (defaults, OS family, profile, pillar) and their merge; the TOFS
source list of a template."""

import copy
from typing import Any

import salt.utils.dictupdate
from salt.exceptions import CommandExecutionError

from .names import COMPONENTS, PILLAR_KEY, PROFILES


def layer_files(root: str, layer: str, value: str | None = None) -> list[str]:
    """
    The per-component parameter files of one layer, as salt:// paths without
    the scheme: ``layer`` is ``defaults``, ``os_family`` (value: the family)
    or ``profile`` (value: the profile name; none for an unknown profile,
    which the validation reports).
    """
    if layer == "profile" and value not in PROFILES:
        return []
    name = {
        "defaults": "defaults.yaml",
        "os_family": f"os_family/{value}.yaml",
        "profile": f"profile/{value}.yaml",
    }[layer]
    return [f"{root}/{component}/parameters/{name}" for component in COMPONENTS]


def every_layer_file(root: str, os_family: str) -> list[str]:
    """Every parameter file a configuration could read: the defaults, the OS family's and
    every profile's (the profile is known only once the defaults are read)."""
    layers = [("defaults", None), ("os_family", os_family)]
    layers += [("profile", profile) for profile in PROFILES]
    return [path for layer, value in layers for path in layer_files(root, layer, value)]


def _layer(result, doc, source):
    if doc is None:
        return result
    if not isinstance(doc, dict) or not isinstance(doc.get(PILLAR_KEY, {}), dict):
        raise CommandExecutionError(f"{source}: expected a mapping under '{PILLAR_KEY}'")
    layer = copy.deepcopy(doc.get(PILLAR_KEY) or {})
    return salt.utils.dictupdate.update(result, layer, merge_lists=False)


def merge_layers(
    defaults: list[tuple[str, Any]],
    os_layers: list[tuple[str, Any]],
    profile_layers: list[tuple[str, Any]],
    pillar: dict[str, Any] | None,
) -> dict[str, Any]:
    """
    Merge parameter layers, lowest first: defaults, OS family, profile, then
    the pillar. Each layer is a list of ``(source, doc)`` pairs, ``doc``
    holding a ``k8s_control_plane`` mapping (None: the file is absent). Lists
    are replaced, never concatenated; the inputs are not changed.
    """
    result: dict[str, Any] = {}
    for source, doc in [*defaults, *os_layers, *profile_layers]:
        result = _layer(result, doc, source)
    return salt.utils.dictupdate.update(result, copy.deepcopy(pillar or {}), merge_lists=False)


def profile_of(pillar: dict[str, Any] | None, defaults: list[tuple[str, Any]]) -> Any:
    """The profile the pillar asks for, else the one the defaults layer sets."""
    profile = (pillar or {}).get("profile")
    if profile is None:
        for _, doc in defaults:
            profile = ((doc or {}).get(PILLAR_KEY) or {}).get("profile", profile)
    return profile


def tofs_sources(
    root: str, component: str, name: str, tofs: Any = None, grains: dict[str, Any] | None = None
) -> list[str]:
    """
    The salt:// sources of a template, first found wins (template-formula's
    TOFS): ``tofs:source_files:<name>`` (a list), then per grain of
    ``tofs:files_switch`` (default id, os_family)
    ``salt://<root>/<component>/files/<grain value>/<name>``, then
    ``salt://<root>/<component>/files/default/<name>``.
    """
    tofs = tofs if isinstance(tofs, dict) else {}
    grains = grains or {}
    sources = list((tofs.get("source_files") or {}).get(name) or [])
    switch = tofs.get("files_switch")
    for grain in ["id", "os_family"] if switch is None else switch:
        value: Any = grains
        for part in str(grain).split(":"):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            sources.append(f"salt://{root}/{component}/files/{value}/{name}")
    sources.append(f"salt://{root}/{component}/files/default/{name}")
    return sources
