"""The runs list's server time with many runs: 10,000 runs of one user, 20 of them running.

    python bench/list_page.py                  # DATABASE_URL and REDIS_URL as for the other benchmarks
    python bench/list_page.py --runs 2000 --reps 10

Renders `/` (and a filtered, searched page) through the Django test client, logged in as the owner, and
reports the median and worst server time and the number of queries; the baseline in the same run is the same
page with 10 runs, so the ratio shows what the 10,000 cost. The target: at most 200 ms with 10,000 runs, and
the same number of queries as with 10 (tests/test_run_list.py proves the constant count; here it is printed).
It creates a throwaway database (DATABASE_URL's name + "_bench") and drops it at the end.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")

SPEC = {
    "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification", "runner": "cv", "seed": 1,
    "models": [{"estimator": "LogisticRegression", "params": {"C": [1.0]}}],
    "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1}, "metric": "accuracy",
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--running", type=int, default=20)
    parser.add_argument("--reps", type=int, default=30)
    return parser.parse_args()


def make_runs(owner, experiment, count, running):
    from django.utils import timezone

    from runs.models import Run

    now = timezone.now()
    batch = []
    for i in range(count):
        live = i >= count - running
        batch.append(Run(owner=owner, experiment=experiment, name=f"{'live' if live else 'old'} run {i}", spec=SPEC,
                         status="running" if live else "completed", current_step="cross_validate" if live else "",
                         queued_at=now - timedelta(minutes=count - i), started_at=now - timedelta(minutes=count - i),
                         finished_at=None if live else now - timedelta(minutes=count - i - 1),
                         total_fits=10, finished_fits=4 if live else 10, best_score=0.9))
    Run.objects.bulk_create(batch, batch_size=2000)


def measure(client, query, reps):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get("/", query)  # warm-up
    times, queries = [], None
    for _ in range(reps):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/", query)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        queries = len(captured)
    return statistics.median(times), max(times), queries


def main():
    args = parse_args()
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connections
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases

    from experiments.models import Experiment
    from runs.models import Run

    db = connections["default"].settings_dict
    db["TEST"]["NAME"] = f"{db['NAME']}_bench"
    old = setup_databases(verbosity=0, interactive=False)
    try:
        owner = User.objects.create_user("bench")
        experiment = Experiment.objects.create(owner=owner, name="Bench", spec=SPEC)
        client = Client(HTTP_HOST="localhost")
        client.force_login(owner)
        filtered = {"status": "running", "q": "live", "outdated": "hide"}
        make_runs(owner, experiment, 10, min(args.running, 10))
        base = measure(client, {}, args.reps), measure(client, filtered, args.reps)
        Run.objects.all().delete()
        make_runs(owner, experiment, args.runs, args.running)
        big = measure(client, {}, args.reps), measure(client, filtered, args.reps)
        print(f"Runs list, server time (Django test client), median of {args.reps}; baseline: 10 runs")
        print(f"{'page':<28}{'runs':>8}{'median ms':>11}{'max ms':>9}{'queries':>9}{'ratio':>8}")
        for label, (b, g) in (("/", (base[0], big[0])), ("/?status=running&q=live…", (base[1], big[1]))):
            print(f"{label:<28}{10:>8}{b[0]:>11.1f}{b[1]:>9.1f}{b[2]:>9}{'':>8}")
            print(f"{'':<28}{args.runs:>8}{g[0]:>11.1f}{g[1]:>9.1f}{g[2]:>9}{g[0] / b[0]:>8.2f}")
        verdict = "meets" if big[0][0] <= 200 else "MISSES"
        print(f"Target: <= 200 ms with {args.runs} runs ({verdict}); queries constant: {big[0][2] == base[0][2]}")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
