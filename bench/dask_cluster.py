"""A Dask cluster: Runwatch's Dask backend against GridSearchCV on joblib's Dask backend, on the same cluster.

    python bench/dask_cluster.py [--rounds 3] [--samples 4000] [--features 30] [--workers 2]

A LocalCluster (scheduler + `--workers` worker processes of 1 thread) on this machine. The grid, data and
scorers are bench/parallel.py's (20 random-forest fits, then the refit). Sides, interleaved and rotated each
round: Runwatch with `scheduler=` (engine/runners/dask_fits.py), GridSearchCV under
`joblib.parallel_config(backend="dask")`, and Runwatch with 2 loky processes for reference. Then the cost of
each fit on the cluster: a grid of 60 fits that take milliseconds, on the cluster and in the work horse; the
difference is Dask's share (submit, start event, result, bookkeeping), per fit, in slot-seconds.
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
sys.path.insert(0, str(ROOT / "bench"))

import joblib  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from engine import execute  # noqa: E402
from engine.reporting import Reporter  # noqa: E402
from engine.spec import validate_spec  # noqa: E402
from parallel import grid_search, spec  # noqa: E402  (bench/parallel.py)


def runwatch(the_spec, scheduler=""):
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        execute(the_spec, Reporter(), Path(scratch), scheduler=scheduler)
        return time.perf_counter() - started


def tiny_spec(n_jobs):
    # 12 variants x 5 folds of a logistic regression on 300 rows: each fit takes a few milliseconds.
    return validate_spec({
        "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 300, "n_features": 5,
                    "noise": 0.1, "seed": 0, "n_classes": 2},
        "task": "classification", "metric": "accuracy", "seed": 0, "n_jobs": n_jobs,
        "models": [{"estimator": "LogisticRegression",
                    "params": {"C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "max_iter": [200, 300]}}],
        "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 0},
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:  # the default client, which joblib's Dask backend uses
        address = cluster.scheduler_address

        def dask_grid_search():
            with joblib.parallel_config(backend="dask"):
                return grid_search(args, -1)

        sides = {
            "Runwatch Dask": lambda: runwatch(spec(args, -1), address),
            "GridSearchCV joblib-dask": dask_grid_search,
            "Runwatch loky n_jobs=-1": lambda: runwatch(spec(args, -1)),
        }
        names = list(sides)
        times = {name: [] for name in names}
        tiny = {"Dask": [], "in the work horse": []}
        runwatch(tiny_spec(-1), address)  # warm the workers' imports once, as a long-lived cluster has them
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                times[name].append(sides[name]())
            tiny["Dask"].append(runwatch(tiny_spec(-1), address))
            tiny["in the work horse"].append(runwatch(tiny_spec(1)))
        client.cancel(list(client.futures))
    median = {name: statistics.median(values) for name, values in times.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"20 fits + refit, {args.samples} x {args.features}, {args.rounds} interleaved rounds, {cores} cores, "
          f"LocalCluster of {args.workers} x 1 thread")
    print(f"{'side':<26} {'median s':>9} {'min-max s':>15}")
    for name in names:
        print(f"{name:<26} {median[name]:>9.2f} {min(times[name]):>7.2f}-{max(times[name]):<7.2f}")
    print(f"ratio Runwatch Dask / GridSearchCV joblib-dask: {median['Runwatch Dask'] / median['GridSearchCV joblib-dask']:.2f}")
    print(f"ratio Runwatch Dask / Runwatch loky: {median['Runwatch Dask'] / median['Runwatch loky n_jobs=-1']:.2f}")
    on_dask, local = statistics.median(tiny["Dask"]), statistics.median(tiny["in the work horse"])
    print(f"60 tiny fits: Dask {on_dask:.2f} s ({min(tiny['Dask']):.2f}-{max(tiny['Dask']):.2f}), in the work "
          f"horse {local:.2f} s; Dask's cost per fit {(on_dask * args.workers - local) / 60 * 1000:.1f} ms "
          f"of a slot ({(on_dask - local) / 60 * 1000:.1f} ms of wall time)")


if __name__ == "__main__":
    main()
