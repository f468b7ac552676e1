# The front door. `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install services services-stop services-status migrate run test unit integration lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,rocksdb]'
	touch $(STAMP)

install: $(STAMP)

services:
	bash scripts/services.sh start

services-stop:
	bash scripts/services.sh stop

services-status:
	bash scripts/services.sh status

migrate: install services
	$(BIN)/pipeline migrate
	$(BIN)/pipeline topics create

run: migrate
	bash scripts/run.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: install
	$(BIN)/pytest -q -m "not integration"

integration: install services
	$(BIN)/pytest -q -m integration

test: install services lint
	$(BIN)/pytest -q

bench: migrate
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
