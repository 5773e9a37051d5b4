{#- Fails, with every pillar error at once, before any other state runs.
    Every component requires this SLS; failhard stops the run here. #}
{%- set tplroot = tpldir.split('/')[0] %}
{{ tplroot }}-cluster-validate-k8s_cluster-validated:
  k8s_cluster.validated:
    - name: k8s_control_plane
    - failhard: True
