{%- set tplroot = tpldir.split('/')[0] %}
{%- set h = salt['k8s_cluster.config']().loadbalancer.haproxy %}
{{ tplroot }}-loadbalancer-haproxy-clean-service-dead:
  service.dead:
    - name: {{ h.service }}
    - enable: False

{{ tplroot }}-loadbalancer-haproxy-clean-file-absent:
  file.absent:
    - names:
      - {{ h.config }}
      - {{ h.ca_file }}
    - require:
      - service: {{ tplroot }}-loadbalancer-haproxy-clean-service-dead

{{ tplroot }}-loadbalancer-haproxy-clean-pkg-purged:
  pkg.purged:
    - name: {{ h.pkg }}
    - require:
      - file: {{ tplroot }}-loadbalancer-haproxy-clean-file-absent

{{ tplroot }}-loadbalancer-haproxy-clean-file-absent-state_dir:
  file.absent:
    - name: {{ h.state_dir }}
    - require:
      - pkg: {{ tplroot }}-loadbalancer-haproxy-clean-pkg-purged
