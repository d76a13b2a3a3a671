"""The run spec: one JSON document that says everything needed to execute a run.

`validate_spec` is the only validator. The wizard, the API, the admin and the CLI all call it (the Django
side through experiments.models.validate_spec_for) and show its field-level errors, keyed by the dotted path
of the offending field ("models.0.params.alpha").

Three promises, each tested in tests/test_spec_*.py:
- Any JSON value at all gives either a normalised spec or SpecError; never another exception.
- Validation time is linear in the size of the input with a small constant: sizes are counted before
  anything is expanded, and nothing is handed to scikit-learn until the spec is known to be small.
- An accepted spec is bounded work: every count and every numeric parameter has a range, and total fits
  (branches x variants x folds) have one cap.

This module knows nothing of Django. What only the server knows (which CSV datasets and runs the owner may
use, and the configured ceilings) is passed in as `lookups` and `ceilings`.
"""

import itertools
from dataclasses import dataclass

from . import catalog
from .spec_checks import Errors, as_int, as_text, show, unknown_keys
from .spec_models import check_models, check_order, check_output_size, check_steps, check_stop_rule

MAX_VARIANTS = 500
MAX_FOLDS = 50
MAX_EPOCHS = 10_000
MAX_BRANCHES = 50
MAX_NAME_LENGTH = 100
MAX_TARGET_LENGTH = 200
MAX_DROPPED_COLUMNS = 1000  # settings.RUNWATCH["DATASET_MAX_COLUMNS"]'s default: a file has no more to leave out
MAX_DB_ID = 2**63 - 1  # PostgreSQL bigint; a larger id in a query is a database error, not "not found"
MIN_MEMORY_MB = 256  # Python with scikit-learn loaded needs about this much before any data

# The fields of each level of a spec, in the order the messages list them: anything else is refused.
SPEC_FIELDS = ("runner", "task", "dataset", "target", "drop_columns", "preprocessing", "branches", "models", "cv",
               "metric", "seed", "n_jobs", "training", "evaluation", "limits", "stop_rule")
DATASET_FIELDS = {
    "builtin": ("kind", "name"),
    "synthetic": ("kind", "generator", "n_samples", "n_features", "noise", "seed", "n_classes"),
    "csv": ("kind", "id", "sha256"),
}
BRANCH_FIELDS = ("name", "preprocessing")
CV_FIELDS = ("kind", "folds", "shuffle", "seed")
TRAINING_FIELDS = ("epochs", "patience", "validation_fraction")
EVALUATION_FIELDS = ("run",)
# A nested level's field written at the top ("folds": 5) is named with where it belongs.
NESTED_FIELDS = {**{f: "cv" for f in CV_FIELDS if f != "seed"}, **{f: "training" for f in TRAINING_FIELDS},
                 "estimator": "models", "params": "models", "name": "dataset"}


@dataclass(frozen=True)
class Ceilings:
    """Limits set by the server, not the spec. The Django side fills them from settings.RUNWATCH."""

    total_fits: int = 10_000
    time_seconds: int = 86_400
    memory_mb: int = 16_384
    n_jobs: int = 64
    # Who set the time and memory ceilings, for the messages: the server, or a user's quota (accounts.quotas).
    time_set_by: str = "the ceiling on this server"
    memory_set_by: str = "the ceiling on this server"


class SpecError(Exception):
    def __init__(self, errors):
        self.errors = errors  # {"dotted.path": ["message", ...]}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def validate_spec(data, *, lookups=None, ceilings=Ceilings()):
    """Returns the normalised spec, or raises SpecError with field-level errors.

    `lookups`, if given, answers `csv_dataset(id)` ({"sha256", "n_rows", "n_columns"}, and "columns", the
    column names, when known; or None) and
    `evaluable_run(id)` (bool) for the spec's owner. Without it, specs naming a CSV dataset or a run are
    refused, since nothing could check them.
    """
    if not isinstance(data, dict):
        raise SpecError({"spec": ["The spec must be a JSON object."]})
    errors = Errors()
    unknown_keys(errors, "", data, SPEC_FIELDS, NESTED_FIELDS)
    runner = data.get("runner", "cv")
    if not isinstance(runner, str) or runner not in catalog.RUNNERS:
        errors.add("runner", 'Must be "cv", "training" or "evaluation".')
        runner = None
    dataset, dataset_task, shape = _dataset(errors, data.get("dataset"), lookups)
    task = data.get("task", dataset_task)
    if not isinstance(task, str) or task not in catalog.METRICS:
        errors.add("task", 'Must be "classification" or "regression".')
        task = None
    elif dataset_task and task != dataset_task:
        errors.add("task", f"This dataset is a {dataset_task} dataset.")
    target = as_text(errors, "target", data.get("target", "target"), MAX_TARGET_LENGTH, "Name the target column.")

    spec = {"runner": runner, "task": task, "dataset": dataset, "target": target}
    if data.get("drop_columns"):  # absent or empty: every column but the target is a feature
        spec["drop_columns"] = _drop_columns(errors, data["drop_columns"], dataset, target, lookups)
        if shape is not None:
            shape = (shape[0], max(shape[1] - len(spec["drop_columns"]), 1))
    shared = check_steps(errors, "preprocessing", data.get("preprocessing"))
    spec["preprocessing"] = [step for _, step in shared]
    chains = _branches(errors, data.get("branches"), spec)
    for chain in chains or [[]]:
        check_output_size(errors, shared + chain, shape)
        check_order(errors, shared + chain)

    spec["seed"] = as_int(errors, "seed", data.get("seed", 42), 0, 2**31 - 1)
    if "n_jobs" in data:  # absent: the server's default (RUNWATCH_N_JOBS)
        spec["n_jobs"] = _n_jobs(errors, data["n_jobs"], ceilings)
        if runner in ("training", "evaluation") and spec["n_jobs"] not in (None, 1):
            # Each epoch continues from the last, and an evaluation scores one model: nothing to spread.
            errors.add("n_jobs", f"A {runner} run works in one process (n_jobs applies to cross-validation "
                                 "runs, whose fits are independent): leave it out or set 1.")
    n_variants = 1
    if runner == "evaluation":
        spec.update(_evaluation(errors, data.get("evaluation"), lookups))
        spec["models"] = []
    else:
        spec["models"], n_variants = check_models(errors, data.get("models"), task, MAX_VARIANTS)
    spec["cv"] = _cv(errors, data.get("cv"), task, spec["seed"])
    spec["metric"] = _metric(errors, data.get("metric"), task)
    if runner == "training":
        spec["training"] = _training(errors, data.get("training"), spec["models"])
    if data.get("stop_rule") is not None:  # absent or null: every fit runs
        spec["stop_rule"] = check_stop_rule(errors, data["stop_rule"], runner, spec["cv"]["folds"], task,
                                            spec["metric"])
    limits = _limits(errors, data.get("limits"), ceilings)
    if limits is not None:
        spec["limits"] = limits

    if runner != "evaluation" and n_variants is not None:
        per_chain = spec["training"]["epochs"] if runner == "training" else spec["cv"]["folds"]
        if per_chain is not None:
            fits = max(1, len(chains)) * n_variants * per_chain
            if fits > ceilings.total_fits:
                unit = "epochs" if runner == "training" else "folds"
                errors.add("spec", f"{fits:,} fits ({max(1, len(chains))} branches x {n_variants} variants x "
                                   f"{per_chain} {unit}); at most {ceilings.total_fits:,} are allowed. Use fewer "
                                   f"branches, parameter values or {unit}.")
    if errors:
        raise SpecError(errors.result())
    return spec


def _dataset(errors, ref, lookups):
    """Returns (dataset ref, its task or None, its (rows, feature columns) or None)."""
    if not isinstance(ref, dict):
        errors.add("dataset", 'Required: {"kind": "builtin", "name": "iris"}, a synthetic generator or a CSV id.')
        return None, None, None
    kind = ref.get("kind")
    if isinstance(kind, str) and kind in DATASET_FIELDS:
        unknown_keys(errors, "dataset", ref, DATASET_FIELDS[kind])
    if kind == "builtin":
        name = ref.get("name")
        if not isinstance(name, str) or name not in catalog.BUILTIN_DATASETS:
            errors.add("dataset.name", f"Unknown dataset. Choose one of: {', '.join(catalog.BUILTIN_DATASETS)}.")
            return None, None, None
        return {"kind": "builtin", "name": name}, catalog.BUILTIN_DATASETS[name][0], catalog.BUILTIN_SHAPES[name]
    if kind == "synthetic":
        return _synthetic(errors, ref)
    if kind == "csv":
        dataset_id = ref.get("id")
        if isinstance(dataset_id, bool) or not isinstance(dataset_id, int) or not 1 <= dataset_id <= MAX_DB_ID:
            errors.add("dataset.id", "Give the id of an uploaded CSV dataset.")
            return None, None, None
        found = lookups.csv_dataset(dataset_id) if lookups is not None else None
        if found is None:
            errors.add("dataset.id", f"No CSV dataset {dataset_id} that you can use.")
            return None, None, None
        shape = (found["n_rows"], max(found["n_columns"] - 1, 1))  # one column is the target
        return {"kind": "csv", "id": dataset_id, "sha256": found["sha256"]}, None, shape
    errors.add("dataset.kind", 'Must be "builtin", "synthetic" or "csv".')
    return None, None, None


def _drop_columns(errors, names, dataset, target, lookups):
    """The uploaded CSV's columns to leave out of the features (an index, a name, an ID), checked by name."""
    message = "Must be a list of the dataset's column names to leave out."
    if not isinstance(names, list):
        errors.add("drop_columns", message)
        return []
    if len(names) > MAX_DROPPED_COLUMNS:
        errors.add("drop_columns", f"{len(names):,} columns; at most {MAX_DROPPED_COLUMNS:,} can be left out.")
        return []
    if dataset is None or dataset["kind"] != "csv":
        if dataset is not None:
            errors.add("drop_columns", "Columns can be left out of an uploaded CSV dataset only.")
        return []
    known = (lookups.csv_dataset(dataset["id"]) or {}).get("columns")
    clean = []
    for i, name in enumerate(names):
        name = as_text(errors, f"drop_columns.{i}", name, MAX_TARGET_LENGTH, message)
        if name is None:
            continue
        if name == target:
            errors.add(f"drop_columns.{i}", f"{show(name)} is the target column; it cannot also be left out.")
        elif known is not None and name not in known:
            errors.add(f"drop_columns.{i}", f"The dataset has no column {show(name)}.")
        elif name not in clean:
            clean.append(name)
    return clean


def _synthetic(errors, ref):
    gen = ref.get("generator", "classification")
    if not isinstance(gen, str) or gen not in catalog.SYNTHETIC_GENERATORS:
        errors.add("dataset.generator", f"Choose one of: {', '.join(catalog.SYNTHETIC_GENERATORS)}.")
        return None, None, None
    clean = {"kind": "synthetic", "generator": gen}
    for key, default in (("n_samples", 1000), ("n_features", 20)):
        lo, hi = catalog.SYNTHETIC_LIMITS[key]
        clean[key] = as_int(errors, f"dataset.{key}", ref.get(key, default), lo, hi)
    noise = ref.get("noise", 0.1)
    lo, hi = catalog.SYNTHETIC_LIMITS["noise"]
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not lo <= noise <= hi:
        errors.add("dataset.noise", f"Must be a number between {lo} and {hi}.")
    clean["noise"] = noise
    clean["seed"] = as_int(errors, "dataset.seed", ref.get("seed", 0), 0, 2**31 - 1)
    if gen == "classification":
        clean["n_classes"] = as_int(errors, "dataset.n_classes", ref.get("n_classes", 2), 2, 50)
    shape = None
    if clean["n_samples"] is not None and clean["n_features"] is not None:
        shape = (clean["n_samples"], clean["n_features"])
        if shape[0] * shape[1] > catalog.MAX_MATRIX_VALUES:
            errors.add("dataset.n_samples", f"{shape[0]:,} rows x {shape[1]:,} features is too much data; at most "
                                            f"{catalog.MAX_MATRIX_VALUES:,} values are allowed.")
            shape = None
    return clean, catalog.SYNTHETIC_GENERATORS[gen][0], shape


def _branches(errors, branches, spec):
    """Fills spec["branches"]; returns each branch's own steps as (path, step) lists."""
    spec["branches"] = []
    if branches is None:
        return []
    if not isinstance(branches, list):
        errors.add("branches", "Must be a list of {name, preprocessing}.")
        return []
    if len(branches) > MAX_BRANCHES:
        errors.add("branches", f"{len(branches):,} branches; at most {MAX_BRANCHES} are allowed.")
        return []
    chains, names = [], set()
    for i, branch in enumerate(branches):
        unknown_keys(errors, f"branches.{i}", branch, BRANCH_FIELDS)
        name = branch.get("name") if isinstance(branch, dict) else None
        if not isinstance(name, str) or not name.strip():
            errors.add(f"branches.{i}.name", "Each branch needs a name.")
            continue
        name = as_text(errors, f"branches.{i}.name", name.strip(), MAX_NAME_LENGTH, "Each branch needs a name.")
        if name is None:
            continue
        if name in names:
            errors.add(f"branches.{i}.name", "Branch names must be unique.")
        names.add(name)
        steps = check_steps(errors, f"branches.{i}.preprocessing", branch.get("preprocessing"))
        spec["branches"].append({"name": name, "preprocessing": [step for _, step in steps]})
        chains.append(steps)
    return chains


def _cv(errors, cv, task, seed):
    if cv is None:
        cv = {}
    if not isinstance(cv, dict):
        errors.add("cv", "Must be an object with kind, folds, shuffle and seed.")
        cv = {}
    unknown_keys(errors, "cv", cv, CV_FIELDS)
    kind = cv.get("kind", "stratified_kfold" if task == "classification" else "kfold")
    if not isinstance(kind, str) or kind not in catalog.CV_KINDS:
        errors.add("cv.kind", f"Choose one of: {', '.join(sorted(catalog.CV_KINDS))}.")
        kind = None
    elif kind == "stratified_kfold" and task == "regression":
        errors.add("cv.kind", "Stratified folds need a classification task.")
    shuffle = cv.get("shuffle", True)
    if not isinstance(shuffle, bool):
        errors.add("cv.shuffle", "Must be true or false.")
    return {
        "kind": kind,
        "folds": as_int(errors, "cv.folds", cv.get("folds", 5), 2, MAX_FOLDS),
        "shuffle": shuffle,
        "seed": as_int(errors, "cv.seed", cv.get("seed", seed or 0), 0, 2**31 - 1),
    }


def _metric(errors, metric, task):
    if metric is None or metric == "":
        return next(iter(catalog.METRICS[task])) if task else None
    if not isinstance(metric, str) or (task and metric not in catalog.METRICS[task]):
        names = ", ".join(catalog.METRICS[task]) if task else ", ".join(sorted({m for t in catalog.METRICS.values()
                                                                                 for m in t}))
        errors.add("metric", f"For {task}, choose one of: {names}." if task else f"Choose one of: {names}.")
        return None
    return metric


def _training(errors, training, models):
    if training is None:
        training = {}
    if not isinstance(training, dict):
        errors.add("training", "Must be an object with epochs, patience and validation_fraction.")
        training = {}
    unknown_keys(errors, "training", training, TRAINING_FIELDS)
    for i, model in enumerate(models):
        if not catalog.ESTIMATORS[model["estimator"]][3]:
            errors.add(f"models.{i}.estimator", "Epoch training needs an estimator with partial_fit (SGD, MLP, …).")
    fraction = training.get("validation_fraction", 0.2)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.05 <= fraction <= 0.5:
        errors.add("training.validation_fraction", "Must be between 0.05 and 0.5.")
    return {
        "epochs": as_int(errors, "training.epochs", training.get("epochs", 30), 1, MAX_EPOCHS),
        "patience": as_int(errors, "training.patience", training.get("patience", 5), 1, MAX_EPOCHS),
        "validation_fraction": fraction,
    }


def _evaluation(errors, evaluation, lookups):
    unknown_keys(errors, "evaluation", evaluation, EVALUATION_FIELDS)
    run_id = evaluation.get("run") if isinstance(evaluation, dict) else None
    if isinstance(run_id, bool) or not isinstance(run_id, int) or not 1 <= run_id <= MAX_DB_ID:
        errors.add("evaluation.run", "Give the id of a completed run whose model to evaluate.")
        return {"evaluation": {}}
    if lookups is None or not lookups.evaluable_run(run_id):
        errors.add("evaluation.run", f"No completed run {run_id} with an exported model that you can use.")
    return {"evaluation": {"run": run_id}}


def _n_jobs(errors, value, ceilings):
    """How many fits run at once: -1 for every core the worker may use, else 1 up to the server's ceiling."""
    message = (f"Must be -1 (every core the worker may use) or a whole number from 1 to {ceilings.n_jobs}, the "
               f"ceiling on this server.")
    n = as_int(errors, "n_jobs", value, -1, ceilings.n_jobs, message)
    if n == 0:
        errors.add("n_jobs", message)
        return None
    return n


def _limits(errors, limits, ceilings):
    """The optional per-run limits, each up to the server's ceiling; None when the spec sets none."""
    if limits is None:
        return None
    if not isinstance(limits, dict):
        errors.add("limits", 'Must be an object: {"time_seconds": 3600, "memory_mb": 2048}.')
        return None
    clean = {}
    unknown_keys(errors, "limits", limits, ("time_seconds", "memory_mb"))
    if "time_seconds" in limits:
        clean["time_seconds"] = as_int(
            errors, "limits.time_seconds", limits["time_seconds"], 1, ceilings.time_seconds,
            f"Must be a whole number of seconds between 1 and {ceilings.time_seconds}, {ceilings.time_set_by}.")
    if "memory_mb" in limits:
        clean["memory_mb"] = as_int(
            errors, "limits.memory_mb", limits["memory_mb"], MIN_MEMORY_MB, ceilings.memory_mb,
            f"Must be a whole number of megabytes between {MIN_MEMORY_MB} and {ceilings.memory_mb}, "
            f"{ceilings.memory_set_by}.")
    return clean


def expand_grid(grid):
    """The parameter variants of one model: every combination of its grid, in a stable order."""
    keys = sorted(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values))


def branches(spec):
    """(name, steps) for each preprocessing chain; shared steps come before a branch's own."""
    if not spec["branches"]:
        return [("default", spec["preprocessing"])]
    return [(b["name"], spec["preprocessing"] + b["preprocessing"]) for b in spec["branches"]]


def variants(spec):
    """Every (model, params) pair, numbered from 1 across all models."""
    out = []
    for model in spec["models"]:
        for params in expand_grid(model["params"]):
            out.append({"index": len(out) + 1, "estimator": model["estimator"], "label": model["label"], "params": params})
    return out


def describe_variant(variant):
    params = ", ".join(f"{k}={v}" for k, v in variant["params"].items())
    return f"{variant['label']}({params})" if params else variant["label"]


def total_fits(spec):
    if spec["runner"] == "evaluation":
        return 1
    if spec["runner"] == "training":
        return len(variants(spec)) * spec["training"]["epochs"] * len(branches(spec))
    return len(branches(spec)) * len(variants(spec)) * spec["cv"]["folds"]
