# The seed's cluster: "Kubernetes the Hard Way", chapter 08 (Korean edition).
# Three controllers behind a keepalived VIP with haproxy, Kubernetes v1.18.6.
# Every key and its default is documented in docs/pillar.md ("Pillar reference");
# keys left out here take the defaults in salt/k8s_control_plane/*/parameters/.
k8s_control_plane:
  cluster: hardway           # this cluster's identity (orchestration targets it)
  cluster_name: kubernetes
  # seed: the seed's timings (script check every 5 s, haproxy inter 10s).
  # tuned (the default when unset): sub-second detection, /readyz checks.
  profile: seed
  controllers:               # ordered: the first is the keepalived MASTER
    - id: k8s-controller-1
      address: 10.240.0.11
    - id: k8s-controller-2
      address: 10.240.0.12
    - id: k8s-controller-3
      address: 10.240.0.13
  vip:
    address: 10.240.0.10
    hostname: k8s-controller   # the seed's /etc/hosts name for the VIP
    interface: enp0s8
    virtual_router_id: 51
  kubernetes:
    version: 1.18.6
    service_cidr: 10.32.0.0/24
    cluster_cidr: 10.200.0.0/16
    node_port_range: 30000-32767
  etcd:
    servers:
      - https://10.240.0.11:2379
      - https://10.240.0.12:2379
      - https://10.240.0.13:2379
