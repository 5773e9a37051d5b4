# The seed's "Kubernetes Frontend Load Balancer": sysctl, haproxy, keepalived.
include:
  - .sysctl
  - .haproxy
  - .keepalived
