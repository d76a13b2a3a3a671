#!/usr/bin/env bash
# What `make test` runs inside its private Redis. With no arguments, the whole suite in two parts:
#   1. the unit and integration tiers on two pytest-xdist workers (each with a database and a Redis database of
#      its own): they start no processes, so two workers halve their wall time on two cores;
#   2. the system and browser tiers in one process: their tests start daphne, workers, supervisord and
#      Chromium, which already fill the cores, and some time those processes' limits (docs/testing.md).
# The second part's table of tiers includes the first's (RUNWATCH_TIERS_CARRY). With arguments, one pytest.
# Exits with the first failing part's pytest code, after running both.
set -u
PY=${PY:-.venv/bin/python}
if [ "$#" -gt 0 ]; then
  exec "$PY" -m pytest "$@"
fi
export RUNWATCH_TIERS_CARRY=.runwatch/test-tiers.json
rm -f "$RUNWATCH_TIERS_CARRY"
"$PY" -m pytest -m "unit or integration" -n 2
first=$?
"$PY" -m pytest -m "system or browser"
second=$?
if [ "$first" -ne 0 ]; then exit "$first"; fi
exit "$second"
