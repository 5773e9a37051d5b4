# Undo loadbalancer, in reverse order.
include:
  - .keepalived.clean
  - .haproxy.clean
  - .sysctl.clean
