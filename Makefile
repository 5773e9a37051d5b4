# The project's commands. Each target installs what it needs on a fresh
# Debian 12 machine (apt packages, the venv), so `make test` and `make lab`
# work from a clean clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CLUSTER ?= hardway
OUT ?= build/render
HOST ?= k8s-controller-1
CMD ?=

# Debian packages the tests use on the host: the real tools that check the
# rendered configs (keepalived -t, haproxy -c), etcd for the doubles' tests,
# what the lab needs to build and boot its controllers, and shellcheck for make lint.
APT_PACKAGES := keepalived haproxy etcd-server etcd-client openssl iproute2 curl \
	systemd-container debootstrap python3-venv nftables shellcheck

.PHONY: help venv deps test unit functional integration lint docs render lab lab-down lab-exec lab-salt faults upgrades bench bench-quick clean

help:
	@echo "make lab        build the lab (three controllers) and run the orchestration on it"
	@echo "make lab CONTROLLERS=5   the same with five controllers (1-9)"
	@echo "make lab VERSION=1.36.3  another Kubernetes release (real for 1.34-1.37, built from upstream's Go modules; test doubles below)"
	@echo "make test       run every test (lint, unit, functional, integration, lab)"
	@echo "make render CLUSTER=hardway OUT=build/render   write every managed file per controller"
	@echo "make docs       regenerate docs/pillar.md's pillar reference from the parameter files"
	@echo "make lab-exec HOST=k8s-controller-1 CMD='...'  run a command on a lab controller"
	@echo "make lab-salt CMD=\"salt '*' test.ping\"        run a Salt command on the lab's master"
	@echo "make lab-down   remove the lab"
	@echo "make upgrades   the lab upgrade test over three releases (1.35.4 -> 1.36.3 with move_vip -> 1.37.2)"
	@echo "make faults     the lab fault tests, each failover fault 5 times (FAULT_REPEAT=5), with the VIP holder census; 5 controllers; a restore after a key rotation"
	@echo "make bench      failover benchmark on the lab: seed profile against tuned (TRIALS=10)"
	@echo "make bench-quick   the short bench CI runs after the tests, with its gate"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	@# pip warns once per file:// index location it does not find; the rest passes through.
	set -o pipefail; $(VENV)/bin/pip install -q -r requirements.txt 2>&1 \
		| { grep -v "^WARNING: Location 'file://" || true; }
	touch $@

deps: build/.apt-installed
build/.apt-installed: Makefile
	@mkdir -p build
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

lint: venv deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) tests/lint_sls.py
	$(PY) tests/lint_cli.py
	$(PY) tools/pillar_reference.py --check
	$(VENV)/bin/yamllint --strict .
	shellcheck .ci/run

unit: venv
	$(PY) -m pytest tests/unit

functional: venv deps
	$(PY) -m pytest tests/functional

integration: venv deps
	$(PY) -m pytest tests/integration

# Everything but the lab on every core (pytest-xdist; a test file stays on one worker, so its
# module fixtures are built once), then the lab's modules one after the other on one lab.
test: venv deps lint
	$(PY) -m pytest -n auto --dist loadfile --durations=10 tests --ignore=tests/lab
	$(PY) -m pytest --durations=25 tests/lab

# docs/pillar.md's pillar reference, from the commented parameter files.
docs: venv
	$(PY) tools/pillar_reference.py --write

render: venv
	$(PY) tools/render.py --cluster $(CLUSTER) --out $(OUT)

# CONTROLLERS=N (1-9): k8s-controller-1..N at 10.240.0.11.. (the seed's pattern); unset keeps
# the running lab's count, three for a new lab.
# VERSION=1.Y.Z: the Kubernetes release (unset keeps the running lab's, 1.37.2 for a new lab);
# built from upstream's Go modules where its minor has a real build, else the test doubles.
CONTROLLERS ?=
VERSION ?=
lab: venv deps
	$(PY) tools/lab/labctl.py up $(if $(CONTROLLERS),--controllers $(CONTROLLERS)) $(if $(VERSION),--version $(VERSION))

lab-down: venv
	$(PY) tools/lab/labctl.py down

# CMD is passed whole (make exports it), so pipes and ';' run in the lab.
lab-exec: venv
	$(PY) tools/lab/labctl.py exec $(HOST) -- "$$CMD"

lab-salt: venv
	$(PY) tools/lab/labctl.py salt -- "$$CMD"

# The lab's fault tests (make test runs them once each) with every failover fault and the
# network split FAULT_REPEAT times in one run; the totals of the VIP holder census (polls every
# 10 ms: how many saw two holders or none, and the longest) close pytest's summary and are in
# /var/lib/k8s-salt-lab/log/measured.json. Then the membership changes with five controllers
# (make test grows to four), and the encryption-key rotation followed by a restore of the
# snapshot taken before it (docs/encryption.md).
FAULT_REPEAT ?= 5
faults: venv deps
	K8S_FAULT_REPEAT=$(FAULT_REPEAT) $(PY) -m pytest -ra tests/lab/test_faults.py
	K8S_MEMBERSHIP_GROW=5 $(PY) -m pytest -ra tests/lab/test_membership.py
	K8S_ENCRYPTION_RESTORE=1 $(PY) -m pytest -ra tests/lab/test_encryption.py

# The upgrade test's variants that need a third release (make test runs 1.36.3 -> 1.37.2): a
# two-minor jump refused, the move_vip upgrade by pillar, then the command-line upgrade.
upgrades: venv deps
	K8S_UPGRADE_PATH=three $(PY) -m pytest -ra tests/lab/test_upgrade.py

# Every fault, the apiserver, the load run and the orchestration, TRIALS each
# (about 1.5 h at 10); bench-quick is CI's short run with its gate.
TRIALS ?= 10
bench: venv deps
	$(PY) bench/failover.py --trials $(TRIALS) --kill-trials $(TRIALS) --orch-trials $(TRIALS)

bench-quick: venv deps
	$(PY) bench/failover.py --quick --gate --out build/bench-quick

clean:
	rm -rf build .pytest_cache .ruff_cache
