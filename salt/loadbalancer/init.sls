# The seed's "Kubernetes Frontend Load Balancer": sysctl, haproxy, keepalived.
include:
  - loadbalancer.sysctl
  - loadbalancer.haproxy
  - loadbalancer.keepalived
