#!py
"""
Seed: "sudo sysctl -w net.ipv4.ip_nonlocal_bind=1", made persistent, so
haproxy on a backup can bind the VIP it does not hold yet.
"""


def run():
    if not __salt__["k8s_cluster.validate"]()["valid"]:
        return {"include": ["cluster.validate"]}
    cfg = __salt__["k8s_cluster.config"]()
    return {
        "include": ["cluster.validate"],
        "loadbalancer-sysctl-sysctl-present": {
            "sysctl.present": [
                {"name": "net.ipv4.ip_nonlocal_bind"},
                {"value": 1},
                {"config": cfg["loadbalancer"]["sysctl"]["config"]},
                {"require": [{"sls": "cluster.validate"}]},
            ]
        },
    }
