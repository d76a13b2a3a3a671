"""The engine runs without Django: in a work horse, a Dask worker or a notebook. Checked in a fresh process,
since this test process has Django loaded already."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.system  # its tests start processes (tests/tiers.py)

# Every module of the engine, so that a web import hidden in any of them shows.
EVERY_MODULE = "import pkgutil, importlib, engine\n" \
    "for m in pkgutil.walk_packages(engine.__path__, 'engine.'): importlib.import_module(m.name)"

def loaded_after(code):
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin"}, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_it_loads_no_django_module():
    modules = loaded_after(EVERY_MODULE)
    web = [m for m in modules if m.split(".")[0] in ("django", "rest_framework", "channels", "daphne", "rq",
                                                      "django_rq", "redis")]
    assert web == []


def test_it_imports_nothing_of_the_apps():
    modules = loaded_after(EVERY_MODULE)
    apps = {m for m in modules if m.split(".")[0] in ("runs", "experiments", "accounts", "config", "tests")}
    assert apps == set(), sorted(apps)


def test_it_keeps_the_import_contracts():
    # pyproject.toml [tool.importlinter]: the static check, which sees imports inside functions too.
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
