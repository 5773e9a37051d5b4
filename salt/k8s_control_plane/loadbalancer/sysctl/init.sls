#!py
"""
Seed: "sudo sysctl -w net.ipv4.ip_nonlocal_bind=1", made persistent, so
haproxy on a backup can bind the VIP it does not hold yet.
"""


def run():
    root = sls.split(".")[0]
    validated = f"{root}.cluster.validate"
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": [validated]}
    cfg = __salt__["k8s_cluster.config"]()
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
