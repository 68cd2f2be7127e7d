# kubelabel — developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data
PYTEST_ARGS ?= -n 4 --dist loadfile

.PHONY: help run test fuzz lint typecheck crds venv deps test-deps clean services services-down cluster cluster-build cluster-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

deps: $(VENV)/.installed ## install the package into .venv

test-deps: $(VENV)/.installed-dev ## install what the tests need (Python dev extra, npm emulators)
	@bash scripts/install-test-deps.sh

run: deps ## start the API server on $(HOST):$(PORT) with SQLite and a sample project
	@$(BIN)/python scripts/run_dev.py --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: test-deps typecheck ## ruff, the import-layer contracts and the type check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: test-deps ## mypy over api_server, the operator, the model server and the CLI (strict where pyproject.toml says; cached in .mypy_cache)
	$(BIN)/mypy

test: lint services cluster-build ## install test deps, lint, and run the whole suite (SQLite, PostgreSQL, a real cluster)
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(BIN)/pytest -q -rs $(PYTEST_ARGS) --ignore=tests/e2e
	@# The real-cluster tier shares one control plane (cluster-wide CRDs, webhooks): one process.
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(BIN)/pytest -q -rs -p no:xdist tests/e2e

FUZZ_EXAMPLES ?= 100
fuzz: test-deps services ## schemathesis over the whole API, SQLite and PostgreSQL, more examples and every check
	KUBELABEL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) KUBELABEL_FUZZ_ALL_CHECKS=1 $(BIN)/pytest -q -rs -s -p no:xdist \
		--timeout 0 tests/integration/api/test_schemathesis.py

services: ## start PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) unless they already run
	@bash scripts/services.sh up

services-down: ## stop the PostgreSQL and Redis that `make services` started
	@bash scripts/services.sh down

cluster-build: deps ## build the real control plane's programs from Go modules (cached; skipped without Go)
	@if command -v go >/dev/null 2>&1; then $(BIN)/python tests/cluster/cluster.py build >/dev/null; \
	else echo "cluster-build: Go not found; the real-cluster tests (tests/e2e) will skip"; fi

cluster: deps ## start a real control plane on 127.0.0.1 (builds it first); prints the admin kubeconfig's path
	@$(BIN)/python tests/cluster/cluster.py up

cluster-down: ## stop the control plane `make cluster` started and remove its state
	@$(BIN)/python tests/cluster/cluster.py down

crds: deps ## regenerate crds/ from the operator's models, the chart's and manifests/base's copies, and manifests/release
	$(BIN)/kubelabel crds --out crds/
	cp crds/*.kubelabel.io.yaml manifests/base/crds/
	$(BIN)/python scripts/sync_chart_crds.py
	$(BIN)/python scripts/release_manifest.py

clean: ## remove the venv, caches and local data
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache node_modules $(DATA_DIR)
