# The two commands: `make up` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages stackbox needs on the host: the data plane's tools (iproute2, nftables,
# dnsmasq without its host-wide service), QEMU, and what the guest image is built from (busybox,
# dropbear; the kernel is downloaded, not installed); ssh for the Linux tests.
DEB_PACKAGES := python3-venv python3-dev gcc qemu-utils iproute2 nftables dnsmasq-base \
	busybox-static qemu-system-x86 dropbear-bin openssh-client
TEMPEST_SELECT ?= gate

.PHONY: install up test lint unit functional e2e linux tempest tempest-guests tempest-full bench clean deb

install: $(STAMP)

deb:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	fi

$(STAMP): pyproject.toml | deb
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

up: install
	$(BIN)/stackbox up $(ARGS)

lint: install
	$(BIN)/ruff check stackbox tests bench scripts
	$(BIN)/ruff format --check stackbox tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q tests/unit

# scripts/with-postgres and scripts/with-rabbitmq run the tests with a private PostgreSQL
# server and RabbitMQ broker of their own (the PostgreSQL variants of the concurrency tests,
# the AMQP bus), installing Debian's packages when root; without them those tests are
# skipped, saying so.
functional: install
	scripts/with-postgres scripts/with-rabbitmq $(BIN)/pytest -q -n 2 tests/functional

e2e: install
	$(BIN)/pytest -q tests/e2e

# Root only: real namespaces, bridges and dnsmasq (skipped, saying why, otherwise).
linux: install
	$(BIN)/pytest -q tests/linux

tempest: install
	scripts/tempest $(TEMPEST_SELECT)

tempest-full: install
	scripts/tempest full

# Root only: the interop tests that log in to a guest, on real QEMU guests.
tempest-guests: install
	scripts/tempest guests

test: install lint
	scripts/with-postgres scripts/with-rabbitmq $(BIN)/pytest -q -n 2 tests/unit tests/functional tests/e2e tests/linux
	scripts/tempest gate
	scripts/tempest guests

bench: install
	$(BIN)/python bench/identity.py
	$(BIN)/python bench/network.py
	$(BIN)/python bench/compute.py
	$(BIN)/python bench/image.py

clean:
	rm -rf $(VENV) .tempest .pytest_cache .ruff_cache .mypy_cache
