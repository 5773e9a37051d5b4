#!py
"""
Rotate the key that encrypts Secrets at rest (docs/encryption.md), the upstream procedure
("Encrypting Confidential Data at Rest", rotating a decryption key), with the API up
through the VIP all along:

    salt-run state.orchestrate orch.rotate_encryption_key
    salt-run state.orchestrate orch.rotate_encryption_key pillar='{"cluster": "hardway"}'

1. add: a new key listed second and rolled out (orch.control_plane: one apiserver drained
   and restarted at a time): every apiserver reads it, none writes it yet. Refused,
   changing nothing, unless every apiserver runs with the master's keys and orch.control_plane
   has nothing else to change; a snapshot of etcd is taken first
2. promote: the new key first, rolled out: every apiserver writes it, reads the old one
3. rewrite: every Secret stored again, under the new key; etcd is read to prove it
4. retire: the old key out of the config, rolled out; the master keeps it, retired

A run that stopped half-way resumes where it stood (each step is a no-op where the rotation
already is); the new key is never replaced by another. Needs pki:source salt: with pki:source
pillar the pillar's secrets:encryption_keys is rotated by editing it, step by step.
"""

from salt.exceptions import CommandExecutionError, SaltRenderError

STEPS = ("add", "promote", "rewrite", "retire")


def run():
    # the orchestration's pillar=... (Salt's loader gives a mapping, not a dict)
    options = __pillar__
    __salt__["saltutil.runner"]("saltutil.sync_all")
    try:
        found = __salt__["k8s_orchestration.cluster"](
            options.get("cluster"), "orch.rotate_encryption_key"
        )
    except CommandExecutionError as exc:
        raise SaltRenderError(f"orch.rotate_encryption_key: {exc}") from exc
    name = found["cluster"]
    steps, previous = {}, None
    for step in STEPS:
        steps[f"rotate-encryption-{step}"] = {
            "salt.runner": [
                {"name": "k8s_encryption.rotate"},
                {"step": step},
                {"cluster": name},
                {"failhard": True},
                *([{"require": [{"salt": previous}]}] if previous else []),
            ]
        }
        previous = f"rotate-encryption-{step}"
    return steps
