{%- set tplroot = tpldir.split('/')[0] %}
{%- set cp = salt['k8s_cluster.config']().controlplane %}
{{ tplroot }}-controlplane-binaries-clean-file-absent:
  file.absent:
    - names:
{%- for name in cp.binaries %}
      - {{ cp.bin_dir }}/{{ name }}
{%- endfor %}
