# Undo controlplane, in reverse order.
include:
  - .services.clean
  - .binaries.clean
