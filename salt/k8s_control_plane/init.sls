# The whole controller role, in the orchestration's order: validation, the
# load balancer, etcd (when managed), the control plane, the kubelet RBAC.
include:
  - .cluster
  - .loadbalancer
  - .pki
  - .etcd
  - .controlplane
  - .rbac
