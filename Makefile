# walguard: `make demo` audits the local lab; `make test` runs every test. Both install what they
# need (apt packages, a virtualenv) and must run as root (the lab uses containers and mounts).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := debootstrap systemd-container iproute2 nftables openssh-client e2fsprogs \
                util-linux netcat-openbsd shellcheck qemu-system-x86 openssl chromium faketime
# Debian's node_exporter, which a lab test runs (on loopback) to scrape --metrics-file's output:
# installed without its recommends, and without starting its service (a policy-rc.d that says
# no, for that install only, unless the machine has one of its own).
NODE_EXPORTER := prometheus-node-exporter
STAMP_APT := /var/cache/walguard/apt-$(shell echo $(APT_PACKAGES) $(NODE_EXPORTER) | sha256sum | cut -c1-12).stamp

.PHONY: deps venv lab-up lab-down demo test test-unit lint unit bench bench-report lock

deps: $(STAMP_APT) venv

$(STAMP_APT):
	@command -v apt-get >/dev/null || { echo "walguard: needs a Debian-like machine with apt-get"; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null
	@own=; if [ ! -e /usr/sbin/policy-rc.d ]; then own=1; \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(NODE_EXPORTER) >/dev/null; rc=$$?; \
	  if [ -n "$$own" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc
	mkdir -p $(dir $@) && touch $@

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

lab-up: deps
	$(VENV)/bin/walguard lab up

lab-down: venv
	$(VENV)/bin/walguard lab down

# The demo signs its run with a lab CA made once, outside the work tree (the key never enters
# it): $(DEMO_PKI)/ca.pem is what an auditor would be given to verify with.
LAB_STATE ?= $(or $(WALGUARD_LAB_STATE),/var/lib/walguard/lab)
DEMO_PKI ?= $(LAB_STATE)/signing
DEMO_INVENTORY ?= inventories/lab.yml

# The signer is a document-signing certificate (walguard refuses any other kind to sign). One
# issued before that was required (no documentSigning usage) is issued anew under the same CA,
# so that the demo's earlier runs still verify against ca.pem.
ifneq ($(wildcard $(DEMO_PKI)/signer.pem),)
ifeq ($(shell openssl x509 -in $(DEMO_PKI)/signer.pem -noout -ext extendedKeyUsage 2>/dev/null | grep -c 1.3.6.1.5.5.7.3.36),0)
.PHONY: $(DEMO_PKI)/signer.pem
endif
endif
$(DEMO_PKI)/signer.pem:
	@command -v openssl >/dev/null || { echo "walguard: needs openssl (make deps)"; exit 1; }
	install -d -m 700 $(DEMO_PKI)
	test -f $(DEMO_PKI)/ca.pem || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	  -keyout $(DEMO_PKI)/ca.key -out $(DEMO_PKI)/ca.pem -subj "/O=walguard lab/CN=walguard lab CA" \
	  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	  -keyout $(DEMO_PKI)/signer.key -out $(DEMO_PKI)/signer.csr \
	  -subj "/O=walguard lab/CN=walguard lab report signer" 2>/dev/null
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=1.3.6.1.5.5.7.3.36\n' \
	  > $(DEMO_PKI)/signer.ext
	openssl x509 -req -in $(DEMO_PKI)/signer.csr -CA $(DEMO_PKI)/ca.pem -CAkey $(DEMO_PKI)/ca.key \
	  -CAcreateserial -days 825 -extfile $(DEMO_PKI)/signer.ext -out $@ 2>/dev/null
	chmod 600 $(DEMO_PKI)/*.key

# The audit's exit status is the gate's (README); the demo shows it, the signed report and how
# to verify it, and fails only when the audit could not run at all.
demo: lab-up $(DEMO_PKI)/signer.pem
	@$(VENV)/bin/walguard audit --inventory $(DEMO_INVENTORY) \
	  --sign-key $(DEMO_PKI)/signer.key --sign-cert $(DEMO_PKI)/signer.pem; rc=$$?; \
	  echo "walguard: audit exit status $$rc (0 gate passed, 1 failed controls, 6 errors, 7 not signed; see README)"; \
	  if [ $$rc -ge 2 ] && [ $$rc -ne 6 ]; then exit $$rc; fi; \
	  run=$$(ls -1dt reports/*/ | head -n 1); run=$${run%/}; \
	  echo "walguard: signed run $$run (open $$run/report.html). Verify it with:"; \
	  echo "  $(VENV)/bin/walguard verify $$run --ca $(DEMO_PKI)/ca.pem"; \
	  echo "or with plain OpenSSL and coreutils:"; \
	  echo "  cd $$run && openssl cms -verify -binary -inform DER -in manifest.p7s -content manifest \\"; \
	  echo "      -CAfile $(DEMO_PKI)/ca.pem -no-CApath -no-CAstore -purpose any -out /dev/null && sha256sum -c --strict --quiet manifest"; \
	  echo "  (README, Signing and verifying: the whole plain check, signer, added files and timestamp too)"; \
	  $(VENV)/bin/walguard verify $$run --ca $(DEMO_PKI)/ca.pem

# Regenerates the hash-pinned locks (no index or find-links lines) from pyproject.toml:
# requirements.txt is what an installed walguard needs at run time (a jump host: `pip install
# --require-hashes -r requirements.txt`, then the wheel with --no-deps); requirements-dev.txt
# adds the dev, bench and ansible extras (`make venv`). Pins already in a lock are kept.
LOCK_FLAGS := -q --generate-hashes --no-emit-index-url --no-emit-trusted-host \
              --no-emit-find-links --allow-unsafe --strip-extras
lock:
	python3 -m venv /tmp/walguard-lock && /tmp/walguard-lock/bin/pip install -q pip-tools
	/tmp/walguard-lock/bin/pip-compile $(LOCK_FLAGS) -o requirements.txt pyproject.toml
	/tmp/walguard-lock/bin/pip-compile $(LOCK_FLAGS) --extra dev --extra bench --extra ansible \
	  -o requirements-dev.txt pyproject.toml
	sed -i '1,/^[^#]/{/^#/d}' requirements.txt requirements-dev.txt
	sed -i '1i # Hash-pinned run-time dependencies of an installed walguard, for Python 3.11.\n# Generated by `make lock` from pyproject.toml; install with `pip install --require-hashes -r`.' requirements.txt
	sed -i '1i # Hash-pinned dependencies of walguard with the dev, bench and ansible extras, for Python 3.11.\n# Generated by `make lock` from pyproject.toml; `make venv` installs it.' requirements-dev.txt

# The lab hosts three ways (walguard, testinfra's ssh and paramiko backends), then the controller's
# CPU for a full audit of 300 names against one bare ssh per host (bench/README.md); root, lab up.
# BENCH_CPU_ARGS: e.g. --names 100 --repeat 1 --lock FILE --profile FILE.
bench: lab-up
	$(PY) bench/compare.py
	$(PY) bench/controller_cpu.py $(BENCH_CPU_ARGS)

# The report at 1,000 hosts x 40 controls (synthetic), beside stock pytest-html; no lab needed.
bench-report: deps
	$(PY) bench/report.py

# An estate of 100, 300 and 1,000 names over the lab hosts, audited by the fan-out, beside the old
# way (-n 8 xdist workers); root, lab up. BENCH_SCALE_ARGS: e.g. --old-tree CHECKOUT, --lock FILE.
.PHONY: bench-scale
bench-scale: lab-up
	$(PY) bench/scale.py $(BENCH_SCALE_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	shellcheck lab/image/setup.sh lab/scenarios/*.sh tests/lab/observe.sh .ci/run \
	  lab/selinux/setup.sh lab/selinux/files/usr/local/sbin/walguard-fw-cfg-keys \
	  lab/image/files/usr/local/lib/walguard-lab/audit-host.sh
	shellcheck -s sh walguard/facts/collector/collect.sh
	shellcheck -s bash walguard/drill/drill.sh walguard/remediate/gates.sh

# The tests that need no lab (no root, no containers): every test not marked `lab`.
test-unit: venv
	@$(PY) -m pytest tests -m "not lab" -n 2; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "walguard: no tests ran" >&2; exit 1; fi; exit $$rc

unit: test-unit

# Every test: lint, unit tests and the lab integration tests (which bring the lab up themselves).
# Two xdist workers: the lab tests are one group (tests/conftest.py), run in order by one worker,
# while the other runs the unit tests beside them. The slowest tests are listed at the end.
# pytest's exit code 5 (no test ran) is a failure, never a green run.
test: deps lint
	@$(PY) -m pytest tests -n 2 --dist loadgroup --durations=25; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "walguard: no tests ran" >&2; exit 1; fi; exit $$rc
