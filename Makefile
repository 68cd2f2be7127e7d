# kubelabel — developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data
PYTEST_ARGS ?= -n 4 --dist loadfile

.PHONY: help run test lint crds venv deps test-deps clean

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

lint: test-deps ## ruff and the import-layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint ## install test deps, lint, and run the whole suite (SQLite and PostgreSQL)
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(BIN)/pytest -q -rs $(PYTEST_ARGS)

crds: deps ## regenerate crds/ from the operator's models, and the chart's copies of them
	$(BIN)/kubelabel crds --out crds/
	$(BIN)/python scripts/sync_chart_crds.py

clean: ## remove the venv, caches and local data
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules $(DATA_DIR)
