"""Every core: the engine's cross-validation with n_jobs 1 and -1 against GridSearchCV with the same n_jobs.

    python bench/parallel.py [--rounds 3] [--samples 4000] [--features 30]

The same random-forest grid on both sides (2 x 2 variants x 5 stratified folds = 20 fits, then the refit of the
best), the same scorers (accuracy, f1_macro, roc_auc) and refit on accuracy. The engine side is
`engine.execute` with the no-op Reporter, so this measures the scheduling and fitting, not the database
(bench/overhead.py measures the reporter). Rounds are interleaved and each round rotates which side goes
first, so drift in the machine's load hits every side alike. Prints medians, the spread (min-max) and ratios.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from engine.spec import validate_spec  # noqa: E402
from engine import execute  # noqa: E402
from engine.reporting import Reporter  # noqa: E402

GRID = {"n_estimators": [50, 100], "max_depth": [8, None]}


def spec(args, n_jobs):
    return validate_spec({
        "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": args.samples,
                    "n_features": args.features, "noise": 0.1, "seed": 0, "n_classes": 2},
        "task": "classification", "metric": "accuracy", "seed": 0, "n_jobs": n_jobs,
        "models": [{"estimator": "RandomForestClassifier", "params": {k: list(v) for k, v in GRID.items()}}],
        "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 0},
    })


def runwatch(args, n_jobs):
    s = spec(args, n_jobs)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        execute(s, Reporter(), Path(scratch))
        return time.perf_counter() - started


def grid_search(args, n_jobs):
    X, y = make_classification(n_samples=args.samples, n_features=args.features, random_state=0)
    search = GridSearchCV(RandomForestClassifier(random_state=0), GRID, n_jobs=n_jobs, refit="accuracy",
                          scoring=["accuracy", "f1_macro", "roc_auc"],
                          cv=StratifiedKFold(5, shuffle=True, random_state=0))
    started = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--features", type=int, default=30)
    args = parser.parse_args()
    sides = {
        "Runwatch n_jobs=1": lambda: runwatch(args, 1), "GridSearchCV n_jobs=1": lambda: grid_search(args, 1),
        "Runwatch n_jobs=-1": lambda: runwatch(args, -1), "GridSearchCV n_jobs=-1": lambda: grid_search(args, -1),
    }
    names = list(sides)
    times = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(sides[name]())
    median = {name: statistics.median(values) for name, values in times.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{len(GRID['n_estimators']) * len(GRID['max_depth']) * 5} fits + refit, {args.samples} x {args.features}, "
          f"{args.rounds} interleaved rounds, {cores} cores")
    print(f"{'side':<24} {'median s':>9} {'min-max s':>15}")
    for name in names:
        print(f"{name:<24} {median[name]:>9.2f} {min(times[name]):>7.2f}-{max(times[name]):<7.2f}")
    for a, b in (("Runwatch n_jobs=1", "GridSearchCV n_jobs=1"), ("Runwatch n_jobs=-1", "GridSearchCV n_jobs=-1"),
                 ("Runwatch n_jobs=-1", "Runwatch n_jobs=1")):
        print(f"ratio {a} / {b}: {median[a] / median[b]:.2f}")


if __name__ == "__main__":
    main()
