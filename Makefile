# Everything a fresh machine needs: `make preview` (the main job) and `make test` (the whole suite) set up on their own.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= dev

.PHONY: setup preview preview-all lint typecheck test schema bench layers clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The offline preview of a stack (default dev): the real program under Pulumi's mock monitor.
preview: setup
	$(BIN)/python -m etlctl preview --offline --stack $(STACK)

preview-all: setup
	for stack in dev staging prod; do $(BIN)/python -m etlctl preview --offline --stack $$stack | head -n 1; done

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy components etlctl etl_jobs policy

## Lint, type-check, then every test (unit, jobs, integration, containers, tooling).
test: lint typecheck
	$(BIN)/python -m pytest

## The Lambda layer (the single-node engine for the Lambda platform); `pulumi up` needs it, previews do not.
layers: setup
	$(BIN)/python -m components.packaging build-layer --architecture arm64
	$(BIN)/python -m components.packaging build-layer --architecture x86_64

schema: setup
	$(BIN)/python -m etlctl schema --write

bench: setup
	$(BIN)/python benchmarks/jobs.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
