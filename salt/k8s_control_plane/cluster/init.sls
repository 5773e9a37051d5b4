include:
  - .validate
