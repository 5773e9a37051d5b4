{#- Only an etcd this project manages is removed: with etcd:managed false
    the controllers may run an etcd of their own (the seed's chapter 07). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- set etcd = salt['k8s_cluster.config']().etcd %}
{%- if etcd.managed %}
{{ tplroot }}-etcd-clean-service-dead:
  service.dead:
    - name: etcd
    - enable: False

{{ tplroot }}-etcd-clean-file-absent:
  file.absent:
    - names:
      - {{ etcd.unit }}
      - {{ etcd.config_dir }}
      - {{ etcd.data_dir }}
      - {{ etcd.bin_dir }}/etcd
      - {{ etcd.bin_dir }}/etcdctl
      - {{ etcd.bin_dir }}/etcdutl
      {#- what a snapshot or a restore left (k8s_etcd.snapshot_push, snapshot_prepare,
          snapshot_swap): the data kept aside by a restore too #}
      - {{ etcd.data_dir }}.before-restore
      - {{ etcd.data_dir }}.snapshots
    - require:
      - service: {{ tplroot }}-etcd-clean-service-dead

{{ tplroot }}-etcd-clean-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: {{ tplroot }}-etcd-clean-file-absent
{%- endif %}
