# One command to run the engine, one to run the tests. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-lowest lock lint bench clean

# The exact versions of requirements.lock, then the project itself on top of them.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/referral serve

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

clean:
	rm -rf $(VENV) referral.db referral.db-wal referral.db-shm

# CI's smoke run of the benchmarks: proves they still run, asserts no timings.
bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --quick --db sqlite
