{%- set cfg = salt['k8s_cluster.config']() %}
loadbalancer-sysctl-clean-file-absent:
  file.absent:
    - name: {{ cfg.loadbalancer.sysctl.config }}

loadbalancer-sysctl-clean-cmd-run:
  cmd.run:
    - name: sysctl -w net.ipv4.ip_nonlocal_bind=0
    - onchanges:
      - file: loadbalancer-sysctl-clean-file-absent
