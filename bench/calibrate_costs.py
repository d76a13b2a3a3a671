"""Measures each catalog estimator's folds the way a run fits them (engine.runners.cv.cross_validate, n_jobs 1, one
thread: the fit, the scoring and the diagnostics of each fold, which is what the ETA observes), default
parameters, on synthetic data of 344, 4,000 and 16,000 rows x 10 columns: the figures engine/runners/costs.py is
calibrated from.

    .venv/bin/python bench/calibrate_costs.py     (prints the COSTS table to paste; several minutes)
    .venv/bin/python bench/calibrate_costs.py --check [--rows 5000]

--check times 3 folds of each estimator on --rows x 10 and prints the cost model's seconds beside them.
Both count CPU time, which a loaded machine's other processes do not inflate. Only the ratios matter (the ETA scales the cost model by the
fits it has seen): each estimator's measured/predicted over the median of them should be within ~2x of 1.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine import catalog
from engine.runners import costs  # noqa: E402


def main(folds):
    """Each estimator's CPU seconds per fold at each of SIZES, as a run's cross-validation fits them."""
    print(f"COSTS = {{  # estimator: seconds of one fold at {', '.join(f'{r:,}' for r in costs.SIZES)} rows")
    with one_thread():
        for name, (_, _, tasks, _) in catalog.ESTIMATORS.items():
            task = "classification" if "classification" in tasks else "regression"
            times = [engine_seconds(name, task, rows, folds) for rows in costs.SIZES]
            print(f"    {name!r}: ({', '.join(f'{t:.4f}' for t in times)}),", flush=True)
    print("}")


def one_thread():
    """One thread for every native pool, as in a run's child with one core to itself. threadpool_limits caps
    only the libraries loaded when it is entered: entered before scikit-learn had loaded its OpenMP runtime
    (as --check once did), it capped nothing, and HistGradientBoosting ran a thread per core; on a machine
    whose other processes hold a core, OpenMP's threads then wait on one another at every barrier, and its
    folds took 12-42x the CPU time of one thread. So the warm-up fits come first: the first of each task also
    imports what its scoring needs."""
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime (and numpy's and scipy's BLAS)

    for task in ("classification", "regression"):
        engine_seconds("DecisionTreeClassifier" if task == "classification" else "DecisionTreeRegressor", task, 344)
    limits = threadpool_limits(1)
    if not any(pool["internal_api"] == "openmp" for pool in threadpool_info()):
        raise SystemExit("The OpenMP runtime is not loaded, so one thread cannot be enforced")
    return limits


def engine_seconds(name, task, rows, folds=3):
    """The CPU seconds per fold of `name`'s fits, scoring and diagnostics in a real run's cross-validation: CPU
    time, not wall time, so that a shared machine's load (other processes taking turns) leaves the ratios
    between estimators as they are."""
    from engine.common import load_and_validate
    from engine.runners.cv import cross_validate
    from engine.reporting import Reporter
    from engine.spec import validate_spec

    spec = validate_spec({
        "runner": "cv", "task": task, "target": "target", "seed": 0, "n_jobs": 1,
        "metric": "accuracy" if task == "classification" else "r2", "preprocessing": ["standard_scaler"],
        "dataset": {"kind": "synthetic", "generator": task, "n_samples": rows, "n_features": 10, "seed": 0},
        "models": [{"estimator": name, "params": {}}],
        "cv": {"kind": "kfold", "folds": folds, "shuffle": True, "seed": 0}})
    data = load_and_validate(spec, Reporter(), {})
    started = time.process_time()
    cross_validate(spec, data, Reporter())
    return (time.process_time() - started) / folds


def check(rows):
    measured = {}
    with one_thread():
        for name, (_, _, tasks, _) in catalog.ESTIMATORS.items():
            task = "classification" if "classification" in tasks else "regression"
            measured[name] = engine_seconds(name, task, rows)
    predicted = {name: costs.fit_seconds(name, {}, rows, 10) for name in measured}
    middle = statistics.median(measured[n] / predicted[n] for n in measured)
    print(f"{rows:,} rows x 10, 3 folds, n_jobs 1; median measured/predicted {middle:.2f}")
    print(f"{'estimator':<32} {'measured s':>10} {'model s':>8} {'relative':>9}")
    for name in measured:
        relative = measured[name] / predicted[name] / middle
        flag = "" if 0.5 <= relative <= 2 else "  <- off by more than 2x"
        print(f"{name:<32} {measured[name]:>10.3f} {predicted[name]:>8.3f} {relative:>9.2f}{flag}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare the cost model with a run's own fits")
    parser.add_argument("--rows", type=int, default=5000, help="--check: the data's rows")
    parser.add_argument("--folds", type=int, default=3, help="the calibration's folds (a fold trains on the rest)")
    args = parser.parse_args()
    check(args.rows) if args.check else main(args.folds)
