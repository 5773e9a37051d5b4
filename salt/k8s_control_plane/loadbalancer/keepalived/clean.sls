{%- set tplroot = tpldir.split('/')[0] %}
{%- set ka = salt['k8s_cluster.config']().loadbalancer.keepalived %}
{{ tplroot }}-loadbalancer-keepalived-clean-service-dead:
  service.dead:
    - name: {{ ka.service }}
    - enable: False

{{ tplroot }}-loadbalancer-keepalived-clean-file-absent:
  file.absent:
    - name: {{ ka.config }}
    - require:
      - service: {{ tplroot }}-loadbalancer-keepalived-clean-service-dead

{{ tplroot }}-loadbalancer-keepalived-clean-pkg-purged:
  pkg.purged:
    - name: {{ ka.pkg }}
    - require:
      - file: {{ tplroot }}-loadbalancer-keepalived-clean-file-absent

{{ tplroot }}-loadbalancer-keepalived-clean-user-absent:
  user.absent:
    - name: {{ ka.script_user }}
    - require:
      - pkg: {{ tplroot }}-loadbalancer-keepalived-clean-pkg-purged
