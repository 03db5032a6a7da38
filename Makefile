# walguard: `make demo` audits the local lab; `make test` runs every test. Both install what they
# need (apt packages, a virtualenv) and must run as root (the lab uses containers and mounts).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := debootstrap systemd-container iproute2 nftables openssh-client e2fsprogs \
                util-linux netcat-openbsd shellcheck qemu-system-x86
STAMP_APT := /var/cache/walguard/apt-$(shell echo $(APT_PACKAGES) | sha256sum | cut -c1-12).stamp

.PHONY: deps venv lab-up lab-down demo test lint unit bench

deps: $(STAMP_APT) venv

$(STAMP_APT):
	@command -v apt-get >/dev/null || { echo "walguard: needs a Debian-like machine with apt-get"; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null
	mkdir -p $(dir $@) && touch $@

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

lab-up: deps
	$(VENV)/bin/walguard lab up

lab-down: venv
	$(VENV)/bin/walguard lab down

# The audit's exit status is the gate's (README); the demo shows it and the report, and fails
# only when the audit could not run at all.
demo: lab-up
	@$(VENV)/bin/walguard audit --inventory inventories/lab.yml; rc=$$?; \
	  echo "walguard: audit exit status $$rc (0 gate passed, 1 failed controls, 6 errors; see README)"; \
	  if [ $$rc -ge 2 ] && [ $$rc -ne 6 ]; then exit $$rc; fi

bench: lab-up
	$(PY) bench/compare.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	shellcheck lab/image/setup.sh lab/scenarios/*.sh tests/lab/observe.sh .ci/run \
	  lab/selinux/setup.sh lab/selinux/files/usr/local/sbin/walguard-fw-cfg-keys \
	  lab/image/files/usr/local/lib/walguard-lab/audit-host.sh

unit: venv
	$(PY) -m pytest tests/unit

# Every test: lint, unit tests and the lab integration tests (which bring the lab up themselves).
# pytest's exit code 5 (no test ran) is a failure, never a green run.
test: deps lint
	@$(PY) -m pytest tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "walguard: no tests ran" >&2; exit 1; fi; exit $$rc
