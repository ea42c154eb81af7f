# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean prometheus schema wheel-check functions-deps pg-cron

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
# Installing it needs root and apt; without them, say so instead of failing obscurely.
prometheus:
	@command -v prometheus >/dev/null || { \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "make test needs Prometheus (Debian's prometheus package) for the metrics tests, and installing" >&2; \
	    echo "it needs root and apt-get: run 'sudo apt-get install prometheus' once, or put a prometheus" >&2; \
	    echo "binary on PATH, then run make test again." >&2; exit 1; \
	  fi; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; }

# The edge functions' npm packages (postgres, jose), pinned by functions/deno.lock, fetched
# into Deno's cache from the npm registry (the deno binary comes from PyPI, a dev extra).
functions-deps: $(STAMP)
	cd functions && ../$(BIN)/deno install --entrypoint main.ts tests/*.test.ts

# `driftloop db schedule` is tested against a real pg_cron (Debian's PostgreSQL 15 package).
pg-cron:
	test -f /usr/share/postgresql/15/extension/pg_cron.control || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15-cron)

# The tests run with TMPDIR in a fresh folder; on any exit (pass, fail, Ctrl+C) every embedded
# PostgreSQL whose data directory is under it is stopped and the folder removed.
test: $(STAMP) prometheus functions-deps pg-cron
	$(BIN)/ruff check worker tests bench
	$(BIN)/mypy worker/driftloop
	@root=$$(mktemp -d /tmp/dl-test.XXXXXX); \
	trap '$(BIN)/python -m tests.support.servers stop "'"$$root"'"; rm -rf "'"$$root"'"' EXIT INT TERM; \
	TMPDIR=$$root $(BIN)/python -m pytest -q -n 2
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
	for b in ingest evaluate detection detection_real reaction scrape edge; do $(BIN)/python -m bench.$$b || exit 1; done

clean:
	rm -rf $(VENV) driftloop-report .pytest_cache
