# healthscore — `make demo` and `make test` are all a new user needs; both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
UV_VERSION := 0.13.9
LOCK   := requirements/requirements.lock
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast bench lint format lock docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The virtualenv is rebuilt from the lock file whenever the lock or the project metadata changes.
$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --python $(BIN)/python $(LOCK)
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	@touch $@

install: $(STAMP)  ## create .venv from the lock file (every package pinned)

demo: $(STAMP)  ## run the whole product on the embedded default (state in ./.healthscore)
	$(BIN)/healthscore demo

test: $(STAMP)  ## run the test suite (Redis/PostgreSQL tests must pass when CI=true)
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)  ## tests without the slow ones
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

bench: $(STAMP)  ## run the benchmarks in bench/ and print ratios against their baselines
	$(BIN)/python bench/run.py

lint: $(STAMP)  ## ruff and the import-direction contracts
	$(BIN)/ruff check .
	$(BIN)/lint-imports

format: $(STAMP)  ## format and sort imports
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

lock: $(STAMP)  ## re-resolve requirements/requirements.in into the lock file
	$(UV) pip compile requirements/requirements.in -o $(LOCK) --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu

docs: $(STAMP)  ## regenerate docs/ from features/contract.py and features/catalog.py
	$(BIN)/python -m features.contract > docs/data-contract.md
	$(BIN)/python -m features.catalog > docs/features.md

clean:  ## remove the workspace and caches (keeps .venv)
	rm -rf .healthscore .pytest_cache .ruff_cache
