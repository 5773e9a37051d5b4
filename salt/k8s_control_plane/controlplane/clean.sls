# Undo controlplane, in reverse order.
include:
  - .services.clean
  - ..pki.clean
  - .binaries.clean
