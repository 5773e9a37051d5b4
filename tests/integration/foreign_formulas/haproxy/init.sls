# An unrelated formula named haproxy, as a master may serve beside ours.
haproxy-formula-test-nop:
  test.nop:
    - name: someone else's haproxy formula
