"""
The cluster's configuration: defaults, OS family, profile and pillar merged
into one dict, validated with every error reported at once.

Layering (lowest first), as in saltstack-formulas' template-formula, with
``<root>`` the formula's root (``k8s_control_plane`` unless the minion or
master config sets ``k8s_control_plane_root``):

1. ``salt://<root>/<component>/parameters/defaults.yaml`` for each component
2. ``salt://<root>/<component>/parameters/os_family/<os_family>.yaml``
3. ``salt://<root>/<component>/parameters/profile/<profile>.yaml``
4. pillar ``k8s_control_plane``

Every state of this project reads its settings through :func:`config`, so a
value's default sits beside the states that use it and pillar holds only
what differs. The rules themselves (merge, validation, PKI files, TOFS) live
in ``_utils/k8s_control_plane/``; this module reads the files and the
pillar and hands them over.
"""

import copy
import hashlib
import json
import logging
from typing import Any

import salt.utils.files
import salt.utils.yaml
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8s_cluster"


def __virtual__():
    # Shells out to nothing: it reads pillar, grains and salt:// files only.
    return __virtualname__


def _key():
    return __utils__["k8s_control_plane.pillar_key"]()


def _root():
    return __utils__["k8s_control_plane.formula_root"](__salt__["config.get"])


# --------------------------------------------------------------------------
# Loading and merging
# --------------------------------------------------------------------------


def _listing():
    """The formula's files on the master (one listing per process, in __context__)."""
    root = _root()
    key = f"k8s_cluster.tree.{root}"
    if key not in __context__:
        # One listing instead of a failed fetch (and an error log) per absent layer.
        __context__[key] = set(__salt__["cp.list_master"](prefix=f"{root}/"))
    return __context__[key]


def _fetch(paths):
    """
    Bring the listed ``paths`` (salt:// paths without the scheme) into __context__'s file
    cache, all in one cp.cache_files call: one file client (a channel to the master) for
    all of them, where cp.get_file_str makes one per file (about a second for the nine
    parameter layers on the lab, 2026-12-06).
    """
    cache = __context__.setdefault("k8s_cluster.files", {})
    wanted = [p for p in dict.fromkeys(paths) if p in _listing() and p not in cache]
    if not wanted:
        return cache
    local = __salt__["cp.cache_files"]([f"salt://{p}" for p in wanted])
    for path, cached in zip(wanted, local or [], strict=False):
        text = None
        if cached:
            with salt.utils.files.fopen(cached, "r") as handle:
                text = handle.read()
        cache[path] = salt.utils.yaml.safe_load(text) if text else None
    return cache


def _read_yaml(path):
    """Read salt://path as YAML; None when the file does not exist."""
    if path not in _listing():
        return None
    return copy.deepcopy(_fetch([path]).get(path))


def _read_layer(layer, value=None):
    paths = __utils__["k8s_control_plane.layer_files"](_root(), layer, value)
    return [(path, _read_yaml(path)) for path in paths]


def config(os_family: str | None = None) -> dict[str, Any]:
    """
    Return the merged configuration of this minion's cluster (defaults, OS
    family, profile, pillar). ``secrets`` lists only the names of the secrets
    present, never their values; a password-looking key anywhere else
    (``auth_pass``, ``password``, ...) shows ``<secret>``. No public function
    of this module returns a secret value: the validation reads them through
    the private ``_config``.

    os_family
        Override the ``os_family`` grain (used by ``make render``).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_cluster.config
    """
    return __utils__["k8s_control_plane.redact"](_merged(os_family))


def _config(os_family=None, with_secrets=False):
    """
    The merged configuration for this module's own use. Private (the loader
    does not expose it, so no CLI call reaches it): ``with_secrets`` returns
    the secret values, for the validation; never print them.
    """
    merged = _merged(os_family)
    # Every value under secrets, and any password-looking key elsewhere (a
    # seed-style loadbalancer:keepalived:auth_pass the validation refuses).
    return copy.deepcopy(merged) if with_secrets else __utils__["k8s_control_plane.redact"](merged)


def _merged(os_family):
    """The merged configuration, secrets included, cached in __context__ (do not modify)."""
    os_family = os_family or __grains__.get("os_family", "Debian")
    pillar_data = __pillar__.get(_key()) or {}
    if not isinstance(pillar_data, dict):
        raise CommandExecutionError(f"pillar '{_key()}' must be a mapping")
    # Keyed on the pillar's content: a loader that outlives a pillar refresh
    # (__context__ can) never serves the old cluster.
    key = f"k8s_cluster.config.{_root()}.{os_family}.{_digest(pillar_data)}"
    if key in __context__:
        return __context__[key]
    _fetch(__utils__["k8s_control_plane.every_layer_file"](_root(), os_family))  # one fetch
    defaults = _read_layer("defaults")
    os_layers = _read_layer("os_family", os_family)
    profile = __utils__["k8s_control_plane.profile_of"](pillar_data, defaults)
    profile_layers = _read_layer("profile", profile)
    merge = __utils__["k8s_control_plane.merge_layers"]
    result = merge(defaults, os_layers, profile_layers, pillar_data)
    log.debug(
        "k8s_cluster: merged config of cluster %s (os_family %s, profile %s, %d layer files)",
        result.get("cluster"),
        os_family,
        profile,
        sum(doc is not None for _, doc in [*defaults, *os_layers, *profile_layers]),
    )
    __context__[key] = result
    return result


def _digest(*data):
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def versions() -> dict[str, Any] | None:
    """
    Return the version table
    (``salt://<root>/controlplane/parameters/versions.yaml``): the supported
    Kubernetes minors, and the flags and API versions per minor.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_cluster.versions
    """
    return _read_yaml(f"{_root()}/controlplane/parameters/versions.yaml")


# --------------------------------------------------------------------------
# Derived facts
# --------------------------------------------------------------------------


def identity() -> dict[str, Any]:
    """
    Return what the orchestration needs to know of this minion's cluster, and
    nothing secret: the cluster, the controller ids in order, the
    controller that applies cluster-wide objects (rbac:apply_from, default
    the first), and the digests of the project's synced modules and of the
    pillar the formula reads (equal to the master's when both are current).
    Reads the pillar only, of any shape.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_cluster.identity
    """
    pillar_data = __pillar__.get(_key())
    pillar_data = pillar_data if isinstance(pillar_data, dict) else {}
    rules = "k8s_control_plane."
    result = {
        "cluster": pillar_data.get("cluster"),
        "controllers": __utils__[rules + "controller_ids"](pillar_data),
        "apply_from": __utils__[rules + "apply_from"](pillar_data),
        # the orchestration compares these with the master's (k8s_orchestration.pending)
        "modules_digest": __utils__[rules + "extmods_digest"](
            __opts__.get("extension_modules", "")
        ),
        "pillar_digest": __utils__[rules + "pillar_digest"](dict(__pillar__)),
    }
    log.debug("k8s_cluster: identity %s", result)
    return result


def plan(root: str | None = None, expected: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    What the orchestration asks every controller first, in one job (k8s_orchestration.pending):
    this controller's identity (with its digests), the whole formula in test mode (nothing
    changes), and, only when no state would change, the full run's checks, read-only: etcd
    quorum (k8s_health.etcd) and the seed's verification (k8s_health.summary). One process
    reads the parameter layers once for all of them: the state run gets a copy of this
    function's ``__context__`` (salt/modules/state.py), whose file cache it shares.
    A controller behind the master's ``expected`` digests answers with its identity only
    (``behind`` says why): the orchestration syncs it and asks again, so a test run there
    would be thrown away.

    root
        The formula's folder (default: the ``k8s_control_plane_root`` option, else
        ``k8s_control_plane``).

    expected
        The master's digests: ``modules_digest`` and ``pillar_digests`` {controller: digest}
        (k8s_orchestration.cluster); default: none, the test run always happens.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_cluster.plan
    """
    root = root or _root()
    result: dict[str, Any] = {"identity": identity(), "states": None, "checks": {}}
    if expected:
        why = __utils__["k8s_control_plane.behind"](result["identity"], expected, __grains__["id"])
        if why:
            result["behind"] = why
            return result
    try:
        _merged(None)  # the layers, once, into __context__ (the state run shares its cache)
    except CommandExecutionError as exc:  # the state run's validation reports it
        log.debug("k8s_cluster.plan: %s", exc)
    result["states"] = __salt__["state.sls"](root, test=True)
    # what the etcd membership plan reads (k8s_cluster.etcd_members): data, members
    result["etcd"] = __salt__["k8s_etcd.status"]()
    if not __utils__["k8s_control_plane.state_changes"](result["states"]):
        checks = __utils__["k8s_control_plane.check_functions"]()
        result["checks"] = {fun: __salt__[fun]() for fun in checks}
    return result


def pki_files() -> list[dict[str, str]]:
    """
    Return the files the control plane needs from
    ``k8s_control_plane:secrets`` (placed in controlplane:pki_dir), in order,
    each with its mode: ``[{"name": "ca.pem", "mode": "0644"}, ...]``;
    certificates 0644, keys and kubeconfigs 0600.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_cluster.pki_files
    """
    return __utils__["k8s_control_plane.pki_files"]()


def sources(component: str, name: str) -> list[str]:
    """
    Return the ``salt://`` sources of a template, first found wins
    (template-formula's TOFS): pillar ``k8s_control_plane:tofs:source_files:<name>``,
    then per grain of ``k8s_control_plane:tofs:files_switch`` (default
    ``[id, os_family]``) ``salt://<root>/<component>/files/<grain value>/<name>``,
    then ``salt://<root>/<component>/files/default/<name>``.

    component
        The formula's component (loadbalancer, etcd, controlplane, ...).

    name
        The template's file name, e.g. ``haproxy.cfg.jinja``.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_cluster.sources loadbalancer haproxy.cfg.jinja
    """
    tofs = config().get("tofs")
    # __grains__ is a loader context, not a dict: hand the utils a plain copy.
    grains = dict(__grains__)
    result = __utils__["k8s_control_plane.tofs_sources"](_root(), component, name, tofs, grains)
    log.debug("k8s_cluster: sources of %s/%s: %s", component, name, result)
    return result


def controller(minion_id: str | None = None) -> dict[str, Any]:
    """
    Return this minion's entry in the controller list, with its index and
    whether it is the first (the one that applies cluster-wide objects).

    minion_id
        Look up another controller instead of this minion.

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-2 k8s_cluster.controller
    """
    cfg = config()
    minion_id = minion_id or __grains__["id"]
    for index, entry in enumerate(cfg.get("controllers") or []):
        if entry.get("id") == minion_id:
            return dict(entry, index=index, first=index == 0)
    raise CommandExecutionError(
        f"{minion_id} is not in {_key()}:controllers; "
        f"valid: {', '.join(str(c.get('id')) for c in cfg.get('controllers') or [])}"
    )


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _missing_policies(cfg):
    """
    With pki:source salt, the signing policies the pki states sign through
    (from the master's ext_pillar k8s_pki): without one, Salt's x509 would
    sign a certificate with no subject and no key usages.
    """
    if __utils__["k8s_control_plane.pki_source"](cfg) != "salt":
        return []
    wanted = __utils__["k8s_control_plane.signing_policies"](cfg["cluster"])
    have = __pillar__.get("x509_signing_policies") or {}
    missing = [name for name in wanted if name not in have]
    if not missing:
        return []
    return [
        f"x509_signing_policies: missing {', '.join(missing)} (pki:source salt signs through "
        "them; the master's ext_pillar k8s_pki gives them: is it configured? see docs/pki.md)"
    ]


def validate() -> dict[str, Any]:
    """
    Validate this minion's cluster pillar, then preflight this minion (its
    address configured, vip:interface present). Returns ``{"valid": bool,
    "errors": [...]}``; each error names its pillar key and the valid values.

    CLI Example:

    .. code-block:: bash

        salt 'k8s-controller-*' k8s_cluster.validate
    """
    try:
        cfg = _config(with_secrets=True)
    except CommandExecutionError as exc:
        log.debug("k8s_cluster: validation: invalid, the layers do not merge")
        return {"valid": False, "errors": [str(exc)]}
    minion_id = __grains__.get("id")
    interfaces = __grains__.get("ip4_interfaces")
    # Every SLS of a run asks; validate once per pillar and grains.
    key = f"k8s_cluster.validate.{_digest(cfg, minion_id, interfaces)}"
    if key not in __context__:
        # The preflight runs only on a configuration the validation passed.
        check = __utils__["k8s_control_plane.validate_minion"]
        found = check(cfg, versions(), minion_id, interfaces)
        errors, stage = found["errors"], found["stage"]
        if not errors:
            errors = _missing_policies(cfg)
        log.debug(
            "k8s_cluster: validation of %s: %s after %s, %d error(s)",
            minion_id,
            "invalid" if errors else "valid",
            stage,
            len(errors),
        )
        __context__[key] = {"valid": not errors, "errors": errors}
    return copy.deepcopy(__context__[key])


def sls_context(sls: str) -> dict[str, Any]:
    """
    What every ``#!py`` SLS of the formula starts from, in one place: the formula's root
    (``k8s_control_plane`` unless moved), the validation SLS every state requires
    (``<root>.cluster.validate``), the prefix of the SLS's state IDs (the SLS path with ``-``
    for ``.``: ``<root>-loadbalancer-haproxy``, template-formula's rule), and the merged
    configuration, or None when the validation failed (the SLS then only includes the
    validation, whose state fails naming every error, and nothing else runs).

    sls
        The SLS's own name (``sls`` in a ``#!py`` SLS).

    CLI Example:

    .. code-block:: bash

        salt k8s-controller-1 k8s_cluster.sls_context k8s_control_plane.loadbalancer.haproxy
    """
    root = str(sls).split(".", 1)[0]
    valid = validate()["valid"]
    return {
        "root": root,
        "validated": f"{root}.cluster.validate",
        "sid": str(sls).replace(".", "-"),
        "cfg": config() if valid else None,
    }
