"""The lab: three (1-9) systemd-nspawn controllers, a real salt-master and the binary mirror
in network namespaces of their own (lab.py says how; labctl.py is `make lab`'s CLI).
The lab tests (tests/lab/) and the bench (bench/) import it."""
