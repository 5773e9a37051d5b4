# Every minion whose pillar describes a control plane cluster gets the whole
# controller role; `salt 'k8s-controller-*' state.apply` converges each one.
base:
  'I@k8s_control_plane:cluster:*':
    - match: compound
    - k8s_control_plane
