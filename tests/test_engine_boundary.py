"""The engine runs without Django: in a work horse, a Dask worker or a notebook. Checked in a fresh process,
since this test process has Django loaded already."""

import json
import subprocess
import sys

from tests.helpers import ROOT

# What the engine may import of this project: itself, and the Django-free spec, catalog and CSV reader it
# is built on (which move with it into its own package, issue 26).
ALLOWED = {"runs", "experiments", "experiments.catalog", "experiments.spec", "experiments.spec_checks",
           "experiments.spec_models", "experiments.files"}


def loaded_after(code):
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin"}, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_it_loads_no_django_module():
    modules = loaded_after("import runs.engine, runs.engine.parallel")
    web = [m for m in modules if m.split(".")[0] in ("django", "rest_framework", "channels", "daphne", "rq",
                                                      "django_rq", "redis")]
    assert web == []


def test_it_imports_nothing_of_the_apps():
    modules = loaded_after("import runs.engine, runs.engine.parallel")
    ours = {m for m in modules if m.split(".")[0] in ("runs", "experiments", "accounts", "config")}
    assert {m for m in ours if not m.startswith("runs.engine")} <= ALLOWED, sorted(ours)
