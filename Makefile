# healthscore — `make demo` and `make test` are all a new user needs; both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
UV_VERSION := 0.13.9
LOCK   := requirements/requirements.lock
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install browser demo test test-fast bench lint format lock docs clean

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

# Debian's headless Chromium for the dashboard tests: installed when missing and we may (root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the dashboard tests"; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else echo "chromium not found: the dashboard browser tests will skip (apt-get install chromium)"; fi; }

test: $(STAMP) browser  ## run the test suite (Redis/PostgreSQL/Chromium tests must run when CI=true)
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
