{%- set cp = salt['k8s_cluster.config']().controlplane %}
{%- for component in ('kube-scheduler', 'kube-controller-manager', 'kube-apiserver') %}
controlplane-services-clean-service-dead-{{ component }}:
  service.dead:
    - name: {{ component }}
    - enable: False

controlplane-services-clean-file-absent-{{ component }}:
  file.absent:
    - name: {{ cp.unit_dir }}/{{ component }}.service
    - require:
      - service: controlplane-services-clean-service-dead-{{ component }}
{%- endfor %}

controlplane-services-clean-file-absent-kube-scheduler.yaml:
  file.absent:
    - name: {{ cp.config_dir }}/kube-scheduler.yaml

controlplane-services-clean-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: controlplane-services-clean-file-absent-kube-apiserver
