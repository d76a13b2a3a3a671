"""Property-based fuzzing of the whole API against its own schema (schemathesis), bounded in time.

It must find no 5xx, and every response must match what the schema documents: status code, content type,
headers and body. Path ids point at real objects of the fuzzing user, so the actions run on real data.
"""

import os
import re
import subprocess
import sys

from datasets.models import Dataset
from experiments.models import Experiment
from runs.control import launch_run
from runs.models import FoldMetric, LogEntry
from tests.api.conftest import client_for, complete
from tests.helpers import ROOT

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
    "response_headers_conformance",
])


def seed(owner, iris_spec, media):
    run = complete(launch_run(owner, spec=iris_spec), media)
    for fold in (1, 2, 3):
        FoldMetric.objects.create(run=run, variant=1, fold=fold, metric="accuracy", value=0.9, fit_time=0.1)
        LogEntry.objects.create(run=run, seq=100 + fold, message=f"fold {fold}", fold=fold, step="cross_validate")
    experiment = Experiment.objects.create(owner=owner, name="fuzz", spec=run.spec)
    dataset = Dataset.objects.create(owner=owner, name="fuzz.csv", n_rows=3, n_columns=2)
    api = client_for(owner)
    model = api.post(f"/api/v1/runs/{run.pk}/promote/", {"name": "fuzz"}, format="json").json()
    return {"runs": run.pk, "experiments": experiment.pk, "datasets": dataset.pk, "models": model["id"]}


def config_file(path, ids):
    lines = []
    for resource, pk in ids.items():
        lines += ["[[operations]]", f'include-path-regex = "^/api/v1/{resource}/\\\\{{id\\\\}}"',
                  f'parameters = {{ "path.id" = {pk} }}', ""]
    path.write_text("\n".join(lines))
    return path


def test_it_survives_fuzzing_with_no_5xx_and_no_schema_violations(live_api, owner, iris_spec, live_media,
                                                                   tmp_path):
    ids = seed(owner, iris_spec, live_media)
    token = client_for(owner)._credentials["HTTP_AUTHORIZATION"]
    command = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(config_file(tmp_path / "schemathesis.toml", ids)),
        "run", f"{live_api.url}/api/v1/schema/",
        "--header", f"Authorization: {token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "20",
        "--seed", "20261123",
        # One worker: with two, a rare crash inside schemathesis' own generator showed up (threads sharing
        # Hypothesis strategies); one is deterministic for the fixed seed and only a few seconds slower.
        "--workers", "1",
        "--request-timeout", "65",  # wait/ may legitimately take its full (capped) timeout
        "--warnings", "off",
    ]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.api.schemathesis_hooks", PYTHONPATH=str(ROOT))
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
                            check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:] + "\n--- daphne ---\n" + live_api.log_text()[-3000:]
    assert " passed" in output
    # The fixed ids made the fuzzer reach real objects, not only 404s.
    log = live_api.log_text()
    for action in ("results", "metrics", "logs", "events", "model"):
        assert re.search(rf'"GET /api/v1/runs/{ids["runs"]}/{action}/[^"]*" 200', log), action
    assert re.search(rf'"GET /api/v1/models/{ids["models"]}/download/[^"]*" 200', log)
