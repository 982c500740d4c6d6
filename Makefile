# Two commands matter: `make demo` and `make test`. Both install first (idempotent: the
# virtualenv is rebuilt only when pyproject.toml or requirements-nodeps.txt change).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# The model and dataset hubs are unreachable here: never try them at run time.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install demo docs test dev play lint benchmarks browser postgres clean-lake

$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch exactly 2.13.0: the local CPU wheel (any other spec pulls a multi-GB CUDA build).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

install: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# Debian's chromium for the UI test (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install chromium' for the UI test"; fi; }

# Debian's PostgreSQL server for the deploy/ storage test (it starts a throwaway server itself).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "postgresql missing: run 'sudo apt-get install postgresql' for the PostgreSQL storage test"; fi; }

demo: install
	$(BIN)/genai-assets materialize
	$(BIN)/genai-assets report-docs

# Rewrite the measured tables in README.md and docs/*.md (generated blocks) from the lake's reports.
docs: install
	$(BIN)/genai-assets report-docs

test: install browser postgres
	$(BIN)/python -m pytest -q genai_assets_tests

dev: install
	$(BIN)/dagster dev -w workspace.yaml

# The Gradio playground over the lake's models (http://127.0.0.1:7860): generate, compare, rate.
play: install
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/genai-assets playground

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

benchmarks: install
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean-lake:
	rm -rf data_lake/*/ data_lake/*.parquet
