"""Web processes start without scikit-learn, pandas, numpy or scipy: only the work horse fits models.

They cost 1-2 s of every django.setup(), so of every daphne start, management command and test process
(docs/decisions/0013-light-web-setup.md). Checked in a fresh process, since this test process has them loaded
already; daphne imports the settings, the URLconf and config/asgi.py, so each stage is checked."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.system  # its tests start processes (tests/tiers.py)

HEAVY = ("sklearn", "pandas", "numpy", "scipy")

# Prints the heavy packages loaded after each stage, in the order daphne reaches them.
PROBE = """
import json, sys
heavy = {heavy!r}
stages = {{}}
def loaded(stage):
    stages[stage] = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
import django
django.setup()
loaded("setup")
from django.urls import get_resolver
get_resolver().url_patterns
loaded("urls")
import config.asgi

loaded("asgi")
print(json.dumps(stages))
""".format(heavy=HEAVY)


@pytest.fixture(scope="module")
def loaded():
    # DEBUG=1, as `make run` serves: with it off config/asgi.py refuses to start without collected static files,
    # and the apps, URLs and consumers it loads are the same either way.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1"}
    # cwd=ROOT and `-c`: this checkout's packages come first on sys.path.
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_it_sets_up_django_without_the_ml_libraries(loaded):
    assert loaded["setup"] == []


def test_it_loads_the_urlconf_without_them(loaded):
    assert loaded["urls"] == []


def test_it_loads_the_asgi_application_without_them(loaded):
    assert loaded["asgi"] == []
