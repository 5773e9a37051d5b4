#!py
"""
Seed: "sudo sysctl -w net.ipv4.ip_nonlocal_bind=1", made persistent, so
haproxy on a backup can bind the VIP it does not hold yet.
"""


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    root, validated, cfg = ctx["root"], ctx["validated"], ctx["cfg"]
    return {
        "include": [validated],
        f"{root}-loadbalancer-sysctl-sysctl-present": {
            "sysctl.present": [
                {"name": "net.ipv4.ip_nonlocal_bind"},
                {"value": 1},
                {"config": cfg["loadbalancer"]["sysctl"]["config"]},
                {"require": [{"sls": validated}]},
            ]
        },
    }
