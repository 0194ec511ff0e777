# The two commands of the README: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STATE := .state
PY_STAMP := $(VENV)/.installed
APT_STAMP := $(STATE)/apt.installed
APT_PACKAGES := podman runc mmdebstrap nftables iproute2 uidmap openssh-client
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: all venv apt lint typecheck test unit labtests demo bench clean

all: test

$(PY_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==26.3
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(PY_STAMP)

$(APT_STAMP): Makefile
	@mkdir -p $(STATE)
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	touch $@

apt: $(APT_STAMP)

# lint-imports: the layers contract in pyproject.toml ([tool.importlinter]): imports flow one way.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy $(wildcard estate stacks policies tests bench)
	$(BIN)/lint-imports --no-cache

typecheck: lint

# Unit tests run on both cores; tests marked `lab` (Podman hosts, Molecule) share one lab and run
# one at a time after them. pytest exits 5 when a marker selects nothing: that is not a failure.
unit: venv
	$(BIN)/pytest -q -m "not lab" -n 2 --durations=20

labtests: venv apt
	$(BIN)/pytest -q -m lab -p no:randomly --durations=0 || [ $$? -eq 5 ]

test: venv apt lint unit labtests

# The main job on the example councils: validate, plan, reachability and preflight of the plan, lab up, configure,
# check, report, roadmap.
# `estate check` exits 1 when a mandatory rule fails (Waltham Forest's legacy estate does): the demo
# shows that and goes on. The lab stays up for exploring; `estate lab down` removes it.
REPORTS := reports
demo: venv apt
	$(BIN)/estate validate
	$(BIN)/estate councils
	$(BIN)/estate ipam newham
	$(BIN)/estate plan --all --json --output $(REPORTS)/plan.json
	$(BIN)/estate reach --all
	$(BIN)/estate preflight --json --output $(REPORTS)/preflight.json
	$(BIN)/estate lab up
	$(BIN)/estate lab probe
	$(BIN)/estate configure
	$(BIN)/estate configure --quiet
	$(BIN)/estate check --plan --hosts --history $(REPORTS)/history.jsonl \
	  --format html --output $(REPORTS)/compliance.html || [ $$? -eq 1 ]
	$(BIN)/estate check --plan --hosts --format sarif --output $(REPORTS)/compliance.sarif || [ $$? -eq 1 ]
	$(BIN)/estate check --hosts || [ $$? -eq 1 ]
	$(BIN)/estate roadmap
	@echo "reports in $(REPORTS)/: compliance.html (with the roadmap), compliance.sarif, plan.json, preflight.json"

bench: venv apt
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(STATE) reports
