"""A spec in words for the detail page and the wizard's review, and a run's likely duration."""

import json
import statistics

from engine import catalog
from engine.runners import costs, stop_rules
from engine.runners.costs import work_factor
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
# What a run costs besides its fits: loading and checking the data, the steps' bookkeeping, the export; and
# starting the fit processes of a parallel run (loky children importing scikit-learn). Not measured whole:
# bench/eta.py measures the engine's share, 0.05 s (0.04-0.05; 0.06-0.18 at load 2-6) on 6,000 x 10 synthetic
# rows (2026-12-07); the rest of the 1.5 s is an allowance, unmeasured, for what it does not see (the worker
# taking the job, the reporter's writes, reading an upload). PROCESS_START_SECONDS is not measured either.
RUN_OVERHEAD_SECONDS = 1.5
PROCESS_START_SECONDS = 2.0
# How far the truth may lie from the estimate: history on the same data is close, the cost model within
# about a factor of two (machines and their load differ), a training run's epochs rougher still.
SPREAD = {"history": 1.4, "cost model": 2.0, "epochs": 3.0}
EPOCHS_PER_FIT = 20  # a default-sized fit is about this many passes over the data (for one epoch's cost)


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
    """(fits, words, refit): the run's own count, branches × variants × folds (or epochs), the same number as
    the run's total_fits, and whether a refit of the best variant on all rows follows. The refit is one model
    more but not one of the fits the progress counts, so it is added after the product, never inside it
    (runs.formatting.fits says "50 + refit" the same way)."""
    n = total_fits(spec)
    if spec["runner"] == "evaluation":
        return n, "1 evaluation", False
    b, v = len(branches(spec)), len(variants(spec))
    cv = spec["runner"] != "training"  # epoch training keeps its best epoch: no refit
    per, unit = (spec["cv"]["folds"], "fold") if cv else (spec["training"]["epochs"], "epoch")
    words = " × ".join(f"{k} {noun}{plural if k != 1 else ''}"
                       for k, noun, plural in ((b, "branch", "es"), (v, "variant", "s"), (per, unit, "s")))
    return n, words, cv


def estimate(spec, history=None, shape=None, default_jobs=1):
    """(seconds, low, high, how it was estimated) for a run of `spec`: every fit at the expected time of its
    own estimator, spread over the processes the run will use, plus the refit and the run's overhead.

    `history`: {estimator: seconds per fit at work factor 1} from this user's earlier runs on the same data
    (runs.history.fit_seconds); estimators without any take the catalog's cost model (engine.runners.costs) by data
    `shape` (rows, columns). `default_jobs`: the server's RUNWATCH_N_JOBS, for a spec that does not say."""
    history = history or {}
    rows, columns = shape or (1000, 20)
    if spec["runner"] == "evaluation":
        return RUN_OVERHEAD_SECONDS, RUN_OVERHEAD_SECONDS / 2, RUN_OVERHEAD_SECONDS * 2, "a single evaluation"
    per_variant, sources = [], set()
    for variant in variants(spec):
        known = history.get(variant["estimator"])
        sources.add("history" if known else "cost model")
        per_fit = (known * work_factor(variant["params"], variant["estimator"]) if known
                   else costs.fit_seconds(variant["estimator"], variant["params"], rows, columns))
        per_variant.append(per_fit)
    n_branches = len(branches(spec))
    if spec["runner"] == "training":
        epochs = spec["training"]["epochs"]
        work = n_branches * epochs * sum(per_variant) / EPOCHS_PER_FIT
        seconds = RUN_OVERHEAD_SECONDS + work
        return _range(seconds, SPREAD["epochs"]) + ("a rough guess from the catalog's cost model per epoch, "
                                                    "one process",)
    folds = spec["cv"]["folds"]
    fits = n_branches * len(per_variant) * folds
    jobs = costs.effective_jobs(spec.get("n_jobs", default_jobs), fits)
    work = n_branches * folds * sum(per_variant)
    # Spread over the processes, with half the tail of the last fits, which cannot be shared out (engine.runners.eta).
    cv = work / jobs + (1 - 1 / jobs) * max(per_variant) / 2
    refit = statistics.fmean(per_variant) * folds / max(folds - 1, 1)
    seconds = RUN_OVERHEAD_SECONDS + (PROCESS_START_SECONDS if jobs > 1 else 0) + cv + refit
    spread = SPREAD["history"] if sources == {"history"} else SPREAD["cost model"]
    where = f"{jobs} processes at once" if jobs > 1 else "one process"
    if sources == {"history"}:
        how = f"from your earlier runs on this data, {where}"
    elif "history" in sources:
        how = f"from your earlier runs on this data, the catalog's cost model for models they did not fit, {where}"
    else:
        how = (f"from the catalog's cost model for {rows:,} rows × {columns} columns (no earlier runs on this "
               f"data), {where}")
    return _range(seconds, spread) + (how,)


def _range(seconds, spread):
    return seconds, seconds / spread, seconds * spread


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
