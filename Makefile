# `make build` and `make test` set everything up first (scripts/setup.sh installs
# only what is missing), so each is the single command a fresh machine needs.
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD_ARGS ?= --alpha 0.25 --budget 6MB --target cortex-m7
PYTEST_ARGS ?=
# pytest-xdist workers: a file runs in one worker; tests/conftest.py makes shared fixtures once
JOBS ?= 2

.PHONY: setup build test lint bench clean

setup:
	VENV=$(VENV) bash scripts/setup.sh

build: setup
	$(VENV)/bin/mncompile build $(BUILD_ARGS)

test: setup
	$(PY) -m pytest -ra --durations=30 -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check mncompile tests bench

bench: setup
	$(PY) bench/train_digits.py

clean:
	rm -rf mncompile-build build dist .pytest_cache
