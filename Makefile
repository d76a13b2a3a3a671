# Runwatch: the two commands.
#   make run    install, migrate, seed the demo, then serve http://127.0.0.1:$(PORT) with Redis, worker(s),
#               monitor and daphne. Ctrl-C stops them all.
#   make test   install with the test extra, make sure Chromium is there, run the whole pytest suite.
# Both need only Python 3.11+ and make; both reuse what an earlier run set up.

PYTHON ?= python3
PORT ?= 8000
WORKERS ?= 1
RUNWATCH_REDIS_PORT ?= 6389
RUNWATCH_TEST_REDIS_PORT ?= 6390
ARGS ?=

# Found before PATH gains the venv below: the venv is made from this Python, not from itself.
BASE_PYTHON := $(shell command -v $(PYTHON) 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
# The Procfile's `python` and `daphne` are the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PORT WORKERS RUNWATCH_REDIS_PORT

.PHONY: help setup run test bench python

python:
	@test -n "$(BASE_PYTHON)" || { echo "make: '$(PYTHON)' was not found. Runwatch needs Python 3.11 or newer."; \
	  echo "  How to fix: install it, or name yours: make run PYTHON=python3.12"; exit 1; } >&2

help:
	@sed -n '2,5p' Makefile | sed 's/^# *//'

setup: python
	@$(BASE_PYTHON) scripts/bootstrap.py run

# Settings demand a SECRET_KEY once DEBUG is off; the local commands default to DEBUG=1 instead.
run: export DEBUG ?= 1
run: python
	@$(BASE_PYTHON) scripts/bootstrap.py run
	@mkdir -p .runwatch
	@$(PY) manage.py migrate --noinput || { \
	  echo "make run: could not migrate the database (messages above)."; \
	  echo "  How to fix: if DATABASE_URL is set, check that server is up and the database exists;"; \
	  echo "  unset it to use SQLite under .runwatch/. A broken local database: move .runwatch/db.sqlite3 away."; \
	  exit 1; } >&2
	@$(PY) manage.py seed_demo
	@$(PY) manage.py collectstatic --noinput --verbosity 0
	@scripts/serve.sh

test: export DEBUG ?= 1
test: python
	@$(BASE_PYTHON) scripts/bootstrap.py test
	@scripts/ensure_chromium.sh
	@mkdir -p .runwatch/staticfiles  # whitenoise warns on every request without it
	@$(PY) scripts/private_redis.py --port $(RUNWATCH_TEST_REDIS_PORT) --port-var RUNWATCH_TEST_REDIS_PORT \
	    --dir .runwatch/redis-test --ephemeral -- $(PY) -m pytest $(ARGS); \
	  rc=$$?; echo $$rc > .runwatch/pytest-exit-code; \
	  if [ $$rc -ne 0 ]; then echo "make test: pytest exited with code $$rc"; fi; \
	  exit $$rc

# The reporting-overhead benchmark (bench/overhead.py): instrumented engine vs plain scikit-learn, as a ratio.
bench: export DEBUG ?= 1
bench: python
	@$(BASE_PYTHON) scripts/bootstrap.py run
	@mkdir -p .runwatch
	@$(PY) scripts/private_redis.py --port 6391 --dir .runwatch/redis-bench --ephemeral -- $(PY) bench/overhead.py $(ARGS)
