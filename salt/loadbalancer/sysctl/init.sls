# Seed: "sudo sysctl -w net.ipv4.ip_nonlocal_bind=1", made persistent, so
# haproxy on a backup can bind the VIP it does not hold yet.
{%- set cfg = salt['k8s_cluster.config']() %}
include:
  - cluster.validate

loadbalancer-sysctl-sysctl-present:
  sysctl.present:
    - name: net.ipv4.ip_nonlocal_bind
    - value: 1
    - config: {{ cfg.loadbalancer.sysctl.config }}
    - require:
      - sls: cluster.validate
