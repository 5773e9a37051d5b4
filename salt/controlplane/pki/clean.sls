{%- set cp = salt['k8s_cluster.config']().controlplane %}
controlplane-pki-clean-file-absent:
  file.absent:
    - name: {{ cp.pki_dir }}
