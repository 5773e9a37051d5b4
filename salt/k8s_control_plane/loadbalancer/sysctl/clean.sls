{%- set tplroot = tpldir.split('/')[0] %}
{%- set cfg = salt['k8s_cluster.config']() %}
{{ tplroot }}-loadbalancer-sysctl-clean-file-absent:
  file.absent:
    - name: {{ cfg.loadbalancer.sysctl.config }}

{{ tplroot }}-loadbalancer-sysctl-clean-cmd-run:
  cmd.run:
    - name: sysctl -w net.ipv4.ip_nonlocal_bind=0
    - onchanges:
      - file: {{ tplroot }}-loadbalancer-sysctl-clean-file-absent
