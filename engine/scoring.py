"""What "better" and "best" mean: the one definition the engine, the results module and every page share.

Plain Python (no Django, no numpy), so the engine ranks its variants with the same rule the leaderboard uses
afterwards:
- a variant's score for a metric is the mean over its folds, with the population std (ddof=0, as
  scikit-learn's search CV reports); epoch-trained variants score by their best epoch, as early stopping
  keeps that epoch's model;
- variants whose folds all finished rank before unfinished ones (a stopped run's half-done variant must not
  look best on one lucky fold), then by the primary metric in its direction; unscored variants come last;
  ties keep spec order.
"""

import math
import statistics

from . import catalog


def greater_is_better(task, metric):
    """Whether a higher value of `metric` is better: engine.catalog answers (its METRICS table owns the
    direction); kept here so the engine and results code ask their scoring module for everything "better"."""
    return catalog.greater_is_better(task, metric)


def finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def better(a, b, greater):
    """Is score `a` better than `b`? A missing or NaN score is worse than anything."""
    if not finite(a):
        return False
    if not finite(b):
        return True
    return a > b if greater else a < b


def mean(values):
    values = [v for v in values if finite(v)]
    return statistics.fmean(values) if values else None


def summarize(values):
    """{"mean", "std", "count"} over the finite values (NaN and None are left out)."""
    values = [v for v in values if finite(v)]
    if not values:
        return {"mean": None, "std": None, "count": 0}
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "count": len(values)}


def best_of(values, greater):
    """The best single value (an epoch-trained variant's score), as a summary without a spread."""
    values = [v for v in values if finite(v)]
    if not values:
        return {"mean": None, "std": None, "count": 0}
    return {"mean": (max if greater else min)(values), "std": None, "count": len(values)}


def rank_key(score, greater, complete=True):
    """Sort key: finished before unfinished, scored before unscored, then best first."""
    if not finite(score):
        return (not complete, 1, 0.0)
    return (not complete, 0, -score if greater else score)


def rank(rows, greater, score=lambda row: row["primary"], complete=lambda row: True):
    """`rows` best first (a stable sort, so ties keep their order)."""
    return sorted(rows, key=lambda row: rank_key(score(row), greater, complete(row)))
