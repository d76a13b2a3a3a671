"""The experiment wizard's model: a draft (a spec being written, kept in the session), its steps, and the
mapping of the spec validator's dotted error paths onto the step and field that caused them.

The forms (experiments/forms.py) read and write the draft's spec; the one validator
(experiments.models.validate_spec_for) judges it. Nothing here builds a spec by other rules.
"""

import copy
import importlib.util
import math
import re
from functools import cache

from datasets import profiling

from engine import catalog

STEPS = [
    ("dataset", "Dataset"),
    ("target", "Task and target"),
    ("preprocessing", "Preprocessing"),
    ("models", "Models"),
    ("cv", "Validation and metrics"),
    ("runner", "Runner"),
    ("review", "Review"),
]
STEP_NAMES = [name for name, _ in STEPS]
# The step that owns each top-level key of a spec, for routing the validator's errors.
OWNER_STEP = {
    "dataset": "dataset", "task": "target", "target": "target", "preprocessing": "preprocessing",
    "branches": "preprocessing", "models": "models", "cv": "cv", "metric": "cv", "runner": "runner",
    "training": "runner", "evaluation": "runner", "stop_rule": "cv",
}
DEFAULT_SPEC = {
    "runner": "cv", "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification", "target": "target",
    "preprocessing": [], "branches": [], "models": [], "cv": {"folds": 5, "shuffle": True, "seed": 42},
    "seed": 42,
}


def new_draft(spec=None, name="", description=""):
    spec = copy.deepcopy(spec) if spec else copy.deepcopy(DEFAULT_SPEC)
    return {"name": name, "description": description, "spec": spec, "raw": {}, "visited": ["dataset"]}


def step_of(path):
    return OWNER_STEP.get(path.split(".", 1)[0], "review")


def errors_for_step(errors, step):
    return {path: msgs for path, msgs in errors.items() if step_of(path) == step}


def next_step(step):
    i = STEP_NAMES.index(step)
    return STEP_NAMES[min(i + 1, len(STEP_NAMES) - 1)]


def previous_step(step):
    i = STEP_NAMES.index(step)
    return STEP_NAMES[max(i - 1, 0)]


# --- Preprocessing: the spec's step lists <-> the form's slots --------------------------------------------

SCALERS = {"standard_scaler", "minmax_scaler", "robust_scaler"}


def split_preprocessing(spec):
    """(numeric imputer strategy or "", what to do with text ("encode", "drop" or ""), [branch dicts],
    categorical imputer strategy or "") from a spec's preprocessing and branches.

    A branch dict has name, scaler, degree, pca and k. Shared steps other than the imputers and the encoder
    join every branch, in the branch's standard order."""
    strategy, encode, extra, categorical = "", "", [], ""
    for step in spec.get("preprocessing") or []:
        name = step.get("name") if isinstance(step, dict) else step
        params = (step.get("params") or {}) if isinstance(step, dict) else {}
        if name == "simple_imputer":
            strategy = params.get("strategy", "mean")
        elif name == "categorical_imputer":
            categorical = params.get("strategy", "most_frequent")
        elif name == "one_hot_encoder":
            encode = "encode"
        elif name == "drop_text_columns":
            encode = "drop"
        else:
            extra.append(step)
    chains = [(b.get("name", ""), extra + list(b.get("preprocessing") or [])) for b in spec.get("branches") or []]
    branches = [_branch_slots(name, steps) for name, steps in (chains or [("", extra)])]
    return strategy, encode, branches, categorical


def _branch_slots(name, steps):
    slots = {"name": name, "scaler": "", "degree": None, "pca": None, "k": None}
    for step in steps:
        step_name = step.get("name") if isinstance(step, dict) else step
        params = (step.get("params") or {}) if isinstance(step, dict) else {}
        if step_name in SCALERS:
            slots["scaler"] = step_name
        elif step_name == "polynomial_features":
            slots["degree"] = params.get("degree", 2)
        elif step_name == "pca":
            slots["pca"] = params.get("n_components")
        elif step_name == "select_k_best":
            slots["k"] = params.get("k", 10)
    return slots


def join_preprocessing(strategy, encode, branches, categorical=""):
    """(preprocessing, branches) for a spec. One branch becomes the shared chain; two or more stay branches.
    The categorical imputer is kept only with the encoder: it fills the gaps of the columns it encodes."""
    shared = []
    if strategy:
        shared.append({"name": "simple_imputer", "params": {"strategy": strategy}})
    if categorical and encode in (True, "encode"):
        shared.append({"name": "categorical_imputer", "params": {"strategy": categorical}})
    if encode in (True, "encode"):
        shared.append({"name": "one_hot_encoder", "params": {}})
    elif encode == "drop":
        shared.append({"name": "drop_text_columns", "params": {}})
    chains = []
    for b in branches:
        steps = []
        if b.get("scaler"):
            steps.append({"name": b["scaler"], "params": {}})
        if b.get("degree") is not None:
            steps.append({"name": "polynomial_features", "params": {"degree": b["degree"]}})
        if b.get("pca") is not None:
            steps.append({"name": "pca", "params": {"n_components": b["pca"]}})
        if b.get("k") is not None:
            steps.append({"name": "select_k_best", "params": {"k": b["k"]}})
        chains.append({"name": b.get("name") or "", "preprocessing": steps})
    if len(chains) <= 1:
        return shared + (chains[0]["preprocessing"] if chains else []), []
    return shared, chains


# --- Starting from the data profile ---------------------------------------------------------------------

# The model ticked when none is chosen yet: quick, and good on scaled data of any size the wizard proposes.
DEFAULT_MODELS = {"classification": "LogisticRegression", "regression": "Ridge"}


def from_profile(draft, dataset):
    """Start a draft on an uploaded dataset (a Dataset): the target and task its profile suggests, the
    preprocessing it proposes (profile_preprocessing), and a name. Without a profile the draft is left as it is."""
    spec, columns = draft["spec"], dataset.profiled_columns()
    if not profiling.is_current(columns):
        return
    folds = (spec.get("cv") or {}).get("folds") or 5
    target, task = profiling.suggest(columns, dataset.n_rows, folds)
    if target is not None:
        if task != spec.get("task"):
            spec["models"], spec["metric"] = [], None  # estimators and metrics are per task
        spec["target"], spec["task"] = target, task
        draft["name"] = draft.get("name") or f"{target} from {dataset.name}"[:200]
    profile_preprocessing(spec, columns)


def profile_preprocessing(spec, columns):
    """Propose the preprocessing for the spec's target from the profile: flagged columns left out, median for
    missing numbers and the most frequent value for missing categories (each only where values are missing),
    one-hot encoding when text columns remain, and standard scaling of one branch."""
    if not profiling.is_current(columns):
        return
    features = [c for c in columns if c["name"] != spec.get("target")]
    dropped = [c["name"] for c in features if c.get("flags")]
    kept = [c for c in features if not c.get("flags")]
    numeric = [c for c in kept if c["kind"] in ("numeric", "empty")]
    text = [c for c in kept if c["kind"] not in ("numeric", "empty")]
    spec["preprocessing"], spec["branches"] = join_preprocessing(
        "median" if any(c["missing"] for c in numeric) else "",
        "encode" if text else "",
        [{"scaler": "standard_scaler"}] if numeric or text else [],
        "most_frequent" if any(c["missing"] for c in text) else "")
    if dropped:
        spec["drop_columns"] = dropped
    else:
        spec.pop("drop_columns", None)


# --- Models: each estimator's parameters as typed fields --------------------------------------------------


def library_installed(estimator):
    module = catalog.ESTIMATORS[estimator][0]
    return importlib.util.find_spec(module.split(".")[0]) is not None


def estimators_for(task):
    return [name for name, (_, _, tasks, _) in catalog.ESTIMATORS.items() if task in tasks]


@cache
def estimator_params(estimator):
    """[(param, kind, hint, default)] the wizard offers for `estimator`; kind is "number", "choice" or "bool"."""
    if not library_installed(estimator):
        return []
    from sklearn.utils._param_validation import Interval, StrOptions

    module, cls_name, _, _ = catalog.ESTIMATORS[estimator]
    cls = catalog.load_class(module, cls_name)
    defaults = cls().get_params()
    out = []
    for param, constraints in getattr(cls, "_parameter_constraints", {}).items():
        default = defaults.get(param)
        if param in catalog.FIXED_PARAMS or param not in defaults or default == "deprecated":
            continue
        options = sorted(o for c in constraints if isinstance(c, StrOptions) for o in c.options
                         if o not in getattr(c, "deprecated", set()))
        bounds = catalog.param_range(estimator, param)
        numeric = bounds is not None and any(isinstance(c, Interval) for c in constraints)
        if "boolean" in constraints and isinstance(default, bool):
            out.append((param, "bool", "true or false", default))
        elif numeric:
            hint = f"numbers from {_num(bounds[0])} to {_num(bounds[1])}"
            if options:
                hint += f", or {', '.join(options)}"
            out.append((param, "number", hint, default))
        elif options:
            out.append((param, "choice", "one or more of: " + ", ".join(options), default))
    return out


def _num(value):
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e7 else f"{value:g}"


RANGE = re.compile(r"^\s*(-?[\d.e+-]+)\s*\.\.\s*(-?[\d.e+-]+)(?:\s+step\s+([\d.e+-]+))?\s*$", re.IGNORECASE)
MAX_RANGE_VALUES = 100


def parse_values(text):
    """A grid typed by a person: "0.1, 1, 10", or a range "1..10" or "0.1..1 step 0.3". Returns the values;
    raises ValueError with a message a person can read."""
    text = (text or "").strip()
    if not text:
        return []
    match = RANGE.match(text)
    if match:
        return _range(*match.groups())
    if ".." in text:
        raise ValueError("A range is written start..stop or start..stop step s, with numbers.")
    return [_value(token.strip()) for token in text.split(",") if token.strip()]


def _range(lo, hi, step):
    try:
        start, stop = _number(lo), _number(hi)
        step = _number(step) if step else 1
    except ValueError:
        raise ValueError("A range is written start..stop or start..stop step s, with numbers.") from None
    if step <= 0 or stop < start:
        raise ValueError("A range needs start ≤ stop and a step above 0.")
    count = int((stop - start) / step + 1e-9) + 1
    if count > MAX_RANGE_VALUES:
        raise ValueError(f"That range gives {count:,} values; at most {MAX_RANGE_VALUES} are allowed.")
    whole = all(isinstance(v, int) for v in (start, stop, step))
    return [start + i * step if whole else round(start + i * step, 10) for i in range(count)]


def _number(token):
    try:
        return int(token)
    except ValueError:
        value = float(token)
        if not math.isfinite(value):
            raise ValueError(token) from None
        return value


def _value(token):
    lowered = token.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return _number(token)
    except ValueError:
        return token.strip("'\"")


def show_values(values):
    return ", ".join("none" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for v in values)
