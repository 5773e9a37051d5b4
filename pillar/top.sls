# Pillar top file: one block per cluster.
#
# A cluster is a pillar file under pillar/ (its public settings). With
# pki:source salt (the default) the master's ext_pillar k8s_pki gives its CA
# and encryption key (docs/pki.md); with pki:source pillar a secrets file
# holds every certificate, key and kubeconfig, made per cluster and never
# committed (docs/pki.md, "Secrets"). ignore_missing lets a cluster render without
# a secrets file; the validation names whatever is missing.
#
# To add a cluster: add pillar/<name>.sls and one block here.
base:
  'k8s-controller-*':
    - ignore_missing: true
    - hardway
    - hardway-secrets
