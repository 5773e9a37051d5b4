#!py
"""
Seed step "Download and Install the Kubernetes Controller Binaries": each
binary of the pillar's version from kubernetes:release_url, verified against
the .sha256 file published beside it, installed to bin_dir. Never over
binaries the version-skew policy forbids replacing with it (a downgrade, a
jump of minors): k8s_upgrade.installable refuses first.
"""


def run():
    ctx = __salt__["k8s_cluster.sls_context"](sls)
    if ctx["cfg"] is None:  # the validation state alone runs, failing with every error
        return {"include": [ctx["validated"]]}
    root, validated, cfg = ctx["root"], ctx["validated"], ctx["cfg"]
    cp, k8s = cfg["controlplane"], cfg["kubernetes"]
    version = "v" + str(k8s["version"]).lstrip("v")
    base = f"{k8s['release_url'].rstrip('/')}/{version}/bin/linux/{k8s['arch']}"
    states = {"include": [validated]}
    guard = f"{root}-controlplane-binaries-k8s_upgrade-installable"
    states[guard] = {
        "k8s_upgrade.installable": [
            {"name": str(k8s["version"]).lstrip("v")},
            {"require": [{"sls": validated}]},
        ]
    }
    for name in cp["binaries"]:
        states[f"{root}-controlplane-binaries-file-managed-{name}"] = {
            "file.managed": [
                {"name": f"{cp['bin_dir']}/{name}"},
                {"source": f"{base}/{name}"},
                {"source_hash": f"{base}/{name}.sha256"},
                {"user": "root"},
                {"group": "root"},
                {"mode": "0755"},
                {"makedirs": True},
                {"require": [{"k8s_upgrade": guard}]},
            ]
        }
    return states
