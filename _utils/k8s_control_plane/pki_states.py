"""
The state data of the pki SLS files (salt/k8s_control_plane/pki/{ca,init,etcd}.sls), built
from the PKI plan (pki.py). Pure: the SLS passes what it read from the minion (the
configuration, its id, the encryption config's source and API version), so nothing that
builds state data is an execution function on the CLI. Contents never enter the state data:
pillar files are ``contents_pillar``, keys are made on the controller, kubeconfigs are built
by k8s_pki.kubeconfig_managed from the files, and every file state requires the symlink
guard of its directory.
"""

import os
from typing import Any

from .names import PILLAR_KEY
from .pki import pki_plan, pki_requisite_module, pki_state_id

PKI_SLS = ("ca", "init", "etcd")

# x509_v2 sets a file's mode through a nested state.single, which compiles the pillar over a
# new channel; Salt 3008.4's tornado sometimes raises "RuntimeError: dictionary keys changed
# during iteration" there (IOLoop.initialize walks a class-level dict another thread changes:
# tornadoweb/tornado#3125). Seen in 2 of about 15 fresh lab orchestrations on 2026-12-05, each
# time on one certificate; the state is idempotent, so it is tried again.
X509_RETRY = {"retry": {"attempts": 3, "interval": 1}}


def _guard_id(root, entry):
    return pki_state_id(root, entry).replace("-file-directory-", "-k8s_pki-no_symlinks-")


def _directories(root, everything, sls, validated):
    """
    Each directory this SLS owns, and its guard: the guard fails, naming the link, when the
    directory or any file planned in it is a symlink, and every file state requires it
    (secrets are never written through a link).
    """
    states = {}
    for directory in (e for e in everything if e["kind"] == "directory" and e["sls"] == sls):
        inside = [
            e["path"]
            for e in everything
            if e["kind"] != "directory" and os.path.dirname(e["path"]) == directory["path"]
        ]
        dir_id = pki_state_id(root, directory)
        states[dir_id] = {
            "file.directory": [
                {"name": directory["path"]},
                {"user": "root"},
                {"group": "root"},
                {"mode": "0700"},
                {"makedirs": True},
                {"require": [{"sls": validated}]},
            ]
        }
        states[_guard_id(root, directory)] = {
            "k8s_pki.no_symlinks": [
                {"name": directory["path"]},
                {"paths": inside},
                {"require": [{"file": dir_id}]},
            ]
        }
    return states


def _certificate(entry, ids, by_path, guards):
    # the key is x509's, or file's where the master gives it (CLUSTER_KEYS)
    requires = [*guards, {pki_requisite_module(by_path[entry["key"]]): ids[entry["key"]]}]
    requires += [
        {"file": ids[p]} for p in (entry["signing_cert"], entry["signing_key"]) if p in ids
    ]
    return {
        "x509.certificate_managed": [
            {"name": entry["path"]},
            # a converged file skips the x509 state's costly check (k8s_pki.current)
            {"unless": [{"fun": "k8s_pki.current", "path": entry["path"]}]},
            {"mode": entry["mode"]},
            {"signing_policy": entry["policy"]},
            {"signing_cert": entry["signing_cert"]},
            {"signing_private_key": entry["signing_key"]},
            {"private_key": entry["key"]},
            *([{"subjectAltName": ", ".join(entry["sans"])}] if entry["sans"] else []),
            {"days_valid": entry["days_valid"]},
            {"days_remaining": entry["days_remaining"]},
            {"user": "root"},
            {"group": "root"},
            X509_RETRY,
            {"require": requires},
        ]
    }


def _kubeconfig(entry, ids, common, guards):
    return {
        "k8s_pki.kubeconfig_managed": [
            *common[:2],
            {"ca": entry["ca"]},
            {"cert": entry["cert"]},
            {"key": entry["key"]},
            {"server": entry["server"]},
            {"cluster": entry["cluster"]},
            {"user": entry["user"]},
            {"require": guards},
            # watch: in test mode a re-issue predicted this run is a rewrite predicted too
            # (k8s_pki.mod_watch), the files not being new yet
            {
                "watch": [
                    {"file": ids[entry["ca"]]},
                    {"x509": ids[entry["cert"]]},
                    {"x509": ids[entry["key"]]},
                ]
            },
        ]
    }


def pki_sls_states(
    cfg: dict[str, Any],
    minion_id: str,
    sls: str,
    validated: str,
    encryption: dict[str, str] | None = None,
) -> dict[str, Any]:
    """
    Return the state data of the pki SLS file ``sls`` (``ca``, ``init``, ``etcd``) for the
    controller ``minion_id`` of the configuration ``cfg``; every state requires the SLS
    ``validated`` (the cluster's validation, ``<root>.cluster.validate``).

    encryption
        What the encryption config's template needs (the SLS ``init`` plans it):
        ``source`` (the template's salt:// sources), ``api_version`` and ``kind``.
    """
    if sls not in PKI_SLS:
        raise ValueError(f"unknown pki sls {sls!r}; valid: {', '.join(PKI_SLS)}")
    root = validated.split(".")[0]
    everything = pki_plan(cfg, minion_id)
    states = _directories(root, everything, sls, validated)
    guard_of = {
        e["path"]: {"k8s_pki": _guard_id(root, e)} for e in everything if e["kind"] == "directory"
    }
    ids = {e["path"]: pki_state_id(root, e) for e in everything}
    by_path = {e["path"]: e for e in everything}
    for entry in everything:
        if entry["sls"] != sls or entry["kind"] == "directory":
            continue
        sid = ids[entry["path"]]
        guards = [guard_of[os.path.dirname(entry["path"])]]
        common = [{"name": entry["path"]}, {"mode": entry["mode"]}, {"require": guards}]
        owner = [{"user": "root"}, {"group": "root"}]
        if entry["kind"] == "pillar":
            states[sid] = {
                "file.managed": [
                    *common[:2],
                    {"contents_pillar": f"{PILLAR_KEY}:secrets:{entry['name']}"},
                    *owner,
                    {"show_changes": False},
                    common[2],
                ]
            }
        elif entry["kind"] == "key":
            states[sid] = {
                "x509.private_key_managed": [
                    *common,
                    {"unless": [{"fun": "k8s_pki.current", "path": entry["path"]}]},
                    {"algo": "ec"},
                    {"keysize": 256},
                    *owner,
                    X509_RETRY,
                ]
            }
        elif entry["kind"] == "certificate":
            states[sid] = _certificate(entry, ids, by_path, guards)
        elif entry["kind"] == "kubeconfig":
            states[sid] = _kubeconfig(entry, ids, common, guards)
        elif entry["kind"] == "signer":
            # from the pillar that ca.pem and ca-key.pem are written from (so test mode
            # predicts it exactly), after them
            states[sid] = {
                "k8s_pki.signer_managed": [
                    *common[:2],
                    {"bundle_pillar": f"{PILLAR_KEY}:secrets:{os.path.basename(entry['bundle'])}"},
                    {"key_pillar": f"{PILLAR_KEY}:secrets:{os.path.basename(entry['key'])}"},
                    {
                        "require": [
                            *guards,
                            {"file": ids[entry["bundle"]]},
                            {"file": ids[entry["key"]]},
                        ]
                    },
                ]
            }
        elif entry["kind"] == "template":
            if encryption is None:
                raise ValueError(f"the pki sls {sls!r} plans {entry['path']}: pass encryption")
            states[sid] = {
                "file.managed": [
                    *common[:2],
                    {"source": encryption["source"]},
                    {"template": "jinja"},
                    {
                        "context": {
                            "api_version": encryption["api_version"],
                            "kind": encryption["kind"],
                        }
                    },
                    *owner,
                    {"show_changes": False},
                    common[2],
                ]
            }
    return states
