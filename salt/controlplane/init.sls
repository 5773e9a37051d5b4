# The seed's "Provision the Kubernetes Control Plane".
include:
  - controlplane.binaries
  - controlplane.pki
  - controlplane.services
