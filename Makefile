# One command to run the engine, one to run the tests. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench clean

# The first install takes a few minutes: say so, and let pip show its progress.
$(STAMP): pyproject.toml
	@echo ">>> creating $(VENV) and installing the engine (first run only; a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar off --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[test]'
	touch $(STAMP)
	@echo ">>> installed into $(VENV)"

run: $(STAMP)
	@echo ">>> starting the engine on http://$(HOST):$(PORT) (make run PORT=... for another port)"
	$(BIN)/referral serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks --quick

# Everything `make run` and the README's walkthrough leave behind.
clean:
	rm -rf $(VENV) referral.db referral.db-wal referral.db-shm notifications.jsonl

# CI's smoke run of the benchmarks: proves they still run, asserts no timings.
bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --quick --db sqlite
