# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench chaos services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The main job: the research-and-report agent end to end on embedded SQLite, offline.
demo: $(STAMP)
	$(BIN)/tether run research_report --input '{"topic": "durable background agents"}' --wait

services:
	scripts/services.sh

test: $(STAMP) services lint
	$(BIN)/pytest -q

# House rules: INV-1 and the layering (import-linter), ruff, mypy --strict on src/.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests workflows bench
	$(BIN)/ruff format --check src tests workflows bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench

chaos: $(STAMP) services
	$(BIN)/python -m tests.chaos.storm --runs 1000

clean:
	rm -rf $(VENV) .tether
