"""Per-version flag tables of the three components, as data, for Kubernetes 1.18 to 1.34.

The double's range ends where the real builds begin (tools/upstream_build.py REAL_MINORS, from
1.35): for those minors the binary is the authority, and no fact here is about them.

Each entry: (type, first minor, minor it was removed in or None: not removed by 1.34, check).
Types follow pflag: bool, int, float, string, ip, duration, strings (comma list, repeatable), array
(repeatable), map (k=v list), portrange, version. "check" names what a file flag must point at
(see checks.py). Removal versions are given only where the changelogs are clear. The project's
pillar can add any flag (``controlplane:extra_args``), so the whole table is observable: a flag
the pretended version lacks fails the unit like the real binary does.

These facts are the double's own, read from upstream (each group cites its source: the
kubernetes/kubernetes PR that changed it, its CHANGELOG-1.x.md entry, or the reference pages at
kubernetes.io/docs/reference/command-line-tools-reference/). They are never generated from the
formula's version table (salt/.../controlplane/parameters/versions.yaml): the contract test
(tests/unit/test_version_contract.py) runs that table's flags through this double, and two tables
written from the same reading could agree and both be wrong. Where a fact could not be confirmed
upstream, its comment says so.
"""

from __future__ import annotations


def _f(type_: str, since: int = 18, removed: int | None = None, check: str | None = None):
    return (type_, since, removed, check)


GLOBAL_FLAGS = {
    "help": _f("bool"),
    "version": _f("version"),
    "v": _f("int"),
    "vmodule": _f("strings"),
    "log-flush-frequency": _f("duration"),
    "logging-format": _f("string", since=19),
    # klog's own flags, deprecated in 1.23 and removed in 1.26 (KEP-2845; removal
    # kubernetes/kubernetes#112120, "logs: remove deprecated klog flags").
    "logtostderr": _f("bool", removed=26),
    "alsologtostderr": _f("bool", removed=26),
    "log-dir": _f("string", removed=26),
    "log-file": _f("string", removed=26),
    "log-file-max-size": _f("int", removed=26),
    "log-backtrace-at": _f("string", removed=26),
    "skip-headers": _f("bool", removed=26),
    "skip-log-headers": _f("bool", removed=26),
    "stderrthreshold": _f("string", removed=26),
    "add-dir-header": _f("bool", removed=26),
    "one-output": _f("bool", removed=26),
    "feature-gates": _f("map"),
    "profiling": _f("bool"),
    "contention-profiling": _f("bool"),
}

SECURE_SERVING_FLAGS = {
    "bind-address": _f("ip"),
    "secure-port": _f("int"),
    "cert-dir": _f("string"),
    "tls-cert-file": _f("string", check="cert"),
    "tls-private-key-file": _f("string", check="key"),
    "tls-cipher-suites": _f("strings"),
    "tls-min-version": _f("string"),
    "tls-sni-cert-key": _f("array"),
    "http2-max-streams-per-connection": _f("int"),
}

REQUESTHEADER_FLAGS = {
    "client-ca-file": _f("string", check="ca"),
    "requestheader-client-ca-file": _f("string", check="ca"),
    "requestheader-allowed-names": _f("strings"),
    "requestheader-extra-headers-prefix": _f("strings"),
    "requestheader-group-headers": _f("strings"),
    "requestheader-username-headers": _f("strings"),
}

# Flags of kube-controller-manager and kube-scheduler (delegated authn/authz, leader election,
# insecure serving that 1.22 turned off and 1.24 removed).
COMPONENT_BASE_FLAGS = {
    # Insecure serving: off by default in the controller-manager from 1.22 (#96216), the
    # scheduler's inert from 1.21 (#96345, "would be removed in v1.24"); CHANGELOG-1.24: "The
    # insecure address flags --address and --port in kube-controller-manager ... are removed in
    # v1.24". The scheduler's removal in 1.24 is from #96345's note, its removal PR not found.
    "address": _f("ip", removed=24),
    "port": _f("int", removed=24),
    "authentication-kubeconfig": _f("string", check="kubeconfig"),
    "authentication-skip-lookup": _f("bool"),
    "authentication-token-webhook-cache-ttl": _f("duration"),
    "authentication-tolerate-lookup-failure": _f("bool"),
    "authorization-kubeconfig": _f("string", check="kubeconfig"),
    "authorization-always-allow-paths": _f("strings"),
    "authorization-webhook-cache-authorized-ttl": _f("duration"),
    "authorization-webhook-cache-unauthorized-ttl": _f("duration"),
    "kubeconfig": _f("string", check="kubeconfig"),
    "master": _f("string"),
    "kube-api-burst": _f("int"),
    "kube-api-content-type": _f("string"),
    "kube-api-qps": _f("float"),
    "leader-elect": _f("bool"),
    "leader-elect-lease-duration": _f("duration"),
    "leader-elect-renew-deadline": _f("duration"),
    "leader-elect-retry-period": _f("duration"),
    "leader-elect-resource-lock": _f("string"),
    "leader-elect-resource-name": _f("string"),
    "leader-elect-resource-namespace": _f("string"),
    **SECURE_SERVING_FLAGS,
    **REQUESTHEADER_FLAGS,
}

APISERVER_FLAGS = {
    **SECURE_SERVING_FLAGS,
    **REQUESTHEADER_FLAGS,
    "admission-control": _f("strings"),
    "admission-control-config-file": _f("string", check="file"),
    "advertise-address": _f("ip"),
    "allow-privileged": _f("bool"),
    "anonymous-auth": _f("bool"),
    "api-audiences": _f("strings"),
    # Deprecated in 1.24 (#108062), still accepted in 1.34, the double's last minor (DEPRECATED
    # below).
    "apiserver-count": _f("int"),
    "audit-log-compress": _f("bool", since=19),
    "audit-log-format": _f("string"),
    "audit-log-maxage": _f("int"),
    "audit-log-maxbackup": _f("int"),
    "audit-log-maxsize": _f("int"),
    "audit-log-mode": _f("string"),
    "audit-log-path": _f("string", check="audit-log"),
    "audit-policy-file": _f("string", check="audit-policy"),
    "audit-webhook-config-file": _f("string", check="file"),
    "audit-webhook-mode": _f("string"),
    # Structured authentication/authorization configuration files: alpha in 1.29 (KEP-3331,
    # KEP-3221); --authorization-config is GA in 1.32 and exclusive with --authorization-mode
    # (pkg/kubeapiserver/options/authorization.go; apiserver.py checks it).
    "authentication-config": _f("string", since=29, check="file"),
    "authentication-token-webhook-config-file": _f("string", check="file"),
    "authorization-config": _f("string", since=29, check="file"),
    "authorization-mode": _f("strings"),
    "authorization-policy-file": _f("string", check="file"),
    "authorization-webhook-config-file": _f("string", check="file"),
    "basic-auth-file": _f("string", removed=19, check="file"),
    # Deprecated in 1.29 (#120903), removed in 1.33 (#130162; kops#17267: the 1.33 apiserver
    # fails with "Error: unknown flag: --cloud-config"). The deprecation warning's text was not
    # found, so the double prints none for them.
    "cloud-config": _f("string", removed=33, check="file"),
    "cloud-provider": _f("string", removed=33),
    "cors-allowed-origins": _f("strings"),
    "default-not-ready-toleration-seconds": _f("int"),
    "default-unreachable-toleration-seconds": _f("int"),
    "delete-collection-workers": _f("int"),
    "disable-admission-plugins": _f("strings"),
    "egress-selector-config-file": _f("string", check="file"),
    "enable-admission-plugins": _f("strings"),
    "enable-aggregator-routing": _f("bool"),
    "enable-bootstrap-token-auth": _f("bool"),
    "enable-garbage-collector": _f("bool"),
    "enable-priority-and-fairness": _f("bool"),
    "encryption-provider-config": _f("string", check="encryption"),
    "encryption-provider-config-automatic-reload": _f("bool", since=26),
    "endpoint-reconciler-type": _f("string"),
    "etcd-cafile": _f("string", check="ca"),
    "etcd-certfile": _f("string", check="cert"),
    "etcd-compaction-interval": _f("duration"),
    "etcd-count-metric-poll-period": _f("duration"),
    "etcd-keyfile": _f("string", check="key"),
    "etcd-prefix": _f("string"),
    "etcd-servers": _f("strings"),
    "etcd-servers-overrides": _f("strings"),
    "event-ttl": _f("duration"),
    "external-hostname": _f("string"),
    "goaway-chance": _f("float"),
    # Insecure serving: only 0 allowed from 1.20, the flags are gone in 1.24 (#95856,
    # CHANGELOG-1.20 "Urgent Upgrade Notes"; CHANGELOG-1.24).
    "insecure-bind-address": _f("ip", removed=24),
    "insecure-port": _f("int", removed=24),
    "address": _f("ip", removed=24),
    "port": _f("int", removed=24),
    "kubelet-certificate-authority": _f("string", check="ca"),
    "kubelet-client-certificate": _f("string", check="cert"),
    "kubelet-client-key": _f("string", check="key"),
    # Deprecated in 1.19 (#91630), removed in 1.22 (#101178).
    "kubelet-https": _f("bool", removed=22),
    "kubelet-preferred-address-types": _f("strings"),
    "kubelet-timeout": _f("duration"),
    "livez-grace-period": _f("duration"),
    "max-mutating-requests-inflight": _f("int"),
    "max-requests-inflight": _f("int"),
    "min-request-timeout": _f("int"),
    "oidc-ca-file": _f("string", check="ca"),
    "oidc-client-id": _f("string"),
    "oidc-groups-claim": _f("string"),
    "oidc-issuer-url": _f("string"),
    "oidc-username-claim": _f("string"),
    "proxy-client-cert-file": _f("string", check="cert"),
    "proxy-client-key-file": _f("string", check="key"),
    "request-timeout": _f("duration"),
    "runtime-config": _f("map"),
    "service-account-extend-token-expiration": _f("bool"),
    "service-account-issuer": _f("array"),
    "service-account-jwks-uri": _f("string"),
    "service-account-key-file": _f("array", check="pubkey"),
    "service-account-lookup": _f("bool"),
    "service-account-max-token-expiration": _f("duration"),
    "service-account-signing-key-file": _f("string", check="privkey"),
    "service-cluster-ip-range": _f("string"),
    "service-node-port-range": _f("portrange"),
    "shutdown-delay-duration": _f("duration"),
    # Added in 1.27 by kubernetes/kubernetes#114925 ("apiserver: terminate watch with rate
    # limiting during shutdown", merged 2023-02-27); in k8s.io/apiserver's
    # pkg/server/options/server_run_options.go.
    "shutdown-watch-termination-grace-period": _f("duration", since=27),
    "storage-backend": _f("string"),
    "storage-media-type": _f("string"),
    "strict-transport-security-directives": _f("strings"),
    "token-auth-file": _f("string", check="file"),
    "watch-cache": _f("bool"),
    "watch-cache-sizes": _f("strings"),
}

CONTROLLER_MANAGER_FLAGS = {
    **COMPONENT_BASE_FLAGS,
    "allocate-node-cidrs": _f("bool"),
    "cloud-config": _f("string", check="file"),
    "cloud-provider": _f("string"),
    "cluster-cidr": _f("string"),
    "cluster-name": _f("string"),
    "cluster-signing-cert-file": _f("string", check="cert"),
    "cluster-signing-key-file": _f("string", check="key"),
    "cluster-signing-duration": _f("duration", since=19),
    # Deprecated in 1.19 (#91154), removed in 1.25 (#108476; kops#15909: "unknown flag").
    "experimental-cluster-signing-duration": _f("duration", removed=25),
    "cluster-signing-kube-apiserver-client-cert-file": _f("string", since=19, check="cert"),
    "cluster-signing-kube-apiserver-client-key-file": _f("string", since=19, check="key"),
    "cluster-signing-kubelet-client-cert-file": _f("string", since=19, check="cert"),
    "cluster-signing-kubelet-client-key-file": _f("string", since=19, check="key"),
    "cluster-signing-kubelet-serving-cert-file": _f("string", since=19, check="cert"),
    "cluster-signing-kubelet-serving-key-file": _f("string", since=19, check="key"),
    "cluster-signing-legacy-unknown-cert-file": _f("string", since=19, check="cert"),
    "cluster-signing-legacy-unknown-key-file": _f("string", since=19, check="key"),
    "concurrent-deployment-syncs": _f("int"),
    "concurrent-endpoint-syncs": _f("int"),
    "concurrent-gc-syncs": _f("int"),
    "concurrent-namespace-syncs": _f("int"),
    "concurrent-replicaset-syncs": _f("int"),
    "concurrent-service-syncs": _f("int"),
    "concurrent-serviceaccount-token-syncs": _f("int"),
    "configure-cloud-routes": _f("bool"),
    "controllers": _f("strings"),
    "horizontal-pod-autoscaler-sync-period": _f("duration"),
    "node-cidr-mask-size": _f("int"),
    "node-cidr-mask-size-ipv4": _f("int"),
    "node-cidr-mask-size-ipv6": _f("int"),
    "node-monitor-grace-period": _f("duration"),
    "node-monitor-period": _f("duration"),
    # Deprecated in 1.26 (#113710), removed in 1.27 (#115840).
    "pod-eviction-timeout": _f("duration", removed=27),
    "root-ca-file": _f("string", check="ca"),
    "service-account-private-key-file": _f("string", check="privkey"),
    "service-cluster-ip-range": _f("string"),
    "terminated-pod-gc-threshold": _f("int"),
    "use-service-account-credentials": _f("bool"),
}

SCHEDULER_FLAGS = {
    **COMPONENT_BASE_FLAGS,
    "config": _f("string", check="scheduler-config"),
    "write-config-to": _f("string"),
    # The legacy policy API went away with KubeSchedulerConfiguration v1beta1 in 1.23 (KEP-785
    # history: "2021-09-01: Remove v1beta1 and the legacy policy config API").
    "algorithm-provider": _f("string", removed=23),
    "policy-config-file": _f("string", removed=23, check="file"),
    "policy-configmap": _f("string", removed=23),
    "policy-configmap-namespace": _f("string", removed=23),
    "use-legacy-policy-config": _f("bool", removed=23),
}

FLAGS = {
    "kube-apiserver": {**GLOBAL_FLAGS, **APISERVER_FLAGS},
    "kube-controller-manager": {**GLOBAL_FLAGS, **CONTROLLER_MANAGER_FLAGS},
    "kube-scheduler": {**GLOBAL_FLAGS, **SCHEDULER_FLAGS},
}

# Certificate/key flags that must be given together and must match.
PAIRS = {
    "kube-apiserver": (
        ("tls-cert-file", "tls-private-key-file"),
        ("etcd-certfile", "etcd-keyfile"),
        ("kubelet-client-certificate", "kubelet-client-key"),
        ("proxy-client-cert-file", "proxy-client-key-file"),
    ),
    "kube-controller-manager": (
        ("tls-cert-file", "tls-private-key-file"),
        ("cluster-signing-cert-file", "cluster-signing-key-file"),
        (
            "cluster-signing-kube-apiserver-client-cert-file",
            "cluster-signing-kube-apiserver-client-key-file",
        ),
        ("cluster-signing-kubelet-client-cert-file", "cluster-signing-kubelet-client-key-file"),
        ("cluster-signing-kubelet-serving-cert-file", "cluster-signing-kubelet-serving-key-file"),
        ("cluster-signing-legacy-unknown-cert-file", "cluster-signing-legacy-unknown-key-file"),
    ),
    "kube-scheduler": (("tls-cert-file", "tls-private-key-file"),),
}

# KubeSchedulerConfiguration versions: (first minor, minor it was removed in). v1beta1 new in
# 1.19 (KEP-785), v1beta2 and v1beta3 new in 1.22 and 1.23, v1 in 1.25 (KEP-785 history,
# kubernetes/enhancements#3495); v1beta2 removed in 1.28 (#117649), v1beta3 in 1.29 (#119994);
# v1alpha1/v1alpha2 ending with 1.18 is from KTHW issue #596 (1.19 needs v1beta1), not re-read.
SCHEDULER_CONFIG_VERSIONS = {
    "kubescheduler.config.k8s.io/v1alpha1": (18, 19),
    "kubescheduler.config.k8s.io/v1alpha2": (18, 19),
    "kubescheduler.config.k8s.io/v1beta1": (19, 23),
    "kubescheduler.config.k8s.io/v1beta2": (22, 28),
    "kubescheduler.config.k8s.io/v1beta3": (23, 29),
    "kubescheduler.config.k8s.io/v1": (25, None),
}

# Admission plugins the apiserver knows: (first minor, minor it was removed in). Sources:
# kubernetes.io/docs/reference/access-authn-authz/admission-controllers/; removals:
# DenyEscalatingExec/DenyExecOnPrivileged 1.21 (#98669), PodPreset 1.20, PodSecurityPolicy 1.25,
# SecurityContextDeny 1.30 (#122612), PersistentVolumeLabel 1.31 (#124505, website#46302).
ADMISSION_PLUGINS = {
    "AlwaysAdmit": (18, None),
    "AlwaysDeny": (18, None),
    "AlwaysPullImages": (18, None),
    "CertificateApproval": (18, None),
    "CertificateSigning": (18, None),
    "CertificateSubjectRestriction": (18, None),
    "ClusterTrustBundleAttest": (27, None),
    "DefaultIngressClass": (18, None),
    "DefaultStorageClass": (18, None),
    "DefaultTolerationSeconds": (18, None),
    "DenyEscalatingExec": (18, 21),
    "DenyExecOnPrivileged": (18, 21),
    "DenyServiceExternalIPs": (21, None),
    "EventRateLimit": (18, None),
    "ExtendedResourceToleration": (18, None),
    "ImagePolicyWebhook": (18, None),
    "LimitPodHardAntiAffinityTopology": (18, None),
    "LimitRanger": (18, None),
    "MutatingAdmissionPolicy": (32, None),
    "MutatingAdmissionWebhook": (18, None),
    "NamespaceAutoProvision": (18, None),
    "NamespaceExists": (18, None),
    "NamespaceLifecycle": (18, None),
    "NodeRestriction": (18, None),
    "OwnerReferencesPermissionEnforcement": (18, None),
    "PersistentVolumeClaimResize": (18, None),
    "PersistentVolumeLabel": (18, 31),
    "PodNodeSelector": (18, None),
    "PodPreset": (18, 20),
    "PodSecurity": (22, None),
    "PodSecurityPolicy": (18, 25),
    "PodTolerationRestriction": (18, None),
    "Priority": (18, None),
    "ResourceQuota": (18, None),
    "RuntimeClass": (18, None),
    "SecurityContextDeny": (18, 30),
    "ServiceAccount": (18, None),
    "StorageObjectInUseProtection": (18, None),
    "TaintNodesByCondition": (18, None),
    "ValidatingAdmissionPolicy": (26, None),
    "ValidatingAdmissionWebhook": (18, None),
}

AUTHORIZATION_MODES = ("AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node")

_KLOG = (
    "will be removed in a future release, see https://github.com/kubernetes/enhancements/tree/"
    "master/keps/sig-instrumentation/2845-deprecate-klog-specific-flags-in-k8s-components"
)
_KLOG_FLAGS = [name for name, spec in GLOBAL_FLAGS.items() if spec[2] == 26]

# What the binary prints on stderr when given a deprecated flag (pflag's MarkDeprecated:
# "Flag --NAME has been deprecated, MESSAGE"), per component: flag -> [(first minor, minor the
# message ends in or None, message)]. Only messages read upstream are listed.
DEPRECATED = {
    "kube-apiserver": {
        # #108062 (1.24); the line as logged by 1.27 (kubernetes#119856) and 1.32 kube-apiservers,
        # and quoted by kubespray#13262.
        "apiserver-count": [
            (24, None, "apiserver-count is deprecated and will be removed in a future version.")
        ],
        # #91630 (1.19); the line as logged by a 1.20 kube-apiserver.
        "kubelet-https": [
            (
                19,
                22,
                "API Server connections to kubelets always use https. This flag will be removed "
                "in 1.22.",
            )
        ],
        # k8s.io/apiserver DeprecatedInsecureServingOptions.AddFlags (1.18); from 1.20 (#95856)
        # as logged by a 1.20 kube-apiserver for --insecure-port (--insecure-bind-address's 1.20
        # text not seen; assumed the same).
        "insecure-port": [
            (18, 20, "This flag will be removed in a future version."),
            (20, 24, "This flag has no effect now and will be removed in v1.24."),
        ],
        "insecure-bind-address": [
            (18, 20, "This flag will be removed in a future version."),
            (20, 24, "This flag has no effect now and will be removed in v1.24."),
        ],
        # AddUnqualifiedFlags, which the 1.18 apiserver also registers ("remove it until kops
        # stops using `--address`"); later texts not seen.
        "address": [(18, 24, "see --bind-address instead.")],
        "port": [(18, 24, "see --secure-port instead.")],
    },
    # The controller-manager registers DeprecatedInsecureServingOptions.AddUnqualifiedFlags
    # (k8s.io/apiserver/pkg/server/options): MarkDeprecated with these messages.
    "kube-controller-manager": {
        "address": [(18, 24, "see --bind-address instead.")],
        "port": [(18, 24, "see --secure-port instead.")],
    },
    # The scheduler's own insecure serving options do not call MarkDeprecated ("MarkDeprecated
    # hides the flag from the help. We don't want that"): no warning for --address/--port.
    "kube-scheduler": {},
}
for _component in DEPRECATED:
    # KEP-2845: deprecated in 1.23, removed in 1.26 (#112120); the line as logged by 1.24 nodes.
    for _name in _KLOG_FLAGS:
        DEPRECATED[_component][_name] = [(23, 26, _KLOG)]


def exists_in(since: int, removed: int | None, minor: int) -> bool:
    return since <= minor and (removed is None or minor < removed)


def deprecation(component: str, flag: str, minor: int) -> str | None:
    """The deprecation message ``component`` prints for ``--flag`` at ``minor``, or None."""
    for since, until, message in DEPRECATED[component].get(flag, ()):
        if exists_in(since, until, minor):
            return message
    return None


def flags_for(component: str, minor: int) -> dict:
    """The flags ``component`` has at ``minor``: name -> (type, since, removed, check)."""
    return {n: s for n, s in FLAGS[component].items() if exists_in(s[1], s[2], minor)}
