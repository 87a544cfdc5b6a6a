# Everything a fresh machine needs: `make preview` (the main job) and `make test` (the whole suite) set up on their own.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= dev
# uv, pinned here and installed with pip into its own venv: the one tool installed before the lock is read.
UV_VERSION := 0.13.8
TOOLS  := .tools
export UV := $(abspath $(TOOLS))/bin/uv
# Use the machine's Python (3.11+); never download an interpreter.
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup preview preview-all lint typecheck test schema docs cost-table bench layers spark-env lock upgrade clean

setup: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary=:all: uv==$(UV_VERSION)

## Installs exactly uv.lock (the project, the jobs and policy groups, the dev tools); never resolves.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python $(PYTHON)
	touch $(STAMP)

## The offline preview of a stack (default dev): the real program under Pulumi's mock monitor.
preview: setup
	$(BIN)/python -m etlctl preview --offline --stack $(STACK)

preview-all: setup
	for file in Pulumi.*.yaml; do stack=$${file#Pulumi.}; $(BIN)/python -m etlctl preview --offline --stack $${stack%.yaml} | head -n 1; done

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy components etlctl etl_jobs policy

## Lint, type-check, then every test (unit, jobs, integration, containers, tooling), one worker per core: the Spark,
## PostgreSQL and Docker suites dominate, and each test file stays on one worker with its session's servers.
test: lint typecheck
	$(BIN)/python -m pytest -n auto --dist loadfile

## The Lambda layers (the single-node engine; psycopg and the RDS CA bundle for the database runner, which downloads
## the bundle from AWS and fails without the network); `pulumi up` needs them, previews do not.
layers: setup
	$(BIN)/python -m components.packaging build-layer --architecture arm64
	$(BIN)/python -m components.packaging build-layer --architecture x86_64
	$(BIN)/python -m components.packaging build-postgres-layer --architecture arm64 --architecture x86_64

## The Spark job's Python environment for EMR (CPython 3.11 and the jobs group, arm64); `pulumi up` needs it with emr.
spark-env: setup
	$(BIN)/python -m components.packaging build-spark-env --architecture arm64

schema: setup
	$(BIN)/python -m etlctl schema --write

## Redraw every diagram in docs/architectures/*.md from the program (tests/tooling/test_docs.py fails when one is stale).
docs: setup
	$(BIN)/python -m etlctl docs --write

## The README's cost table of every stack (`etlctl cost --format markdown`); tests/tooling/test_cost.py fails while stale.
cost-table: setup
	$(BIN)/python -c "from etlctl.cost import update_readme; update_readme()"

## The 1M-row first load against the Polars CSV->Parquet floor, the incremental load, the stream path (figures: benchmarks/README.md).
bench: setup
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/incremental.py
	$(BIN)/python benchmarks/streaming.py

## After editing pyproject.toml: resolve uv.lock again (keeping every pin that still fits), install it, re-export it.
lock: $(UV)
	$(UV) lock $(LOCK_FLAGS)
	$(UV) sync --locked --python $(PYTHON)
	touch $(STAMP)
	$(BIN)/python -m etlctl.lockfiles --write

## The same, refreshing every pin to the newest release the ranges in pyproject.toml allow.
upgrade: LOCK_FLAGS := --upgrade
upgrade: lock

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
