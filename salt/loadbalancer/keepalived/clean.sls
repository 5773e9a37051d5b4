{%- set cfg = salt['k8s_cluster.config']() %}
{%- set ka = cfg.loadbalancer.keepalived %}
loadbalancer-keepalived-clean-service-dead:
  service.dead:
    - name: {{ ka.service }}
    - enable: False

loadbalancer-keepalived-clean-file-absent:
  file.absent:
    - name: {{ ka.config }}
    - require:
      - service: loadbalancer-keepalived-clean-service-dead

loadbalancer-keepalived-clean-pkg-removed:
  pkg.removed:
    - name: {{ ka.pkg }}
    - require:
      - file: loadbalancer-keepalived-clean-file-absent

loadbalancer-keepalived-clean-user-absent:
  user.absent:
    - name: {{ ka.script_user }}
    - require:
      - pkg: loadbalancer-keepalived-clean-pkg-removed
