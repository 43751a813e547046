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
	@echo 'The approval path (needs TETHER_JWT_KEY): tether worker & then'
	@echo '  tether run research_report --input '"'"'{"topic": "durable background agents", "publish": true}'"'"
	@echo '  tether approvals list; tether approvals approve <id> --token "$$(tether token issue ed --role editor)"'

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

# Peers (DBOS, LangGraph, Temporal) and tether side by side; results in bench/results/.
# BENCH_ARGS: --quick, --reps N, --systems tether,floor, --workloads seq,...
bench: $(STAMP) services
	@$(BIN)/python -c "import dbos, langgraph, langgraph.checkpoint.sqlite, langgraph.checkpoint.postgres, temporalio, psutil" 2>/dev/null \
	  || $(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The SIGKILL storm on SQLite and PostgreSQL, then on a private PostgreSQL restarted mid-storm,
# then with workers frozen (SIGSTOP) past their lease and woken up again, then with 16 runs a
# worker so that kills land on commits several runs share (group commit).
chaos: $(STAMP) services
	$(BIN)/python -m tests.chaos.storm --runs 1000
	$(BIN)/python -m tests.chaos.storm --runs 1000 --restart-postgres
	$(BIN)/python -m tests.chaos.storm --runs 1000 --faults pause
	$(BIN)/python -m tests.chaos.storm --runs 1000 --concurrency 16

clean:
	rm -rf $(VENV) .tether
