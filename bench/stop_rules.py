"""Stop rules (engine/runners/stop_rules.py): fits and wall time saved against the full grid, and whether the best
variant is still the full grid's.

    python bench/stop_rules.py            # 5 interleaved repeats per dataset
    python bench/stop_rules.py --quick    # 1 repeat: a smoke run, not figures to record

`engine.execute` with the no-op Reporter, no Django, sequential (n_jobs 1), 5 stratified folds. The grid has
variants that truly differ: logistic regression from C=1e-5 (predicts the majority class) to 10 on scaled
data, and decision trees from depth 1 to unlimited. Each repeat runs the full grid and each rule back to back
(interleaved), so a rule's time ratio is measured beside its baseline; the table gives the median ratio and its
spread (min-max) over the repeats. The target is set 0.01 below the full grid's best score on that dataset (a
target the user could plausibly ask for); the run then ends at the first variant that reaches it, which need
not be the best. Parallel runs prune the same rows (the rule decides in sequential order), but fits already in
flight when a row is pruned are wasted, so the saved time is smaller with n_jobs > 1.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import execute  # noqa: E402
from engine.reporting import Reporter  # noqa: E402
from engine.spec import validate_spec  # noqa: E402

DATASETS = {
    "breast_cancer": {"kind": "builtin", "name": "breast_cancer"},
    "digits": {"kind": "builtin", "name": "digits"},
    "synthetic": {"kind": "synthetic", "generator": "classification", "n_samples": 2000, "n_features": 30,
                  "noise": 0.1, "seed": 0, "n_classes": 2},
}
RULES = {"median": {"kind": "median", "after_folds": 2}, "successive_halving": {"kind": "successive_halving", "factor": 3}}


def spec(dataset, rule):
    s = {
        "runner": "cv", "task": "classification", "target": "target", "metric": "accuracy", "seed": 0, "n_jobs": 1,
        "dataset": DATASETS[dataset], "preprocessing": ["standard_scaler"],
        "models": [{"estimator": "LogisticRegression", "params": {"C": [0.00001, 0.001, 0.1, 1.0, 10.0],
                                                                  "max_iter": [2000]}},
                   {"estimator": "DecisionTreeClassifier", "params": {"max_depth": [1, 2, 4, 8, None]}}],
        "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 0},
    }
    if rule:
        s["stop_rule"] = rule
    return validate_spec(s)


def timed(s):
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        outcome = execute(s, Reporter(), Path(scratch))
        return time.perf_counter() - started, outcome


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    print(f"{'dataset':<14} {'rule':<19} {'fits':>7} {'saved':>6} {'time/full':>10} {'spread':>12} {'best':>6}")
    for dataset in DATASETS:
        _, full = timed(spec(dataset, None))  # warm-up, and the full grid's best for the target
        rules = dict(RULES, target={"kind": "target", "value": round(full["best_score"] - 0.01, 4)})
        ratios = {name: [] for name in rules}
        outcomes = {}
        for _ in range(repeats):
            base, _ = timed(spec(dataset, None))
            for name, rule in rules.items():
                seconds, outcomes[name] = timed(spec(dataset, rule))
                ratios[name].append(seconds / base)
        for name, outcome in outcomes.items():
            stop = outcome["summary"]
            stored, total = stop["fits_stored"], stop["fits_total"]
            same = outcome["best_variant"]["description"] == full["best_variant"]["description"]
            r = ratios[name]
            print(f"{dataset:<14} {name:<19} {stored:>3}/{total:<3} {1 - stored / total:>6.0%} "
                  f"{statistics.median(r):>10.2f} {min(r):>5.2f}-{max(r):<6.2f} {'same' if same else 'other':>6}",
                  flush=True)
        print(f"{dataset:<14} full grid best: {full['best_variant']['description']} {full['best_score']:.4f}"
              f"{'':<4}target {rules['target']['value']}", flush=True)


if __name__ == "__main__":
    main()
