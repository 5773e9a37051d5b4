{%- set tplroot = tpldir.split('/')[0] %}
{%- set sid = tplroot ~ '-controlplane-services-clean' %}
{%- set cp = salt['k8s_cluster.config']().controlplane %}
{%- for component in ('kube-scheduler', 'kube-controller-manager', 'kube-apiserver') %}
{{ sid }}-service-dead-{{ component }}:
  service.dead:
    - name: {{ component }}
    - enable: False

{{ sid }}-file-absent-{{ component }}:
  file.absent:
    - name: {{ cp.unit_dir }}/{{ component }}.service
    - require:
      - service: {{ sid }}-service-dead-{{ component }}
{%- endfor %}

{{ sid }}-file-absent-kube-scheduler.yaml:
  file.absent:
    - name: {{ cp.config_dir }}/kube-scheduler.yaml

{{ sid }}-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: {{ sid }}-file-absent-kube-apiserver
