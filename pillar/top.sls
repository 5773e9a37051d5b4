# Pillar top file: one block per cluster.
#
# A cluster is a pillar file under pillar/ (its public settings) plus its
# secrets file (certificates, keys, kubeconfigs, the encryption key), which
# is generated per cluster and never committed (see README "Secrets").
# ignore_missing lets the public part render before the secrets exist; the
# validation step then names every missing secret.
#
# To add a cluster: add pillar/<name>.sls and one block here.
base:
  'k8s-controller-*':
    - ignore_missing: True
    - hardway
    - hardway-secrets
