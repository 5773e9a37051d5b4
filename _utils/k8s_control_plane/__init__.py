"""
The pure rules of the k8s_control_plane formula, each in one place, as one synced utils
package: the formula's names (names.py), the parameter layers and their merge (layers.py),
facts derived from a configuration (facts.py), the components' flags (flags.py), the
validation (schema.py, checks.py, pki_checks.py, validate.py), the PKI plan (pki.py), the
pki SLS files' state data (pki_states.py), the Kubernetes objects (objects.py), the
orchestrations' rules (orchestration.py), the snapshots (snapshots.py), the encryption keys
and their rotation (encryption.py), the CA's rotation (ca_rotation.py) and how the master's
secret files are written (files.py).

Why a synced utils package (``_utils/k8s_control_plane/``) and not helpers inside the
execution modules:

- Salt's custom execution modules cannot import each other: the loader imports each one under
  its own generated name, and reaching a pure helper through ``__salt__`` would put it on the
  CLI (``salt '*' k8s_cluster.priorities``). Before this package the VRRP priority rule existed
  three times.
- ``__utils__`` is how Salt shares code between custom modules: the master syncs ``_utils/``
  with ``saltutil.sync_all`` (or ``sync_utils``) like ``_modules/`` and ``_states/``, and the
  loader hands every execution, state and ext_pillar module a ``__utils__`` mapping; they call
  ``__utils__["k8s_control_plane.<function>"](...)``. Utils functions are not execution
  functions, so none of them appears on the CLI.
- Why a package: Salt's loader gives a utils module no ``__utils__`` of its own, so utils
  modules cannot call each other through it. But it loads a folder with ``__init__.py`` from a
  module dir as a package (salt/loader/lazy.py, ``_refresh_file_mapping`` maps it and prefers
  it over a plain module; ``_load_module`` imports it as ``salt.loaded.ext.utils.<name>``),
  ``saltutil.sync_utils`` copies the folder (salt/utils/extmods.py), and the submodules import
  each other relatively. The loader packs the public functions this ``__init__`` holds: the
  list below is the formula's utils API, one name each. Names starting with ``_`` are not
  packed.
- One wrinkle, measured with Salt 3008.4 (tests/functional/test_utils_loader.py): the loader
  puts the package in ``sys.modules`` only after this file ran, and ``salt.loaded.ext.utils``
  is no package, so the relative imports below would fail ("'salt.loaded.ext.utils' is not a
  package"). A stand-in holding the package's ``__path__`` is registered under its name first;
  the loader replaces it with this module once this file has run. And the loader re-runs
  this file after a re-sync into the same module object: the submodules are then dropped
  from ``sys.modules`` first, so that a re-sync never leaves an old copy of one.
- Nothing here uses a loader dunder, so the tests import the package as plain Python
  (tests/support/cluster.py).

A masterless minion or a test harness must list the repository root in ``module_dirs`` (or
``_utils`` in ``utils_dirs``); module_dirs entries are searched for a ``_utils`` folder.
"""

# ruff: noqa: E402 (the submodules are imported after the stand-in below)
import sys
import types

# Every load of this file imports its submodules afresh: after a re-sync, a minion's loader
# runs this file again and must not get the old submodules from sys.modules.
for _name in [name for name in sys.modules if name.startswith(__name__ + ".")]:
    del sys.modules[_name]
if __name__ not in sys.modules:  # Salt's loader; a plain import registers the package first
    _stand_in = types.ModuleType(__name__)
    _stand_in.__path__ = __path__
    sys.modules[__name__] = _stand_in

from .ca_rotation import (
    ca_given,
    ca_rotation_step,
    read_ca_rotation,
    retire_ca_files,
    write_ca_rotation,
)
from .encryption import (
    encryption_key_errors,
    encryption_keys,
    finished_keys,
    key_digest,
    keys_locked,
    next_key_name,
    read_key_state,
    relisted_keys,
    rotated_keys,
    rotation_locked,
    rotation_phase,
    stored_under,
    write_key_state,
)
from .facts import (
    apply_from,
    controller_ids,
    etcd_servers,
    keepalived_role,
    parse_minor,
    parse_version,
    pki_files,
    pki_source,
    priorities,
    row_at,
)
from .files import write_private
from .flags import api_versions, build_flags, flag_context
from .layers import every_layer_file, layer_files, merge_layers, profile_of, tofs_sources
from .membership import (
    cluster_membership,
    describe_change,
    etcd_environment,
    etcd_environment_file,
    initial_cluster,
    membership_plan,
)
from .names import (
    COMPONENT_BINARIES,
    COMPONENTS,
    DEFAULT_ROOT,
    PILLAR_KEY,
    PROFILES,
    ROOT_OPTION,
    SECRET_FILES,
    SECRET_KEYS,
    formula_root,
    pillar_key,
)
from .objects import kubelet_rules, object_diff, object_path, rbac_manifests
from .orchestration import (
    agreed,
    ask_minions,
    behind,
    certificate_findings,
    check_findings,
    check_functions,
    choose_cluster,
    clusters_from,
    controllers_of,
    extmods_digest,
    leaving_errors,
    leaving_of,
    nested_run,
    pending_changes,
    pillar_digest,
    plan_job,
    plan_summary,
    skew_errors,
    stale,
    state_changes,
    sync_job,
)
from .pki import (
    apiserver_sans,
    client_files,
    cluster_keys_dir,
    etcd_check_files,
    etcd_sans,
    first_service_ip,
    kubeconfig_text,
    master_keys_dir,
    pki_plan,
    pki_requisite_module,
    pki_state_id,
    pki_watch_for,
    policy_name,
    signing_policies,
)
from .pki_states import pki_sls_states
from .snapshots import (
    parse_snapshot_name,
    seal_snapshot,
    snapshot_digest_ok,
    snapshot_name,
    snapshot_retention,
    unseal_snapshot,
)
from .validate import preflight, redact, validate_config, validate_minion

__all__ = [
    "COMPONENTS",
    "COMPONENT_BINARIES",
    "DEFAULT_ROOT",
    "PILLAR_KEY",
    "PROFILES",
    "ROOT_OPTION",
    "SECRET_FILES",
    "SECRET_KEYS",
    "agreed",
    "api_versions",
    "apiserver_sans",
    "apply_from",
    "ask_minions",
    "behind",
    "build_flags",
    "ca_given",
    "ca_rotation_step",
    "certificate_findings",
    "check_findings",
    "check_functions",
    "choose_cluster",
    "client_files",
    "cluster_keys_dir",
    "cluster_membership",
    "clusters_from",
    "controller_ids",
    "controllers_of",
    "describe_change",
    "encryption_key_errors",
    "encryption_keys",
    "etcd_check_files",
    "etcd_environment",
    "etcd_environment_file",
    "etcd_sans",
    "etcd_servers",
    "every_layer_file",
    "extmods_digest",
    "finished_keys",
    "first_service_ip",
    "flag_context",
    "formula_root",
    "initial_cluster",
    "keepalived_role",
    "key_digest",
    "keys_locked",
    "kubeconfig_text",
    "kubelet_rules",
    "layer_files",
    "leaving_errors",
    "leaving_of",
    "master_keys_dir",
    "membership_plan",
    "merge_layers",
    "nested_run",
    "next_key_name",
    "object_diff",
    "object_path",
    "parse_minor",
    "parse_snapshot_name",
    "parse_version",
    "pending_changes",
    "pillar_digest",
    "pillar_key",
    "pki_files",
    "pki_plan",
    "pki_requisite_module",
    "pki_sls_states",
    "pki_source",
    "pki_state_id",
    "pki_watch_for",
    "plan_job",
    "plan_summary",
    "policy_name",
    "preflight",
    "priorities",
    "profile_of",
    "rbac_manifests",
    "read_ca_rotation",
    "read_key_state",
    "redact",
    "relisted_keys",
    "retire_ca_files",
    "rotated_keys",
    "rotation_locked",
    "rotation_phase",
    "row_at",
    "seal_snapshot",
    "signing_policies",
    "skew_errors",
    "snapshot_digest_ok",
    "snapshot_name",
    "snapshot_retention",
    "stale",
    "state_changes",
    "stored_under",
    "sync_job",
    "tofs_sources",
    "unseal_snapshot",
    "validate_config",
    "validate_minion",
    "write_ca_rotation",
    "write_key_state",
    "write_private",
]
