{%- set etcd = salt['k8s_cluster.config']().etcd %}
etcd-clean-service-dead:
  service.dead:
    - name: etcd
    - enable: False

etcd-clean-file-absent:
  file.absent:
    - names:
      - {{ etcd.unit }}
      - {{ etcd.config_dir }}
      - {{ etcd.data_dir }}
      - {{ etcd.bin_dir }}/etcd
      - {{ etcd.bin_dir }}/etcdctl
    - require:
      - service: etcd-clean-service-dead
