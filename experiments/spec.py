"""The run spec: one JSON document that says everything needed to execute a run.

`validate_spec` is the only validator. The wizard, the API, the admin and the CLI all call it and show its
field-level errors, keyed by the dotted path of the offending field ("models.0.params.alpha").
"""

import copy
import itertools
import math

from . import catalog

MAX_VARIANTS = 500
MAX_FOLDS = 50
MAX_EPOCHS = 10_000


class SpecError(Exception):
    def __init__(self, errors):
        self.errors = errors  # {"dotted.path": ["message", ...]}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


class _Errors(dict):
    def add(self, path, message):
        self.setdefault(path or "spec", []).append(message)


def _is_scalar(value):
    return value is None or isinstance(value, (str, bool, int, float)) and not (
        isinstance(value, float) and not math.isfinite(value)
    )


def _int(errors, path, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, "Must be a whole number.")
        return None
    if not lo <= value <= hi:
        errors.add(path, f"Must be between {lo} and {hi}.")
        return None
    return value


def _steps(errors, path, steps):
    if steps is None:
        return []
    if not isinstance(steps, list):
        errors.add(path, "Must be a list of preprocessing steps.")
        return []
    clean = []
    for i, step in enumerate(steps):
        if isinstance(step, str):
            step = {"name": step}
        if not isinstance(step, dict) or "name" not in step:
            errors.add(f"{path}.{i}", 'Each step needs a "name".')
            continue
        name = step["name"]
        if name not in catalog.PREPROCESSING:
            choices = ", ".join(sorted(catalog.PREPROCESSING))
            errors.add(f"{path}.{i}.name", f"Unknown step {name!r}. Choose one of: {choices}.")
            continue
        params = step.get("params") or {}
        allowed = catalog.PREPROCESSING[name][2]
        if not isinstance(params, dict):
            errors.add(f"{path}.{i}.params", "Must be an object of parameter values.")
            continue
        for key, value in params.items():
            kind = allowed.get(key)
            if kind is None:
                errors.add(f"{path}.{i}.params.{key}", f"{name} has no parameter {key!r}.")
            elif kind == "bool" and not isinstance(value, bool):
                errors.add(f"{path}.{i}.params.{key}", "Must be true or false.")
            elif kind == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                errors.add(f"{path}.{i}.params.{key}", "Must be a positive whole number.")
            elif kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                errors.add(f"{path}.{i}.params.{key}", "Must be a positive number.")
            elif kind.startswith("choice:") and value not in kind[7:].split("|"):
                errors.add(f"{path}.{i}.params.{key}", f"Must be one of: {kind[7:].replace('|', ', ')}.")
        clean.append({"name": name, "params": dict(params)})
    return clean


def _dataset(errors, data, owner):
    """Returns (dataset ref, its task or None)."""
    ref = data.get("dataset")
    if not isinstance(ref, dict):
        errors.add("dataset", 'Required: {"kind": "builtin", "name": "iris"}, a synthetic generator or a CSV id.')
        return None, None
    kind = ref.get("kind")
    if kind == "builtin":
        name = ref.get("name")
        if name not in catalog.BUILTIN_DATASETS:
            errors.add("dataset.name", f"Unknown dataset. Choose one of: {', '.join(catalog.BUILTIN_DATASETS)}.")
            return None, None
        return {"kind": "builtin", "name": name}, catalog.BUILTIN_DATASETS[name][0]
    if kind == "synthetic":
        gen = ref.get("generator", "classification")
        if gen not in catalog.SYNTHETIC_GENERATORS:
            errors.add("dataset.generator", f"Choose one of: {', '.join(catalog.SYNTHETIC_GENERATORS)}.")
            return None, None
        clean = {"kind": "synthetic", "generator": gen}
        for key, default in (("n_samples", 1000), ("n_features", 20)):
            lo, hi = catalog.SYNTHETIC_LIMITS[key]
            clean[key] = _int(errors, f"dataset.{key}", ref.get(key, default), lo, hi)
        clean["noise"] = ref.get("noise", 0.1)
        if isinstance(clean["noise"], bool) or not isinstance(clean["noise"], (int, float)) or clean["noise"] < 0:
            errors.add("dataset.noise", "Must be a number of at least 0.")
        clean["seed"] = _int(errors, "dataset.seed", ref.get("seed", 0), 0, 2**31 - 1)
        if gen == "classification":
            clean["n_classes"] = _int(errors, "dataset.n_classes", ref.get("n_classes", 2), 2, 50)
        return clean, catalog.SYNTHETIC_GENERATORS[gen][0]
    if kind == "csv":
        from .models import Dataset

        dataset_id = ref.get("id")
        if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
            errors.add("dataset.id", "Give the id of an uploaded CSV dataset.")
            return None, None
        found = Dataset.objects.filter(pk=dataset_id, kind=Dataset.Kind.CSV)
        if owner is not None and not owner.is_staff:
            found = found.filter(owner=owner)
        dataset = found.first()
        if dataset is None:
            errors.add("dataset.id", f"No CSV dataset {dataset_id} that you can use.")
            return None, None
        return {"kind": "csv", "id": dataset.pk, "sha256": dataset.sha256}, None
    errors.add("dataset.kind", 'Must be "builtin", "synthetic" or "csv".')
    return None, None


def _models(errors, data, task):
    from sklearn.base import clone
    from sklearn.utils._param_validation import InvalidParameterError

    models = data.get("models")
    if not isinstance(models, list) or not models:
        errors.add("models", "Add at least one model.")
        return []
    clean = []
    for i, model in enumerate(models):
        if isinstance(model, str):
            model = {"estimator": model}
        if not isinstance(model, dict) or model.get("estimator") not in catalog.ESTIMATORS:
            errors.add(f"models.{i}.estimator", "Unknown estimator.")
            continue
        module, cls_name, tasks, _ = catalog.ESTIMATORS[model["estimator"]]
        if task and task not in tasks:
            errors.add(f"models.{i}.estimator", f"{cls_name} cannot be used for {task}.")
            continue
        grid = model.get("params") or {}
        if not isinstance(grid, dict):
            errors.add(f"models.{i}.params", "Must be an object: parameter name to a list of values.")
            continue
        grid = {k: v if isinstance(v, list) else [v] for k, v in grid.items()}
        estimator = catalog.load_class(module, cls_name)()
        valid = estimator.get_params()
        ok = True
        for key, values in grid.items():
            if key not in valid:
                errors.add(f"models.{i}.params.{key}", f"{cls_name} has no parameter {key!r}.")
                ok = False
            elif not values:
                errors.add(f"models.{i}.params.{key}", "Give at least one value.")
                ok = False
            elif not all(_is_scalar(v) for v in values):
                errors.add(f"models.{i}.params.{key}", "Values must be numbers, strings, booleans or null.")
                ok = False
        if ok:
            for key, values in grid.items():
                for value in values:
                    try:
                        clone(estimator).set_params(**{key: value})._validate_params()
                    except (InvalidParameterError, ValueError, TypeError) as e:
                        errors.add(f"models.{i}.params.{key}", str(e).split("\n")[0])
                        break
        clean.append({"estimator": model["estimator"], "params": grid, "label": model.get("label") or cls_name})
    return clean


def validate_spec(data, owner=None):
    """Returns the normalised spec, or raises SpecError with field-level errors."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise SpecError({"spec": ["The spec must be a JSON object."]})
    data = copy.deepcopy(data)
    runner = data.get("runner", "cv")
    if runner not in catalog.RUNNERS:
        errors.add("runner", 'Must be "cv", "training" or "evaluation".')
    dataset, dataset_task = _dataset(errors, data, owner)
    task = data.get("task", dataset_task)
    if task not in catalog.METRICS:
        errors.add("task", 'Must be "classification" or "regression".')
        task = None
    elif dataset_task and task != dataset_task:
        errors.add("task", f"This dataset is a {dataset_task} dataset.")
    target = data.get("target", "target")
    if not isinstance(target, str) or not target:
        errors.add("target", "Name the target column.")

    spec = {"runner": runner, "task": task, "dataset": dataset, "target": target}
    spec["preprocessing"] = _steps(errors, "preprocessing", data.get("preprocessing"))
    branches = data.get("branches") or []
    if not isinstance(branches, list):
        errors.add("branches", "Must be a list of {name, preprocessing}.")
        branches = []
    spec["branches"] = []
    names = set()
    for i, branch in enumerate(branches):
        if not isinstance(branch, dict) or not isinstance(branch.get("name"), str) or not branch["name"].strip():
            errors.add(f"branches.{i}.name", "Each branch needs a name.")
            continue
        if branch["name"] in names:
            errors.add(f"branches.{i}.name", "Branch names must be unique.")
        names.add(branch["name"])
        steps = _steps(errors, f"branches.{i}.preprocessing", branch.get("preprocessing"))
        spec["branches"].append({"name": branch["name"].strip(), "preprocessing": steps})

    seed = data.get("seed", 42)
    spec["seed"] = _int(errors, "seed", seed, 0, 2**31 - 1)
    if runner == "evaluation":
        spec.update(_evaluation(errors, data, owner))
        spec["models"] = []
    else:
        spec["models"] = _models(errors, data, task)
        n_variants = sum(len(list(expand_grid(m["params"]))) for m in spec["models"])
        if n_variants > MAX_VARIANTS:
            errors.add("models", f"{n_variants} parameter variants; at most {MAX_VARIANTS} are allowed.")

    cv = data.get("cv") or {}
    if not isinstance(cv, dict):
        errors.add("cv", "Must be an object with kind, folds, shuffle and seed.")
        cv = {}
    kind = cv.get("kind", "stratified_kfold" if task == "classification" else "kfold")
    if kind not in catalog.CV_KINDS:
        errors.add("cv.kind", f"Choose one of: {', '.join(sorted(catalog.CV_KINDS))}.")
    if kind == "stratified_kfold" and task == "regression":
        errors.add("cv.kind", "Stratified folds need a classification task.")
    shuffle = cv.get("shuffle", True)
    if not isinstance(shuffle, bool):
        errors.add("cv.shuffle", "Must be true or false.")
    spec["cv"] = {
        "kind": kind,
        "folds": _int(errors, "cv.folds", cv.get("folds", 5), 2, MAX_FOLDS),
        "shuffle": shuffle,
        "seed": _int(errors, "cv.seed", cv.get("seed", spec["seed"] or 0), 0, 2**31 - 1),
    }
    metric = data.get("metric") or (next(iter(catalog.METRICS[task])) if task else None)
    if task and metric not in catalog.METRICS[task]:
        errors.add("metric", f"For {task}, choose one of: {', '.join(catalog.METRICS[task])}.")
    spec["metric"] = metric

    if runner == "training":
        spec["training"] = _training(errors, data, spec["models"])
    if errors:
        raise SpecError(dict(errors))
    return spec


def _training(errors, data, models):
    training = data.get("training") or {}
    if not isinstance(training, dict):
        errors.add("training", "Must be an object with epochs, patience and validation_fraction.")
        training = {}
    for i, model in enumerate(models):
        if not catalog.ESTIMATORS[model["estimator"]][3]:
            errors.add(f"models.{i}.estimator", "Epoch training needs an estimator with partial_fit (SGD, MLP, …).")
    fraction = training.get("validation_fraction", 0.2)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.05 <= fraction <= 0.5:
        errors.add("training.validation_fraction", "Must be between 0.05 and 0.5.")
    return {
        "epochs": _int(errors, "training.epochs", training.get("epochs", 30), 1, MAX_EPOCHS),
        "patience": _int(errors, "training.patience", training.get("patience", 5), 1, MAX_EPOCHS),
        "validation_fraction": fraction,
    }


def _evaluation(errors, data, owner):
    from runs.models import Run

    evaluation = data.get("evaluation") or {}
    run_id = evaluation.get("run") if isinstance(evaluation, dict) else None
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        errors.add("evaluation.run", "Give the id of a completed run whose model to evaluate.")
        return {"evaluation": {}}
    found = Run.objects.filter(pk=run_id, status=Run.Status.COMPLETED).exclude(model_file="")
    if owner is not None and not owner.is_staff:
        found = found.filter(owner=owner)
    if not found.exists():
        errors.add("evaluation.run", f"No completed run {run_id} with an exported model that you can use.")
    return {"evaluation": {"run": run_id}}


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
