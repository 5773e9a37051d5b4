# Undo controlplane, in reverse order.
include:
  - controlplane.services.clean
  - controlplane.pki.clean
  - controlplane.binaries.clean
