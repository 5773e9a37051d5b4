{%- set cfg = salt['k8s_cluster.config']() %}
{%- set h = cfg.loadbalancer.haproxy %}
loadbalancer-haproxy-clean-service-dead:
  service.dead:
    - name: {{ h.service }}
    - enable: False

loadbalancer-haproxy-clean-file-absent:
  file.absent:
    - names:
      - {{ h.config }}
      - {{ h.ca_file }}
    - require:
      - service: loadbalancer-haproxy-clean-service-dead

loadbalancer-haproxy-clean-pkg-removed:
  pkg.removed:
    - name: {{ h.pkg }}
    - require:
      - file: loadbalancer-haproxy-clean-file-absent
