include:
  - cluster.validate
