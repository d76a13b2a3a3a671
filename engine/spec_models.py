"""The spec's models (estimators and their parameter grids) and preprocessing steps.

Models are checked in two passes. The first looks only at shapes and sizes: how many models, how many values
per parameter, and so how many variants. Only when that count is under the cap does the second pass hand
each value to scikit-learn's own parameter check and to the ranges in catalog.PARAM_RANGES. So a spec of
10,000 models x 100 values costs a length check, not a million scikit-learn calls.
"""

import math

from . import catalog
from .spec_checks import as_int, as_text, close_match, is_number, is_scalar, number, show, unknown_keys

MAX_MODELS = 50
MAX_GRID_VALUES = 100
MAX_STEPS = 20
MAX_LABEL_LENGTH = 100
MAX_TEXT_VALUE_LENGTH = 100
STEP_FIELDS = ("name", "params")
MODEL_FIELDS = ("estimator", "params", "label")


# --- Preprocessing --------------------------------------------------------------------------------------


def check_steps(errors, path, steps):
    """A list of preprocessing steps; returns the valid ones as (path, {"name", "params"}) pairs."""
    if steps is None:
        return []
    if not isinstance(steps, list):
        errors.add(path, "Must be a list of preprocessing steps.")
        return []
    if len(steps) > MAX_STEPS:
        errors.add(path, f"{len(steps):,} steps; at most {MAX_STEPS} are allowed.")
        return []
    clean = []
    for i, step in enumerate(steps):
        if isinstance(step, str):
            step = {"name": step}
        if not isinstance(step, dict) or "name" not in step:
            errors.add(f"{path}.{i}", 'Each step needs a "name".')
            continue
        unknown_keys(errors, f"{path}.{i}", step, STEP_FIELDS)
        name = step["name"]
        if not isinstance(name, str) or name not in catalog.PREPROCESSING:
            choices = ", ".join(sorted(catalog.PREPROCESSING))
            errors.add(f"{path}.{i}.name", f"Unknown step {show(name)}. Choose one of: {choices}.")
            continue
        params = step.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            errors.add(f"{path}.{i}.params", "Must be an object of parameter values.")
            continue
        kinds = catalog.PREPROCESSING[name][2]
        for key, value in params.items():
            _step_param(errors, f"{path}.{i}.params.{show(key, quote=False)}", name, key, kinds.get(key), value)
        clean.append((f"{path}.{i}", {"name": name, "params": dict(params)}))
    return clean


def _step_param(errors, path, step, key, kind, value):
    if kind is None:
        errors.add(path, f"{step} has no parameter {show(key)}.")
    elif kind == "bool":
        if not isinstance(value, bool):
            errors.add(path, "Must be true or false.")
    elif isinstance(kind, str) and kind.startswith("choice:"):
        if not isinstance(value, str) or value not in kind[7:].split("|"):
            errors.add(path, f"Must be one of: {kind[7:].replace('|', ', ')}.")
    elif kind[0] == "int":
        as_int(errors, path, value, kind[1], kind[2], f"Must be a whole number between {kind[1]} and {kind[2]}.")
    elif kind[0] == "number":
        if not is_number(value) or not kind[1] < value <= kind[2]:
            errors.add(path, f"Must be a number above {kind[1]} and at most {kind[2]}.")


def check_order(errors, chain):
    """Refuse a categorical_imputer after the encoder: it fills text columns, which are numbers by then."""
    encoded = False
    for path, step in chain:
        if step["name"] in catalog.ENCODERS:
            encoded = True
        elif step["name"] in catalog.CATEGORICAL_IMPUTERS and encoded:
            errors.add(f"{path}.name", "A categorical_imputer fills text columns before they are encoded: put it "
                                       "before the one_hot_encoder.")


def check_output_size(errors, chain, shape):
    """Refuse a chain whose feature matrix would outgrow catalog.MAX_MATRIX_VALUES (polynomial features).

    `shape` is the dataset's (rows, feature columns), or None when unknown. After one-hot encoding the width
    depends on the categories in the data, so the check stops there; the degree's own range still holds.
    """
    if shape is None:
        return
    rows, width = shape
    for path, step in chain:
        name, params = step["name"], step["params"]
        if name == "one_hot_encoder":
            return
        if name == "pca":
            n = params.get("n_components")
            if is_number(n) and n >= 1:
                width = min(width, int(n))
        elif name == "select_k_best":
            k = params.get("k", 10)
            if isinstance(k, int) and not isinstance(k, bool) and k >= 1:
                width = min(width, k)
        elif name == "polynomial_features":
            degree = params.get("degree", 2)
            if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= 5:
                return  # already reported by check_steps
            before, width = width, math.comb(width + degree, degree)
            if rows * width > catalog.MAX_MATRIX_VALUES:
                errors.add(f"{path}.params.degree",
                           f"Degree {degree} turns {before:,} features into {width:,} columns, {rows * width:,} "
                           f"values for {rows:,} rows; at most {catalog.MAX_MATRIX_VALUES:,} are allowed. Lower the "
                           "degree, or reduce the features first (pca, select_k_best).")
                return


# --- Models ---------------------------------------------------------------------------------------------


def check_models(errors, models, task, max_variants):
    """Returns (clean models, number of variants); the count is None when the models could not be counted."""
    if not isinstance(models, list) or not models:
        errors.add("models", "Add at least one model.")
        return [], None
    if len(models) > MAX_MODELS:
        errors.add("models", f"{len(models):,} models; at most {MAX_MODELS} are allowed.")
        return [], None
    shaped = [_model_shape(errors, i, model, task) for i, model in enumerate(models)]
    shaped = [m for m in shaped if m is not None]
    n_variants = sum(math.prod(len(values) for values in m["params"].values()) for m in shaped)
    if n_variants > max_variants:
        errors.add("models", f"{n_variants} parameter variants; at most {max_variants} are allowed.")
        return [], None
    for entry in shaped:
        _check_values(errors, entry)
        del entry["index"]
    return shaped, n_variants


def _model_shape(errors, i, model, task):
    """Pass 1: names, types and sizes only. Returns {"index", "estimator", "params", "label"} or None."""
    if isinstance(model, str):
        model = {"estimator": model}
    if not isinstance(model, dict):
        errors.add(f"models.{i}", 'Must be an estimator name or {"estimator", "params", "label"}.')
        return None
    unknown_keys(errors, f"models.{i}", model, MODEL_FIELDS)
    name = model.get("estimator")
    if not isinstance(name, str) or name not in catalog.ESTIMATORS:
        errors.add(f"models.{i}.estimator", "Unknown estimator.")
        return None
    _, cls_name, tasks, _ = catalog.ESTIMATORS[name]
    if task and task not in tasks:
        errors.add(f"models.{i}.estimator", f"{cls_name} cannot be used for {task}.")
        return None
    label = model.get("label")
    if label is None or label == "":
        label = cls_name
    label = as_text(errors, f"models.{i}.label", label, MAX_LABEL_LENGTH, "Must be text: the model's name in results.")
    grid = model.get("params")
    if grid is None:
        grid = {}
    if not isinstance(grid, dict):
        errors.add(f"models.{i}.params", "Must be an object: parameter name to a list of values.")
        return None
    valid = _param_names(name)
    clean, ok = {}, label is not None
    for key, values in grid.items():
        path = f"models.{i}.params.{show(key, quote=False)}"
        values = list(values) if isinstance(values, list) else [values]
        if key not in valid:
            close = close_match(key, sorted(valid))
            errors.add(path, f"{cls_name} has no parameter {show(key)}." + (f" Did you mean {close!r}?" if close else ""))
        elif key == "n_jobs":
            errors.add(path, 'Runwatch sets n_jobs itself; for fits in parallel give the spec\'s own "n_jobs".')
        elif key in catalog.FIXED_PARAMS:
            errors.add(path, f"Runwatch sets {key} itself; leave it out.")
        elif not values:
            errors.add(path, "Give at least one value.")
        elif len(values) > MAX_GRID_VALUES:
            errors.add(path, f"{len(values):,} values; at most {MAX_GRID_VALUES} are allowed per parameter.")
        else:
            clean[key] = values
            continue
        ok = False
    if not ok:
        return None
    return {"index": i, "estimator": name, "params": clean, "label": label}


def _param_names(estimator):
    module, cls_name, _, _ = catalog.ESTIMATORS[estimator]
    return set(catalog.load_class(module, cls_name)._get_param_names())


def _check_values(errors, entry):
    """Pass 2, on a spec already known to be small: each value's type, scikit-learn's check, then our range."""
    from sklearn.utils._param_validation import validate_parameter_constraints

    module, cls_name, _, _ = catalog.ESTIMATORS[entry["estimator"]]
    constraints = getattr(catalog.load_class(module, cls_name), "_parameter_constraints", {})
    for key, values in entry["params"].items():
        path = f"models.{entry['index']}.params.{key}"
        for j, value in enumerate(values):
            if key == "hidden_layer_sizes" and isinstance(value, list):
                value = values[j] = _hidden_layers(errors, f"{path}.{j}", value)
                if value is None:
                    continue
            elif not is_scalar(value):
                errors.add(path, "Values must be numbers, strings, booleans or null.")
                break
            elif isinstance(value, str) and len(value) > MAX_TEXT_VALUE_LENGTH:
                errors.add(f"{path}.{j}", f"At most {MAX_TEXT_VALUE_LENGTH} characters.")
                continue
            try:
                validate_parameter_constraints({key: constraints[key]} if key in constraints else {}, {key: value},
                                               caller_name=cls_name)
            except (ValueError, TypeError) as e:  # InvalidParameterError is both
                errors.add(path, str(e).split("\n")[0])
                break
            if key == "hidden_layer_sizes" and is_number(value):
                _hidden_layers(errors, f"{path}.{j}", [value])
            elif is_number(value):
                _in_range(errors, f"{path}.{j}", entry["estimator"], key, value)


def _in_range(errors, path, estimator, key, value):
    bounds = catalog.param_range(estimator, key)
    if bounds is None:
        errors.add(path, f"{key} cannot be set to a number here.")
    elif not bounds[0] <= value <= bounds[1]:
        errors.add(path, f"Must be between {number(bounds[0])} and {number(bounds[1])}.")


def _hidden_layers(errors, path, layers):
    """MLP layer sizes: a list of whole numbers, each and all together bounded. Returns a clean copy or None."""
    if not layers or len(layers) > catalog.MAX_HIDDEN_LAYERS:
        errors.add(path, f"Give 1 to {catalog.MAX_HIDDEN_LAYERS} layer sizes.")
        return None
    for size in layers:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= catalog.MAX_LAYER_UNITS:
            errors.add(path, f"Each layer must be a whole number between 1 and {catalog.MAX_LAYER_UNITS}.")
            return None
    if sum(layers) > catalog.MAX_HIDDEN_UNITS:
        errors.add(path, f"{sum(layers):,} units in all; at most {catalog.MAX_HIDDEN_UNITS} are allowed.")
        return None
    return list(layers)


# --- Stop rule ------------------------------------------------------------------------------------------

STOP_RULE_FIELDS = {"median": ("kind", "after_folds"), "successive_halving": ("kind", "factor"),
                    "target": ("kind", "value")}
MAX_HALVING_FACTOR = 100
# The values a metric can take, for a target it could ever reach: (low, high), None for no bound. A metric not
# listed (a new one) is bounded by its direction only: an error (lower is better) is never negative.
METRIC_RANGES = {"accuracy": (0, 1), "f1_macro": (0, 1), "roc_auc": (0, 1), "r2": (None, 1), "rmse": (0, None),
                 "mae": (0, None)}


def check_stop_rule(errors, rule, runner, folds, task, metric):
    """The optional stop rule (engine/runners/stop_rules.py says what each does); returns the clean rule or None."""
    if rule is None:
        return None
    kinds = ", ".join(f'"{k}"' for k in STOP_RULE_FIELDS)
    if not isinstance(rule, dict):
        errors.add("stop_rule", f'Must be an object such as {{"kind": "median", "after_folds": 2}}; kind is one of {kinds}.')
        return None
    kind = rule.get("kind")
    if not isinstance(kind, str) or kind not in STOP_RULE_FIELDS:
        errors.add("stop_rule.kind", f"Unknown stop rule {show(kind)}. Choose one of: {kinds}.")
        return None
    unknown_keys(errors, "stop_rule", rule, STOP_RULE_FIELDS[kind])
    if runner not in (None, "cv"):
        errors.add("stop_rule", "A stop rule prunes the variants of a cross-validation run by their folds; a "
                                f"{runner} run has none. Leave it out.")
        return None
    if kind == "median":
        top = folds if isinstance(folds, int) else 50
        after = as_int(errors, "stop_rule.after_folds", rule.get("after_folds", 1), 1, top,
                       f"Must be a whole number of folds from 1 to {top}, the run's folds.")
        if after is not None and after == folds:
            errors.add("stop_rule.after_folds", f"After {after} of {folds} folds nothing is left to save: choose "
                                                "fewer folds, or more folds in cv.")
        return {"kind": kind, "after_folds": after}
    if kind == "successive_halving":
        factor = as_int(errors, "stop_rule.factor", rule.get("factor", 3), 2, MAX_HALVING_FACTOR,
                        f"Must be a whole number from 2 (keep the best half at each rung) to {MAX_HALVING_FACTOR}.")
        return {"kind": kind, "factor": factor}
    value = rule.get("value")
    if not is_number(value):
        errors.add("stop_rule.value", "Give the score that ends the run once a variant's mean over every fold reaches it.")
        return {"kind": kind, "value": None}
    low, high = METRIC_RANGES.get(metric) or ((None, None) if catalog.greater_is_better(task, metric) else (0, None))
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"from {number(low)}" if low is not None else "up"
        span += f" to {number(high)}" if high is not None else " (no upper bound)"
        errors.add("stop_rule.value", f"{metric or 'The metric'} runs {span}; no variant could reach {number(value)}.")
    return {"kind": kind, "value": value}
