{#- Undo pki: the PKI directory with every key, certificate and kubeconfig
    (etcd's certificates go with etcd.clean). The master keeps the CA. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- set cp = salt['k8s_cluster.config']().controlplane %}
{{ tplroot }}-pki-clean-file-absent:
  file.absent:
    - name: {{ cp.pki_dir }}
