# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean prometheus schema wheel-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/driftloop demo

# The worker's metrics test scrapes /metrics with a real Prometheus server (Debian's package).
prometheus:
	command -v prometheus >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus)

test: $(STAMP) prometheus
	$(BIN)/ruff check worker tests bench
	$(BIN)/python -m pytest -q
	$(MAKE) wheel-check

# The built wheel, installed in a clean venv, run from an empty folder (not the checkout).
wheel-check: $(STAMP)
	.ci/wheel-check $(BIN)/python

# db/schema.sql is generated from db/migrations and db/repeatable; a test fails when it is stale.
schema: $(STAMP)
	$(BIN)/python -c 'from driftloop.migrations import build_schema_script as b; open("db/schema.sql", "w").write(b())'

lint: $(STAMP)
	$(BIN)/ruff check worker tests bench
	$(BIN)/mypy worker/driftloop

bench: $(STAMP)
	test -n "$$(apt-cache dumpavail | head -c 1)" || apt-get update  # bench.detection_real's texts
	for b in ingest evaluate detection detection_real reaction scrape; do $(BIN)/python -m bench.$$b || exit 1; done

clean:
	rm -rf $(VENV) driftloop-report .pytest_cache
