# Undo the whole controller role, in reverse order.
include:
  - .rbac.clean
  - .controlplane.clean
  - .pki.clean
  - .etcd.clean
  - .loadbalancer.clean
