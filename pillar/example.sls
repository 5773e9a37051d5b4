# An example second cluster: current Kubernetes, the tuned (default) profile,
# VRRP roles from explicit priorities. Not in top.sls: to use it, copy it to
# pillar/<name>.sls, edit, and add one block to pillar/top.sls, e.g.
#   'prod-cp-*':
#     - ignore_missing: True
#     - <name>
#     - <name>-secrets
k8s_control_plane:
  cluster: example
  controllers:
    - id: prod-cp-1
      address: 192.168.50.11
      priority: 150
    - id: prod-cp-2
      address: 192.168.50.12
      priority: 140
    - id: prod-cp-3
      address: 192.168.50.13
      priority: 130
  vip:
    address: 192.168.50.10
    subnet: 192.168.50.0/24
    virtual_router_id: 52
  kubernetes:
    version: 1.34.2
    service_cidr: 10.96.0.0/16
    cluster_cidr: 10.244.0.0/16
