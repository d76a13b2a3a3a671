"""Out-of-fold diagnostics: what a fitted fold's model does on the rows it did not see, as small plain data.

Computed where the fold is fitted (a loky child, a Dask worker, or the work horse for n_jobs 1), from the same
test rows the fold is scored on, and returned with the scores; the reporter stores them beside the fold's
metrics (runs.models.FoldDiagnostic), and the results page, compare and the API all read those numbers.

Kept small on purpose, since one is stored for every fit (100 variants x 10 folds is 1,000 of them):
- curves keep at most MAX_CURVE_POINTS of scikit-learn's own points (an evenly spaced subset, both ends
  kept), so each drawn point is one `roc_curve` / `precision_recall_curve` returned;
- regression keeps at most MAX_SCATTER_POINTS (actual, predicted) pairs, a seeded sample of the fold;
- values are rounded to 6 significant digits, and NaN or infinity become None (PostgreSQL's jsonb refuses
  them).

The computing functions import numpy and scikit-learn when called; the aggregation at the end (the mean curve
and its band over folds) is plain Python, so a web process reads diagnostics without loading scikit-learn.
"""

import math

MAX_CURVE_POINTS = 120
MAX_SCATTER_POINTS = 200
MAX_FEATURES = 30
CALIBRATION_BINS = 10
GRID_POINTS = 51  # the shared x grid the mean curve and its band are drawn on


def fold(model, X, y, task, seed=0, feature_names=()):
    """The diagnostics of one fitted fold on its test rows (X, y), or {} if none could be made.

    Never raises: a diagnostic that cannot be computed (an estimator without scores, a fold with one class)
    is left out, and the fold's scores stand without it."""
    try:
        out = _classification(model, X, y) if task == "classification" else _regression(model, X, y, seed)
    except Exception:  # noqa: BLE001 - a plot must never fail a fit that scored
        return {}
    importance = _importance(model, feature_names)
    if importance:
        out["importance"] = importance
    return out


def _classification(model, X, y):
    import numpy as np
    from sklearn import metrics as skm

    classes = list(model.classes_)
    pred = model.predict(X)
    out = {
        "kind": "classification",
        "labels": [_label(c) for c in classes],
        "confusion": skm.confusion_matrix(y, pred, labels=classes).tolist(),
    }
    scores = _scores(model, X, classes)
    if scores is None or len(np.unique(y)) < 2:
        return out
    if len(classes) == 2:
        truth, flat = np.asarray(y) == classes[1], scores
        out["curve_of"] = f"class {_label(classes[1])}"
    else:
        # Micro-average over the classes (scikit-learn's "micro" ROC): every (row, class) pair is one
        # decision, so one curve per fold still summarises a multi-class model.
        from sklearn.preprocessing import label_binarize

        truth, flat = label_binarize(y, classes=classes).ravel().astype(bool), scores.ravel()
        out["curve_of"] = "micro-average over classes"
    fpr, tpr, _ = skm.roc_curve(truth, flat)
    precision, recall, _ = skm.precision_recall_curve(truth, flat)
    out["roc"] = {"fpr": _thin(fpr), "tpr": _thin(tpr), "auc": _num(skm.auc(fpr, tpr))}
    out["pr"] = {"recall": _thin(recall), "precision": _thin(precision),
                 "ap": _num(skm.average_precision_score(truth, flat)), "base_rate": _num(truth.mean())}
    if len(classes) == 2 and hasattr(model, "predict_proba"):
        out["calibration"] = _calibration(truth, model.predict_proba(X)[:, 1])
    return out


def _scores(model, X, classes):
    """What the ROC and PR curves rank by, as engine.pipeline's roc_auc does: for two classes the decision
    function first, else the positive class's probability; for more, the class probabilities."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if len(classes) == 2:
                if hasattr(model, "decision_function"):
                    return model.decision_function(X)
                if hasattr(model, "predict_proba"):
                    return model.predict_proba(X)[:, 1]
                return None
            return model.predict_proba(X) if hasattr(model, "predict_proba") else None
        except (AttributeError, ValueError):
            return None  # e.g. SVC without probability estimates


def _calibration(truth, proba):
    """Reliability per uniform probability bin: the mean predicted probability, the observed fraction of
    positives and how many rows fell in it (calibration_curve's bins, with the counts it leaves out)."""
    import numpy as np

    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    which = np.searchsorted(edges[1:-1], proba)  # as calibration_curve bins them
    counts = np.bincount(which, minlength=CALIBRATION_BINS)
    filled = counts > 0
    predicted = np.bincount(which, weights=proba, minlength=CALIBRATION_BINS)[filled] / counts[filled]
    observed = np.bincount(which, weights=truth.astype(float), minlength=CALIBRATION_BINS)[filled] / counts[filled]
    return {"predicted": _list(predicted), "observed": _list(observed), "counts": counts[filled].tolist()}


def _regression(model, X, y, seed):
    import numpy as np

    pred = np.asarray(model.predict(X), dtype=float)
    actual = np.asarray(y, dtype=float)
    rows = np.arange(len(actual))
    if len(rows) > MAX_SCATTER_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_SCATTER_POINTS, replace=False))
    return {"kind": "regression", "rows": int(len(actual)), "actual": _list(actual[rows]),
            "predicted": _list(pred[rows])}


def _importance(model, feature_names):
    """The fitted estimator's own importance, where it has one: feature_importances_ (trees), else the mean
    absolute coefficient over classes (linear models; comparable between features only on scaled data, which
    the page says). Top MAX_FEATURES by value, named as the pipeline's last transform names its outputs."""
    import numpy as np

    estimator = model[-1] if hasattr(model, "steps") else model
    if hasattr(estimator, "feature_importances_"):
        values, source = np.asarray(estimator.feature_importances_, dtype=float), "impurity"
    elif hasattr(estimator, "coef_"):
        coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=float))
        values, source = np.abs(coef).mean(axis=0), "coefficient"
    else:
        return None
    names = _feature_names(model, len(values), feature_names)
    top = np.argsort(-values, kind="stable")[:MAX_FEATURES]
    return {"source": source, "features": [names[i] for i in top], "values": _list(values[top])}


def _feature_names(model, n, given):
    try:
        names = [str(n) for n in model[:-1].get_feature_names_out(list(given) or None)]
    except Exception:  # noqa: BLE001 - a transform without names, or names that do not fit
        names = list(given)
    return names if len(names) == n else [f"x{i}" for i in range(n)]


def _thin(values):
    """At most MAX_CURVE_POINTS of `values`, evenly spaced by index, both ends kept."""
    n = len(values)
    if n <= MAX_CURVE_POINTS:
        return _list(values)
    step = (n - 1) / (MAX_CURVE_POINTS - 1)
    picked = sorted({round(i * step) for i in range(MAX_CURVE_POINTS)})
    return _list([values[i] for i in picked])


def _label(value):
    return str(value.item() if hasattr(value, "item") else value)


def _list(values):
    return [_num(v) for v in values]


def _num(value):
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else None


# --- Over folds: plain Python, for the pages and the API ----------------------------------------------------


def interpolate(xs, ys, at):
    """y at `at` along the polyline (xs, ys), xs in either order; ties in x keep the last y (a curve's
    vertical step), ends are held flat."""
    pairs = sorted((x, y) for x, y in zip(xs, ys) if x is not None and y is not None)
    if not pairs:
        return None
    if at <= pairs[0][0]:
        return pairs[0][1]
    for (x0, y0), (x1, y1) in zip(pairs, pairs[1:]):
        if x0 <= at <= x1:
            return y1 if x1 == x0 else y0 + (y1 - y0) * (at - x0) / (x1 - x0)
    return pairs[-1][1]


def mean_curve(curves, x_key, y_key, start=None):
    """The mean curve over folds and its ± one standard deviation band (population std, as the leaderboard's
    spread), on GRID_POINTS shared x from 0 to 1: each fold's curve interpolated there first (the cross-
    validated ROC of scikit-learn's examples). `start` pins the first y (a ROC curve starts at 0)."""
    curves = [c for c in curves if c and c.get(x_key)]
    if not curves:
        return None
    grid = [i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
    mean, low, high = [], [], []
    for i, x in enumerate(grid):
        ys = [interpolate(c[x_key], c[y_key], x) for c in curves]
        ys = [y for y in ys if y is not None]
        if i == 0 and start is not None:
            ys = [start] * len(ys)
        m = sum(ys) / len(ys)
        spread = math.sqrt(sum((y - m) ** 2 for y in ys) / len(ys))
        mean.append(m)
        low.append(max(m - spread, 0.0))
        high.append(min(m + spread, 1.0))
    return {"x": grid, "mean": mean, "low": low, "high": high, "folds": len(curves)}
