"""Property: any JSON value at all, however shaped or sized, gives a spec or SpecError, and quickly (issue 14)."""

import copy
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import catalog
from engine.spec import SpecError, validate_spec

# Generous, so it holds on a machine busy with other work; a regression to per-variant work costs minutes.
SECONDS_PER_SPEC = 2.0

VALID = {
    "runner": "cv",
    "dataset": {"kind": "builtin", "name": "iris"},
    "preprocessing": [{"name": "standard_scaler", "params": {"with_mean": True}}],
    "branches": [{"name": "pca", "preprocessing": [{"name": "pca", "params": {"n_components": 2}}]}],
    "models": [
        {"estimator": "LogisticRegression", "params": {"C": [0.1, 1.0], "max_iter": [200]}, "label": "logreg"},
        {"estimator": "RandomForestClassifier", "params": {"n_estimators": [10], "max_depth": [3, None]}},
    ],
    "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1},
    "metric": "accuracy",
    "limits": {"time_seconds": 600, "memory_mb": 1024},
}

# Words the validator gives meaning to, so random documents often reach deep checks, not only the first one.
WORDS = sorted({
    *VALID, *VALID["cv"], *VALID["dataset"], "estimator", "params", "label", "name", "generator", "id",
    "n_samples", "n_features", "noise", "n_classes", "training", "epochs", "patience", "validation_fraction",
    "evaluation", "run", "task", "target", "seed", "time_seconds", "memory_mb", "synthetic", "csv", "builtin",
    "training", "evaluation", "classification", "regression", "hidden_layer_sizes", "degree", "k",
    *catalog.ESTIMATORS, *catalog.PREPROCESSING, *catalog.CV_KINDS, *catalog.BUILTIN_DATASETS,
    *(m for metrics in catalog.METRICS.values() for m in metrics), *catalog.PARAM_RANGES,
})
text = st.one_of(st.sampled_from(WORDS), st.text(max_size=30))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=8), st.dictionaries(text, children, max_size=8)),
    max_leaves=60,
)


def paths(value, prefix=()):
    """Every path into a JSON document, as tuples of keys and indexes."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from paths(child, prefix + (i,))


VALID_PATHS = list(paths(VALID))[1:]


@st.composite
def mutated_specs(draw):
    """The valid spec with a few of its values replaced by random JSON, or removed."""
    spec = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(VALID_PATHS))
        parent = spec
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced this path's parent
    return spec


def check(spec):
    started = time.thread_time()  # CPU time: other work on a busy machine does not count against it
    try:
        validate_spec(spec)
    except SpecError as e:
        assert e.errors and all(isinstance(path, str) and messages for path, messages in e.errors.items())
    elapsed = time.thread_time() - started
    assert elapsed < SECONDS_PER_SPEC, f"{elapsed:.2f}s"


def setup_module():
    validate_spec(copy.deepcopy(VALID))  # import scikit-learn's modules once, outside the timed calls
    for name in catalog.ESTIMATORS:
        catalog.load_class(*catalog.ESTIMATORS[name][:2])


FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@FUZZ
@given(json_values)
def test_it_answers_any_json_with_a_spec_or_field_errors(value):
    check(value)


@FUZZ
@given(st.dictionaries(st.sampled_from(WORDS), json_values, max_size=12))
def test_it_answers_any_object_of_spec_words_with_a_spec_or_field_errors(value):
    check(value)


@FUZZ
@given(mutated_specs())
def test_it_answers_any_mutation_of_a_valid_spec_with_a_spec_or_field_errors(spec):
    check(spec)


huge_numbers = st.integers(min_value=1).map(lambda n: n * 10**400)  # no float holds these


@st.composite
def model_entries(draw):
    """A catalog estimator with a grid of its own parameters, so values reach scikit-learn's and our checks."""
    name = draw(st.sampled_from(sorted(catalog.ESTIMATORS)))
    params = sorted(catalog.load_class(*catalog.ESTIMATORS[name][:2])._get_param_names())
    value = st.one_of(scalars, huge_numbers, st.lists(st.integers(min_value=-5, max_value=5000), max_size=12))
    grid = draw(st.dictionaries(st.sampled_from(params), st.one_of(value, st.lists(value, max_size=5)), max_size=4))
    return {"estimator": name, "params": grid}


models = st.lists(model_entries(), min_size=1, max_size=3)


@FUZZ
@given(models)
def test_it_answers_any_parameter_grid_with_a_spec_or_field_errors(models):
    # Grids reach scikit-learn's checks and our ranges, where a value of the wrong kind could raise.
    check({**copy.deepcopy(VALID), "models": models})


def test_it_answers_large_documents_quickly():
    # Size, not shape: wide and deep documents beside and inside the fields the validator reads.
    wide = {f"key{i}": list(range(100)) for i in range(10_000)}
    deep = []
    for _ in range(10_000):
        deep = [deep]
    for spec in (wide, {**VALID, "extra": wide}, {**VALID, "models": deep}, {**VALID, "preprocessing": deep},
                 {**VALID, "cv": {"kind": deep}}, {**VALID, "models": [{"estimator": "SVC", "params": wide}]}):
        check(spec)
