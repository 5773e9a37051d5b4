# An unrelated formula named etcd, as a master may serve beside ours.
etcd-formula-test-nop:
  test.nop:
    - name: someone else's etcd formula
