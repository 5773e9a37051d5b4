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

{#- config_dir holds only kube-scheduler.yaml; its parent was made for it
    (makedirs) and goes too when nothing else is in it. #}
{{ sid }}-file-absent-config_dir:
  file.absent:
    - name: {{ cp.config_dir }}

{%- set parent = salt['file.dirname'](cp.config_dir) %}
{{ sid }}-cmd-run-rmdir-parent:
  cmd.run:
    - name: rmdir {{ parent }}
    - onlyif: test -d {{ parent }} && test -z "$(ls -A {{ parent }})"
    - require:
      - file: {{ sid }}-file-absent-config_dir

{{ sid }}-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: {{ sid }}-file-absent-kube-apiserver
