"""A spec in words for the detail page and the wizard's review, and a run's likely duration."""

import json
import statistics

from engine import catalog, stop_rules
from engine.spec import branches, total_fits, variants
from .wizard import show_values

CV_LABELS = {"kfold": "K-fold", "stratified_kfold": "Stratified k-fold", "shuffle_split": "Shuffle split"}
STEP_LABELS = {
    "simple_imputer": "Fill missing values", "categorical_imputer": "Fill missing categories",
    "one_hot_encoder": "One-hot encode text columns",
    "drop_text_columns": "Leave text columns out",
    "standard_scaler": "Standard scaling", "minmax_scaler": "Min-max scaling", "robust_scaler": "Robust scaling",
    "polynomial_features": "Polynomial features", "pca": "PCA", "select_k_best": "Select k best",
}
# Seconds per fit when this user has no run on the same data: a small model on a small table.
GUESS_SECONDS_PER_FIT = 0.05
GUESS_SECONDS_PER_MILLION_VALUES = 2.0


def dataset_label(ref, datasets=None):
    ref = ref or {}
    if ref.get("kind") == "builtin":
        return f"Built-in: {ref.get('name')}"
    if ref.get("kind") == "synthetic":
        extra = f", {ref.get('n_classes')} classes" if ref.get("generator") == "classification" else ""
        return (f"Synthetic {ref.get('generator')}: {ref.get('n_samples')} rows × {ref.get('n_features')} features, "
                f"noise {ref.get('noise')}{extra}, seed {ref.get('seed')}")
    dataset = (datasets or {}).get(ref.get("id"))
    return f"Upload: {dataset.name}" if dataset else f"Upload #{ref.get('id')} (deleted or not yours)"


def step_label(step):
    params = ", ".join(f"{k}={v}" for k, v in (step.get("params") or {}).items())
    label = STEP_LABELS.get(step["name"], step["name"])
    return f"{label} ({params})" if params else label


def readable(spec, datasets=None):
    """[(heading, [lines])] describing a normalised spec."""
    rows = [("Dataset", [dataset_label(spec.get("dataset"), datasets)]),
            ("Task", [f"{(spec.get('task') or '').capitalize()}, target column “{spec.get('target')}”"])]
    if spec.get("drop_columns"):
        rows.append(("Left out", [", ".join(spec["drop_columns"])]))
    chains = branches(spec)
    rows.append(("Preprocessing", [
        (f"{name}: " if len(chains) > 1 else "") + (" → ".join(step_label(s) for s in steps) or "none")
        for name, steps in chains]))
    if spec.get("runner") != "evaluation":
        rows.append(("Models", [
            m["label"] + (": " + "; ".join(f"{k} ∈ {{{show_values(v)}}}" for k, v in m["params"].items())
                          if m["params"] else " (default parameters)")
            for m in spec.get("models") or []]))
    cv = spec.get("cv") or {}
    shuffle = f", shuffled with seed {cv.get('seed')}" if cv.get("shuffle") else ", not shuffled"
    rows.append(("Validation", [f"{CV_LABELS.get(cv.get('kind'), cv.get('kind'))}, {cv.get('folds')} folds{shuffle}"]))
    if spec.get("stop_rule"):
        rows.append(("Stop rule", [stop_rules.describe(spec["stop_rule"]).capitalize()]))
    metric = spec.get("metric")
    higher = catalog.greater_is_better(spec.get("task"), metric)
    others = [catalog.METRIC_LABELS[m] for m in catalog.METRICS.get(spec.get("task"), {}) if m != metric]
    primary = (f"{catalog.METRIC_LABELS.get(metric, metric)} is primary ({'higher' if higher else 'lower'} is "
               f"better); also recorded: {', '.join(others)}")
    rows.append(("Metrics", [primary]))
    runner = spec.get("runner")
    if runner == "training":
        t = spec.get("training") or {}
        text = (f"Epoch training: up to {t.get('epochs')} epochs, patience {t.get('patience')}, "
                f"{round((t.get('validation_fraction') or 0) * 100)}% held out for validation")
    elif runner == "evaluation":
        text = f"Evaluate the model of run #{(spec.get('evaluation') or {}).get('run')}"
    else:
        text = "Cross-validation, then a refit of the best variant on all rows"
    rows.append(("Runner", [text]))
    return rows


def fits(spec):
    """(fits, words): branches × variants × folds, plus the refit."""
    n = total_fits(spec)
    if spec["runner"] == "evaluation":
        return n, "1 evaluation"
    b, v = len(branches(spec)), len(variants(spec))
    per = spec["training"]["epochs"] if spec["runner"] == "training" else spec["cv"]["folds"]
    unit = "epochs" if spec["runner"] == "training" else "folds"
    return n, f"{b} branch{'es' if b != 1 else ''} × {v} variant{'s' if v != 1 else ''} × {per} {unit} + 1 refit"


def estimate(spec, earlier_runs, shape=None):
    """(seconds, how it was estimated). `earlier_runs` are this user's finished runs on the same data, as
    (seconds, fits) pairs; without any, a stated rough guess from the data's size."""
    n = total_fits(spec) + 1
    timed = [seconds / max(count, 1) for seconds, count in earlier_runs if seconds and count]
    if timed:
        per_fit = statistics.median(timed)
        return n * per_fit, f"from {len(timed)} of your earlier runs on this data"
    rows, cols = shape or (1000, 20)
    per_fit = GUESS_SECONDS_PER_FIT + rows * cols / 1e6 * GUESS_SECONDS_PER_MILLION_VALUES
    return n * per_fit, "a rough guess: you have no finished runs on this data yet"


def dataset_shape(ref, dataset=None):
    ref = ref or {}
    if ref.get("kind") == "builtin":
        return catalog.BUILTIN_SHAPES.get(ref.get("name"))
    if ref.get("kind") == "synthetic":
        return ref.get("n_samples"), ref.get("n_features")
    return (dataset.n_rows, dataset.n_columns) if dataset else None


def _show(value):
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def flatten_spec(spec, prefix=""):
    """A spec as ordered (dotted path, readable value) pairs: "models.0.params.C" -> "[0.1, 1.0]".

    Dicts and lists of dicts are walked (paths as in the spec's field errors); lists of plain values and
    empty containers are shown whole, which reads better than one line per item.
    """
    items = []
    if isinstance(spec, dict) and spec:
        for key, value in spec.items():
            items += flatten_spec(value, f"{prefix}{key}.")
    elif isinstance(spec, list) and spec and all(isinstance(v, dict) for v in spec):
        for i, value in enumerate(spec):
            items += flatten_spec(value, f"{prefix}{i}.")
    else:
        items.append((prefix.rstrip("."), _show(spec)))
    return items
