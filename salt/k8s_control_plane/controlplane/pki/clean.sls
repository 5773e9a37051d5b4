{%- set tplroot = tpldir.split('/')[0] %}
{%- set cp = salt['k8s_cluster.config']().controlplane %}
{{ tplroot }}-controlplane-pki-clean-file-absent:
  file.absent:
    - name: {{ cp.pki_dir }}
