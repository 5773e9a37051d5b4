#!py
"""
Rotate the cluster CA the master keeps (docs/pki.md, "Rotating the CA"), upstream's manual
procedure, with the API up through the VIP all along:

    salt-run state.orchestrate orch.rotate_ca
    salt-run state.orchestrate orch.rotate_ca pillar='{"cluster": "hardway"}'

1. trust: a new CA trusted beside the old one in every place that reads the CA, rolled out
   (orch.control_plane: etcd's members one at a time, each apiserver drained before its
   restart). Refused, changing nothing, unless orch.control_plane has nothing else to
   change; an etcd snapshot is taken first
2. sign: the new CA signs; every leaf re-issued from it, one controller at a time
3. drop: the old CA out of every file; on the master the new CA becomes the cluster's

A run that stopped half-way resumes where it stood. Needs pki:source salt and etcd:managed
(the master keeps the CA); ServiceAccount tokens stay valid (their key is not the CA).
"""

from salt.exceptions import CommandExecutionError, SaltRenderError

STEPS = ("trust", "sign", "drop")


def run():
    # the orchestration's pillar=... (Salt's loader gives a mapping, not a dict)
    options = __pillar__
    __salt__["saltutil.runner"]("saltutil.sync_all")
    try:
        found = __salt__["k8s_orchestration.cluster"](options.get("cluster"), "orch.rotate_ca")
    except CommandExecutionError as exc:
        raise SaltRenderError(f"orch.rotate_ca: {exc}") from exc
    name = found["cluster"]
    steps, previous = {}, None
    for step in STEPS:
        steps[f"rotate-ca-{step}"] = {
            "salt.runner": [
                {"name": "k8s_ca.rotate"},
                {"step": step},
                {"cluster": name},
                {"failhard": True},
                *([{"require": [{"salt": previous}]}] if previous else []),
            ]
        }
        previous = f"rotate-ca-{step}"
    return steps
