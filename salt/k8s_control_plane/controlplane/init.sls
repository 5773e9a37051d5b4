# The seed's "Provision the Kubernetes Control Plane".
include:
  - .binaries
  - ..pki
  - .services
