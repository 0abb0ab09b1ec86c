# One command to run the engine, one to run the tests. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-lowest lock lint bench clean

# The first install takes a few minutes: say so, and let pip show its progress. The exact
# versions of requirements.lock, then the project itself on top of them.
$(STAMP): pyproject.toml requirements.lock
	@echo ">>> creating $(VENV) and installing the engine (first run only; a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar off --upgrade pip
	$(BIN)/pip install --progress-bar off -r requirements.lock
	$(BIN)/pip install --progress-bar off --no-deps -e .
	touch $(STAMP)
	@echo ">>> installed into $(VENV)"

run: $(STAMP)
	@echo ">>> starting the engine on http://$(HOST):$(PORT) (make run PORT=... for another port)"
	$(BIN)/referral serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# Newest versions the pins allow, into requirements.lock (then run `make test`, commit).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra test --extra otel --universal \
	  --python-version 3.11 --upgrade --custom-compile-command 'make lock' -o requirements.lock

# The floors: the lowest version of every direct dependency, on a short set of tests
# (no multi-process or fuzzing runs; `referral serve` and an in-process Celery worker are in).
LOWEST := .venv-lowest
LOWEST_TESTS ?= tests/test_upstream_internals.py tests/test_tracing.py tests/definitions \
  tests/machine tests/cases/test_service.py tests/cases/test_data.py tests/cases/test_audit.py \
  tests/api/test_api.py tests/api/test_api_errors.py tests/cli tests/notify tests/timers
test-lowest: $(STAMP)
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(BIN)/uv pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct \
	  -e '.[test,otel]'
	$(LOWEST)/bin/pytest -x -q -p no:cacheprovider $(LOWEST_TESTS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks --quick

# Everything `make run` and the README's walkthrough leave behind.
clean:
	rm -rf $(VENV) referral.db referral.db-wal referral.db-shm notifications.jsonl

# CI's smoke run of the benchmarks: proves they still run, asserts no timings.
bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --quick --db sqlite
