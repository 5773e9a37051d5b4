# Undo loadbalancer, in reverse order.
include:
  - loadbalancer.keepalived.clean
  - loadbalancer.haproxy.clean
  - loadbalancer.sysctl.clean
