"""The results page with its out-of-fold plots at 100 variants x 10 folds (issue 30: under 300 ms), against
the same page without diagnostic rows, in interleaved rounds. Served by Django's test client (the full
middleware stack, no network) as the owner; the figures are server time, query count and page size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw REDIS_URL=redis://127.0.0.1:6379/10 python bench/results_page.py

The diagnostics are real ones (engine.diagnostics on held-out breast-cancer rows, curves at the 120-point
bound), copied to every fold; they go into a throwaway test database (<name>_results).
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")

from bench.pages import timed_get  # noqa: E402 - after the path and settings above


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    return parser.parse_args()


def a_fold():
    """One fold's diagnostics as a real fit makes them, with curves at their bound."""
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from engine import diagnostics

    X, y = datasets.make_classification(n_samples=4000, n_features=30, flip_y=0.2, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[:3000], y[:3000])
    return diagnostics.fold(model, X[3000:], y[3000:], "classification")


def make_run(owner, spec, variants, folds, data, name):
    from runs.models import FoldDiagnostic, FoldMetric, Run

    run = Run.objects.create(owner=owner, name=name, spec=spec, status=Run.Status.COMPLETED, total_folds=folds,
                             total_fits=variants * folds, finished_fits=variants * folds)
    metrics, diagnosed, seq = [], [], 0
    for variant in range(1, variants + 1):
        for fold in range(1, folds + 1):
            seq += 1
            for metric, value in (("accuracy", 0.8 + variant / 1000), ("f1_macro", 0.79), ("roc_auc", 0.9)):
                metrics.append(FoldMetric(run=run, seq=seq, variant=variant, variant_description=f"C={variant}",
                                          fold=fold, metric=metric, value=value, fit_time=0.1))
            if data:
                diagnosed.append(FoldDiagnostic(run=run, seq=seq, variant=variant, fold=fold, data=data))
    FoldMetric.objects.bulk_create(metrics, batch_size=5000)
    FoldDiagnostic.objects.bulk_create(diagnosed, batch_size=500)
    return run


def main():
    args = parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connections
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases
    from django.urls import reverse

    from engine.spec import validate_spec

    db = connections["default"].settings_dict
    db["TEST"]["NAME"] = f"{db['NAME']}_results"
    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="runwatch-results-"))
    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    old = setup_databases(verbosity=0, interactive=False)
    try:
        spec = validate_spec({
            "dataset": {"kind": "builtin", "name": "breast_cancer"}, "task": "classification",
            "models": [{"estimator": "LogisticRegression", "params": {}}],
            "cv": {"kind": "stratified_kfold", "folds": args.folds, "shuffle": True, "seed": 1}, "metric": "accuracy",
        })
        owner = User.objects.create_user("owner")
        data = a_fold()
        size = len(__import__("runs.events", fromlist=["to_json"]).to_json(data))
        plotted = make_run(owner, spec, args.variants, args.folds, data, "plotted")
        bare = make_run(owner, spec, args.variants, args.folds, None, "bare")
        client = Client()
        client.force_login(owner)
        pages = [(f"results, {args.variants} x {args.folds}, plots", reverse("results:run", args=[plotted.pk])),
                 (f"results, {args.variants} x {args.folds}, no plots", reverse("results:run", args=[bare.pk]))]
        for _, url in pages:
            timed_get(client, url)  # warm-up
        timings = {name: [] for name, _ in pages}
        for _ in range(args.rounds):
            for name, url in pages:
                timings[name].append(timed_get(client, url))
        print(f"One fold's diagnostics: {size / 1024:.1f} KiB of JSON; {args.rounds} rounds")
        print(f"{'page':<36} {'median ms':>9} {'max ms':>7} {'queries':>7} {'KiB':>6}")
        for name, rows in timings.items():
            ms = [t for t, _, _ in rows]
            print(f"{name:<36} {statistics.median(ms):9.1f} {max(ms):7.1f} {rows[0][1]:7d} {rows[0][2] / 1024:6.0f}")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
