{%- set cp = salt['k8s_cluster.config']().controlplane %}
controlplane-binaries-clean-file-absent:
  file.absent:
    - names:
{%- for name in cp.binaries %}
      - {{ cp.bin_dir }}/{{ name }}
{%- endfor %}
