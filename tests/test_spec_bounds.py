"""The validator bounds the work a spec may ask for (issue 14, findings 1, 2, 3 and 6), without Django."""

import copy
import time

import pytest
from sklearn.utils._param_validation import Interval, make_constraint

from engine import catalog
from engine.spec import Ceilings, SpecError, validate_spec

IRIS = {
    "dataset": {"kind": "builtin", "name": "iris"},
    "models": [{"estimator": "LogisticRegression", "params": {"C": [0.1, 1.0]}}],
    "cv": {"folds": 3},
}


def errors_of(spec, **kwargs):
    with pytest.raises(SpecError) as caught:
        validate_spec(spec, **kwargs)
    return caught.value.errors


def iris(**changes):
    spec = copy.deepcopy(IRIS)
    spec.update(changes)
    return spec


def model(estimator, **grid):
    return [{"estimator": estimator, "params": grid}]


# --- Hyperparameters (finding 1) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "path", "message"),
    [
        (model("RandomForestClassifier", n_estimators=[10, 1_000_000_000]), "models.0.params.n_estimators.1",
         "Must be between 1 and 2000."),
        (model("HistGradientBoostingClassifier", max_iter=[5000]), "models.0.params.max_iter.0",
         "Must be between 1 and 2000."),
        (model("LogisticRegression", max_iter=[10**9]), "models.0.params.max_iter.0", "Must be between 1 and 100000."),
        (model("DecisionTreeClassifier", max_depth=[5, 10_000]), "models.0.params.max_depth.1",
         "Must be between 1 and 100."),
        (model("KNeighborsClassifier", n_neighbors=[100_000]), "models.0.params.n_neighbors.0",
         "Must be between 1 and 1000."),
        (model("SVC", C=[1e12]), "models.0.params.C.0", "Must be between 0 and 1000000."),
        (model("SGDClassifier", alpha=[1e9]), "models.0.params.alpha.0", "Must be between 0 and 1000000."),
        (model("SVC", cache_size=[100_000]), "models.0.params.cache_size.0", "Must be between 1 and 2048."),
        (model("MLPClassifier", hidden_layer_sizes=[100_000_000]), "models.0.params.hidden_layer_sizes.0",
         "Each layer must be a whole number between 1 and 2048."),
        (model("MLPClassifier", hidden_layer_sizes=[[2000, 2000, 2000]]), "models.0.params.hidden_layer_sizes.0",
         "6,000 units in all; at most 4096 are allowed."),
        (model("MLPClassifier", hidden_layer_sizes=[[10] * 11]), "models.0.params.hidden_layer_sizes.0",
         "Give 1 to 10 layer sizes."),
        (model("RandomForestClassifier", n_jobs=[-1]), "models.0.params.n_jobs",
         'Runwatch sets n_jobs itself; for fits in parallel give the spec\'s own "n_jobs".'),
    ],
)
def test_it_bounds_hyperparameters(models, path, message):
    errors = errors_of(iris(models=models))

    assert errors == {path: [message]}


def test_it_accepts_values_inside_the_bounds():
    spec = validate_spec(iris(models=[
        {"estimator": "RandomForestClassifier", "params": {"n_estimators": [2000], "max_depth": [100]}},
        {"estimator": "MLPClassifier", "params": {"hidden_layer_sizes": [64, [128, 64]], "max_iter": [50]}},
    ]))

    assert spec["models"][1]["params"]["hidden_layer_sizes"] == [64, [128, 64]]


@pytest.mark.parametrize(
    ("dataset", "steps", "path", "message"),
    [
        ({"kind": "builtin", "name": "iris"}, [{"name": "polynomial_features", "params": {"degree": 50}}],
         "preprocessing.0.params.degree", "Must be a whole number between 1 and 5."),
        ({"kind": "builtin", "name": "digits"}, [{"name": "polynomial_features", "params": {"degree": 4}}],
         "preprocessing.0.params.degree", "Degree 4 turns 64 features into 814,385 columns"),
        ({"kind": "synthetic", "n_samples": 100_000, "n_features": 200},
         [{"name": "polynomial_features", "params": {"degree": 2}}], "preprocessing.0.params.degree",
         "into 20,301 columns"),
        ({"kind": "synthetic", "n_samples": 2_000_000, "n_features": 2_000}, [], "dataset.n_samples",
         "2,000,000 rows x 2,000 features is too much data"),
        ({"kind": "builtin", "name": "iris"}, [{"name": "select_k_best", "params": {"k": 10**9}}],
         "preprocessing.0.params.k", "between 1 and 100000"),
    ],
)
def test_it_bounds_the_size_of_the_data(dataset, steps, path, message):
    errors = errors_of(iris(dataset=dataset, preprocessing=steps))

    assert list(errors) == [path]
    assert errors[path][0].startswith(message) or message in errors[path][0], errors


@pytest.mark.parametrize("shrink", [
    {"name": "pca", "params": {"n_components": 10}}, {"name": "select_k_best", "params": {"k": 10}},
])
def test_it_sizes_polynomial_features_after_the_steps_that_shrink_the_data(shrink):
    digits = {"kind": "builtin", "name": "digits"}  # 1,797 rows x 64 features: degree 4 alone is refused
    steps = [shrink, {"name": "polynomial_features", "params": {"degree": 4}}]

    spec = validate_spec(iris(dataset=digits, preprocessing=steps))
    assert [step["name"] for step in spec["preprocessing"]] == [shrink["name"], "polynomial_features"]
    # Sized from the columns the step leaves (30 here, not the data's 64): 30 is still too many for degree 4.
    wider = {**shrink, "params": {key: 30 for key in shrink["params"]}}
    too_big = [wider, {"name": "polynomial_features", "params": {"degree": 4}}]
    assert errors_of(iris(dataset=digits, preprocessing=too_big)) == {"preprocessing.1.params.degree": [
        "Degree 4 turns 30 features into 46,376 columns, 83,337,672 values for 1,797 rows; at most 50,000,000 are "
        "allowed. Lower the degree, or reduce the features first (pca, select_k_best)."]}


def test_it_has_a_range_for_every_numeric_parameter_of_every_estimator():
    """By construction: a parameter scikit-learn lets be a number either has our range or is refused."""
    missing = set()
    for name, (module, cls_name, _, _) in catalog.ESTIMATORS.items():
        for param, constraints in catalog.load_class(module, cls_name)._parameter_constraints.items():
            numeric = any(isinstance(c, Interval) or c in (int, float, "random_state") for c in constraints)
            numeric = numeric or any(make_constraint(c).is_satisfied_by(3) for c in constraints
                                     if c not in ("array-like", "no_validation"))
            special = param == "hidden_layer_sizes" or param in catalog.FIXED_PARAMS
            if numeric and not special and catalog.param_range(name, param) is None:
                missing.add(f"{name}.{param}")
    assert not missing


# --- One cap on total fits (finding 1) -----------------------------------------------------------------


def test_it_caps_branches_times_variants_times_folds():
    branches = [{"name": f"b{i}", "preprocessing": []} for i in range(50)]
    spec = iris(branches=branches, models=model("LogisticRegression", C=[float(c) for c in range(1, 101)]),
                cv={"folds": 5})

    errors = errors_of(spec)

    assert errors == {"spec": ["25,000 fits (50 branches x 100 variants x 5 folds); at most 10,000 are allowed. "
                               "Use fewer branches, parameter values or folds."]}
    assert validate_spec(spec, ceilings=Ceilings(total_fits=25_000))


def test_it_caps_training_epochs_times_variants_too():
    spec = iris(runner="training", models=model("SGDClassifier", alpha=[1e-4, 1e-3]), training={"epochs": 6000})

    assert "12,000 fits (1 branches x 2 variants x 6000 epochs)" in errors_of(spec)["spec"][0]


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"branches": [{"name": f"b{i}"} for i in range(5000)]}, "branches", "5,000 branches; at most 50"),
        ({"models": ["LogisticRegression"] * 51}, "models", "51 models; at most 50"),
        ({"models": model("LogisticRegression", C=[float(c) for c in range(1, 102)])}, "models.0.params.C",
         "101 values; at most 100 are allowed per parameter."),
        ({"preprocessing": ["standard_scaler"] * 21}, "preprocessing", "21 steps; at most 20"),
        ({"target": "t" * 201}, "target", "At most 200 characters."),
        ({"branches": [{"name": "b" * 101}]}, "branches.0.name", "At most 100 characters."),
        ({"models": [{"estimator": "LogisticRegression", "label": "l" * 101}]}, "models.0.label", "At most 100"),
        ({"models": model("LogisticRegression", solver=["s" * 101])}, "models.0.params.solver.0", "At most 100"),
    ],
)
def test_it_caps_counts_and_lengths(changes, path, message):
    errors = errors_of(iris(**changes))

    assert path in errors, errors
    assert errors[path][0].startswith(message), errors[path]


# --- Cost linear in the input (finding 2) --------------------------------------------------------------


def test_it_refuses_a_huge_spec_fast():
    validate_spec(iris())  # scikit-learn's modules are imported once, not timed
    huge = iris(models=[{"estimator": "RandomForestClassifier", "params": {"n_estimators": list(range(1, 101))}}
                        for _ in range(10_000)])

    # CPU time of this thread, not wall time: a busy machine must not fail it. Before the count came first,
    # this spec took minutes; counting first takes milliseconds, so the bound is loose on purpose.
    started = time.thread_time()
    errors = errors_of(huge)
    elapsed = time.thread_time() - started

    assert errors == {"models": ["10,000 models; at most 50 are allowed."]}
    assert elapsed < 2, elapsed


def test_it_counts_variants_before_checking_any_value():
    # 50 models x 100^2 variants of values scikit-learn would refuse: the count alone decides, at once.
    grid = {"C": [-1.0] * 100, "tol": [-1.0] * 100}
    started = time.thread_time()
    errors = errors_of(iris(models=[{"estimator": "LogisticRegression", "params": grid}] * 50))

    assert errors == {"models": ["500000 parameter variants; at most 500 are allowed."]}
    assert time.thread_time() - started < 2


def test_it_shows_only_the_first_errors_of_a_hostile_spec():
    errors = errors_of(iris(models=[{"estimator": "LogisticRegression", "params": {f"p{i}": [1] for i in range(10**5)}}]))

    assert len(errors) == 51
    assert errors["spec"] == ["More errors not shown; fix these 50 first."]


# --- Type errors are field errors (findings 3 and 6) ---------------------------------------------------

WRONG_TYPES = [["accuracy"], {"a": 1}, 3, 2.5, True]
STRING_FIELDS = {
    "metric": lambda v: iris(metric=v),
    "runner": lambda v: iris(runner=v),
    "task": lambda v: iris(task=v),
    "cv.kind": lambda v: iris(cv={"kind": v}),
    "dataset.name": lambda v: iris(dataset={"kind": "builtin", "name": v}),
    "dataset.generator": lambda v: iris(dataset={"kind": "synthetic", "generator": v}),
    "models.0.estimator": lambda v: iris(models=[{"estimator": v}]),
    "preprocessing.0.name": lambda v: iris(preprocessing=[{"name": v}]),
    "models.0.label": lambda v: iris(models=[{"estimator": "LogisticRegression", "label": v}]),
}


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
@pytest.mark.parametrize("path", list(STRING_FIELDS))
def test_it_reports_a_wrong_type_as_a_field_error(path, value):
    errors = errors_of(STRING_FIELDS[path](value))

    assert path in errors, errors


# --- Run limits ----------------------------------------------------------------------------------------


def test_it_accepts_run_limits_up_to_the_ceilings():
    spec = validate_spec(iris(limits={"time_seconds": 600, "memory_mb": 2048}),
                         ceilings=Ceilings(time_seconds=600, memory_mb=2048))

    assert spec["limits"] == {"time_seconds": 600, "memory_mb": 2048}
    assert "limits" not in validate_spec(iris())


@pytest.mark.parametrize(
    ("limits", "path", "message"),
    [
        ({"time_seconds": 601}, "limits.time_seconds", "between 1 and 600, the ceiling on this server."),
        ({"time_seconds": "1h"}, "limits.time_seconds", "between 1 and 600, the ceiling on this server."),
        ({"memory_mb": 4096}, "limits.memory_mb", "between 256 and 2048, the ceiling on this server."),
        ({"memory_mb": 10}, "limits.memory_mb", "between 256 and 2048"),
        ({"cpus": 4}, "limits.cpus", "Unknown field 'cpus'. Known fields here: time_seconds, memory_mb."),
        ([600], "limits", "Must be an object"),
    ],
)
def test_it_refuses_run_limits_over_the_ceilings(limits, path, message):
    errors = errors_of(iris(limits=limits), ceilings=Ceilings(time_seconds=600, memory_mb=2048))

    assert message in errors[path][0], errors


def test_it_refuses_csv_datasets_and_runs_it_cannot_look_up():
    errors = errors_of(iris(dataset={"kind": "csv", "id": 1}))
    assert errors["dataset.id"] == ["No CSV dataset 1 that you can use."]

    errors = errors_of(iris(runner="evaluation", evaluation={"run": 2**63}))
    assert errors["evaluation.run"] == ["Give the id of a completed run whose model to evaluate."]
