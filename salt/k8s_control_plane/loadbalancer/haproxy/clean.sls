{%- set tplroot = tpldir.split('/')[0] %}
{%- set cfg = salt['k8s_cluster.config']() %}
{%- set h = cfg.loadbalancer.haproxy %}
{#- haproxy/init.sls's drop-in (loadbalancer:keepalived:track_file) and the file it writes #}
{%- set drop_in_dir = cfg.controlplane.unit_dir ~ '/' ~ h.service ~ '.service.d' %}
{%- set track_file = cfg.loadbalancer.keepalived.track_file %}
{{ tplroot }}-loadbalancer-haproxy-clean-service-dead:
  service.dead:
    - name: {{ h.service }}
    - enable: False

{{ tplroot }}-loadbalancer-haproxy-clean-file-absent:
  file.absent:
    - names:
      - {{ h.config }}
      - {{ h.ca_file }}
      - {{ drop_in_dir }}/k8s_control_plane-track-file.conf
{%- if track_file %}
      - {{ track_file }}
{%- endif %}
    - require:
      - service: {{ tplroot }}-loadbalancer-haproxy-clean-service-dead

{#- the drop-in directory only when nothing else is left in it #}
{{ tplroot }}-loadbalancer-haproxy-clean-cmd-run-drop_in_dir:
  cmd.run:
    - name: rmdir {{ drop_in_dir }}
    - onlyif: test -d {{ drop_in_dir }} && test -z "$(ls -A {{ drop_in_dir }})"
    - require:
      - file: {{ tplroot }}-loadbalancer-haproxy-clean-file-absent

{{ tplroot }}-loadbalancer-haproxy-clean-pkg-purged:
  pkg.purged:
    - name: {{ h.pkg }}
    - require:
      - file: {{ tplroot }}-loadbalancer-haproxy-clean-file-absent

{{ tplroot }}-loadbalancer-haproxy-clean-file-absent-state_dir:
  file.absent:
    - name: {{ h.state_dir }}
    - require:
      - pkg: {{ tplroot }}-loadbalancer-haproxy-clean-pkg-purged
