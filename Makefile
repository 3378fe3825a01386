# qsampling — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SCALE ?= small

.PHONY: install run test lint typecheck pytest test-db openapi bench fuzz audit-deps clean-data stop-db

$(STAMP): pyproject.toml setup.py src/qsampling/core/_rankhash.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: migrate, load the demo province into an empty database, serve on 127.0.0.1:8000
run: install
	$(BIN)/qsampling db upgrade
	@if $(BIN)/qsampling db is-empty; then $(BIN)/qsampling demo; fi
	$(BIN)/qsampling serve

## test: ruff, mypy and pytest (embedded PostgreSQL unless QSAMPLING_TEST_DATABASE_URL is set)
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check src tests alembic bench scripts

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

## test-db: the database tests only, e.g. against another PostgreSQL server
test-db: install
	$(BIN)/pytest

openapi: install
	$(BIN)/qsampling openapi --out api/openapi.json

bench: install
	$(BIN)/python bench/run_all.py --scale $(SCALE)

## audit-deps: known vulnerabilities in the installed dependencies (pip-audit; needs the network)
audit-deps: install
	$(BIN)/python scripts/audit_deps.py

fuzz: install
	$(BIN)/pytest -m slow tests/hostile -q

stop-db: install
	$(BIN)/qsampling db stop
