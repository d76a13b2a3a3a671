"""engine.spec.validate_spec: valid specs come back normalised, invalid ones fail field by field."""

import copy

import pytest

from engine import catalog

from experiments import describe, wizard
from experiments.forms.model_steps import CVStep
from datasets.models import Dataset
from experiments.models import validate_spec_for
from engine.spec import MAX_VARIANTS, SpecError, total_fits, validate_spec, variants
from engine import scoring
from runs.models import Run

pytestmark = pytest.mark.django_db

DIABETES = {
    "dataset": {"kind": "builtin", "name": "diabetes"},
    "models": [{"estimator": "Ridge", "params": {"alpha": [0.1, 1.0, 10.0]}}],
}


def errors_of(spec, owner=None):
    with pytest.raises(SpecError) as caught:
        validate_spec_for(owner, spec)
    return caught.value.errors


def with_changes(base, **changes):
    spec = copy.deepcopy(base)
    spec.update(changes)
    return spec


def csv_dataset(user):
    return Dataset.objects.create(owner=user, name="houses.csv", kind=Dataset.Kind.CSV, sha256="ab" * 32,
                                  n_rows=10, n_columns=3)


def completed_run(user, spec, model_file="models/x.joblib"):
    return Run.objects.create(owner=user, name="trained", spec=spec, status=Run.Status.COMPLETED, model_file=model_file)


# --- Valid specs ---------------------------------------------------------------------------------------


def test_it_normalises_a_minimal_classification_spec(iris_spec):
    spec = validate_spec({"dataset": {"kind": "builtin", "name": "iris"}, "models": ["LogisticRegression"]})

    assert spec["runner"] == "cv"
    assert spec["task"] == "classification"  # taken from the dataset
    assert spec["cv"] == {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 42}
    assert spec["metric"] == "accuracy"
    assert spec["models"] == [{"estimator": "LogisticRegression", "params": {}, "label": "LogisticRegression"}]
    assert spec["branches"] == [] and spec["preprocessing"] == []


def test_it_counts_variants_and_fits(iris_spec):
    spec = validate_spec(iris_spec)

    assert [v["params"] for v in variants(spec)] == [{"C": 0.1, "max_iter": 500}, {"C": 1.0, "max_iter": 500}]
    assert total_fits(spec) == 2 * 3


def test_it_accepts_regression_with_branches_and_preprocessing():
    spec = validate_spec(
        with_changes(
            DIABETES,
            preprocessing=["simple_imputer"],
            branches=[
                {"name": "scaled", "preprocessing": [{"name": "standard_scaler", "params": {"with_mean": False}}]},
                {"name": "pca", "preprocessing": [{"name": "pca", "params": {"n_components": 5}}]},
            ],
            cv={"kind": "kfold", "folds": 4},
            metric="rmse",
        )
    )

    assert spec["task"] == "regression" and spec["metric"] == "rmse"
    assert [b["name"] for b in spec["branches"]] == ["scaled", "pca"]
    assert total_fits(spec) == 2 * 3 * 4


def test_it_accepts_a_synthetic_dataset():
    spec = validate_spec(
        {"dataset": {"kind": "synthetic", "generator": "regression", "n_samples": 5000, "n_features": 30},
         "models": ["Ridge"], "cv": {"folds": 3}}
    )

    assert spec["dataset"] == {"kind": "synthetic", "generator": "regression", "n_samples": 5000, "n_features": 30,
                               "noise": 0.1, "seed": 0}
    assert spec["cv"]["kind"] == "kfold"


def test_it_accepts_training_with_a_partial_fit_estimator(iris_spec):
    spec = validate_spec(with_changes(iris_spec, runner="training", models=["SGDClassifier"],
                                      training={"epochs": 20, "patience": 3}))

    assert spec["training"] == {"epochs": 20, "patience": 3, "validation_fraction": 0.2}
    assert total_fits(spec) == 20


def test_it_accepts_the_owners_csv_and_records_its_hash(owner):
    dataset = csv_dataset(owner)

    spec = validate_spec_for(owner, {"dataset": {"kind": "csv", "id": dataset.pk}, "task": "regression",
                                     "target": "price", "models": ["Ridge"]})

    assert spec["dataset"] == {"kind": "csv", "id": dataset.pk, "sha256": "ab" * 32}
    assert spec["target"] == "price"


def test_it_lets_staff_use_anyones_csv(outsider, staff):
    dataset = csv_dataset(outsider)

    spec = validate_spec_for(staff, {"dataset": {"kind": "csv", "id": dataset.pk}, "task": "regression",
                                     "models": ["Ridge"]})

    assert spec["dataset"]["id"] == dataset.pk


def test_it_accepts_evaluation_of_the_owners_completed_run(owner, iris_spec):
    trained = completed_run(owner, iris_spec)

    spec = validate_spec_for(owner, with_changes(iris_spec, runner="evaluation", evaluation={"run": trained.pk}))

    assert spec["evaluation"] == {"run": trained.pk}
    assert spec["models"] == []
    assert total_fits(spec) == 1


def test_it_returns_the_same_spec_when_validated_twice(iris_spec):
    once = validate_spec(iris_spec)

    assert validate_spec(once) == once


# --- Invalid specs: each error under the path of the field at fault -------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"models": [{"estimator": "DeepForest9000"}]}, "models.0.estimator", "Unknown estimator"),
        ({"models": []}, "models", "at least one model"),
        ({"models": [{"estimator": "LogisticRegression", "params": {"gamma": [1]}}]}, "models.0.params.gamma",
         "has no parameter 'gamma'"),
        ({"models": [{"estimator": "LogisticRegression", "params": {"C": [1.0, -1.0]}}]}, "models.0.params.C",
         "'C' parameter of LogisticRegression must be"),
        ({"models": [{"estimator": "LogisticRegression", "params": {"penalty": ["l3"]}}]}, "models.0.params.penalty",
         "must be a str among"),
        ({"models": [{"estimator": "LogisticRegression", "params": {"C": [[1, 2]]}}]}, "models.0.params.C",
         "numbers, strings, booleans or null"),
        ({"models": [{"estimator": "LogisticRegression", "params": {"C": []}}]}, "models.0.params.C",
         "at least one value"),
        ({"models": ["LogisticRegression", {"estimator": "Ridge"}]}, "models.1.estimator",
         "cannot be used for classification"),
        ({"task": "regression"}, "task", "This dataset is a classification dataset"),
        ({"task": "clustering"}, "task", "classification\" or \"regression"),
        ({"runner": "magic"}, "runner", "Must be"),
        ({"dataset": {"kind": "builtin", "name": "mnist"}}, "dataset.name", "Unknown dataset"),
        ({"dataset": {"kind": "s3", "url": "s3://x"}}, "dataset.kind", "Must be"),
        ({"dataset": None}, "dataset", "Required"),
        ({"dataset": {"kind": "synthetic", "n_samples": 5}}, "dataset.n_samples", "between 20 and"),
        ({"dataset": {"kind": "csv", "id": "7"}}, "dataset.id", "Give the id"),
        ({"cv": {"folds": 1}}, "cv.folds", "between 2 and 50"),
        ({"cv": {"folds": 51}}, "cv.folds", "between 2 and 50"),
        ({"cv": {"folds": "5"}}, "cv.folds", "whole number"),
        ({"cv": {"folds": True}}, "cv.folds", "whole number"),
        ({"cv": {"kind": "leave_one_out"}}, "cv.kind", "Choose one of"),
        ({"cv": {"shuffle": "yes"}}, "cv.shuffle", "true or false"),
        ({"cv": [5]}, "cv", "Must be an object"),
        ({"metric": "rmse"}, "metric", "For classification, choose one of"),
        ({"seed": -1}, "seed", "between 0 and"),
        ({"target": ""}, "target", "Name the target column"),
        ({"preprocessing": ["normaliser"]}, "preprocessing.0.name", "Unknown step 'normaliser'"),
        ({"preprocessing": [{"name": "standard_scaler", "params": {"with_mean": "no"}}]},
         "preprocessing.0.params.with_mean", "true or false"),
        ({"preprocessing": [{"name": "pca", "params": {"whiten": True}}]}, "preprocessing.0.params.whiten",
         "has no parameter 'whiten'"),
        ({"preprocessing": [{"name": "simple_imputer", "params": {"strategy": "mode"}}]},
         "preprocessing.0.params.strategy", "Must be one of"),
        ({"branches": [{"name": "a"}, {"name": "a"}]}, "branches.1.name", "unique"),
        ({"branches": [{"preprocessing": []}]}, "branches.0.name", "needs a name"),
        ({"branches": [{"name": "b", "preprocessing": ["nope"]}]}, "branches.0.preprocessing.0.name", "Unknown step"),
    ],
)
def test_it_reports_the_field_at_fault(iris_spec, changes, path, message):
    errors = errors_of(with_changes(iris_spec, **changes))

    assert path in errors, errors
    assert any(message in m for m in errors[path]), errors[path]


def test_it_refuses_a_non_object():
    assert errors_of(["not", "a", "spec"]) == {"spec": ["The spec must be a JSON object."]}


def test_it_refuses_stratified_folds_for_regression():
    errors = errors_of(with_changes(DIABETES, cv={"kind": "stratified_kfold"}))

    assert errors == {"cv.kind": ["Stratified folds need a classification task."]}


def test_it_refuses_a_classification_task_on_a_regression_dataset():
    errors = errors_of(with_changes(DIABETES, task="classification", models=["LogisticRegression"]))

    assert errors["task"] == ["This dataset is a regression dataset."]


def test_it_refuses_too_many_variants(iris_spec):
    grid = {"C": [0.01 * i for i in range(1, 26)], "max_iter": list(range(100, 2100, 100))}  # 25 x 20 = 500
    assert validate_spec(with_changes(iris_spec, models=[{"estimator": "LogisticRegression", "params": grid}]))

    grid["tol"] = [1e-4, 1e-3]
    errors = errors_of(with_changes(iris_spec, models=[{"estimator": "LogisticRegression", "params": grid}]))

    assert errors == {"models": [f"1000 parameter variants; at most {MAX_VARIANTS} are allowed."]}


def test_it_refuses_training_with_an_estimator_without_partial_fit(iris_spec):
    errors = errors_of(with_changes(iris_spec, runner="training", models=["SGDClassifier", "RandomForestClassifier"]))

    assert list(errors) == ["models.1.estimator"]
    assert "partial_fit" in errors["models.1.estimator"][0]


def test_it_refuses_bad_training_settings(iris_spec):
    errors = errors_of(with_changes(iris_spec, runner="training", models=["SGDClassifier"],
                                    training={"epochs": 0, "patience": 2.5, "validation_fraction": 0.9}))

    assert set(errors) == {"training.epochs", "training.patience", "training.validation_fraction"}


def test_it_refuses_another_users_csv(owner, outsider):
    dataset = csv_dataset(outsider)
    spec = {"dataset": {"kind": "csv", "id": dataset.pk}, "task": "regression", "models": ["Ridge"]}

    errors = errors_of(spec, owner=owner)

    assert errors == {"dataset.id": [f"No CSV dataset {dataset.pk} that you can use."]}
    assert validate_spec_for(outsider, spec)["dataset"]["id"] == dataset.pk


def test_it_refuses_a_csv_that_does_not_exist(owner):
    errors = errors_of({"dataset": {"kind": "csv", "id": 999_999}, "task": "regression", "models": ["Ridge"]}, owner)

    assert list(errors) == ["dataset.id"]


def test_it_refuses_to_evaluate_another_users_run(owner, outsider, iris_spec):
    theirs = completed_run(outsider, iris_spec)
    spec = with_changes(iris_spec, runner="evaluation", evaluation={"run": theirs.pk})

    errors = errors_of(spec, owner=owner)

    assert errors == {"evaluation.run": [f"No completed run {theirs.pk} with an exported model that you can use."]}
    assert validate_spec_for(outsider, spec)["evaluation"] == {"run": theirs.pk}


@pytest.mark.parametrize(
    ("status", "model_file"), [(Run.Status.RUNNING, "models/x.joblib"), (Run.Status.COMPLETED, "")]
)
def test_it_refuses_to_evaluate_a_run_without_a_finished_model(owner, iris_spec, status, model_file):
    run = Run.objects.create(owner=owner, name="r", spec=iris_spec, status=status, model_file=model_file)

    errors = errors_of(with_changes(iris_spec, runner="evaluation", evaluation={"run": run.pk}), owner=owner)

    assert list(errors) == ["evaluation.run"]


def test_it_reports_every_error_at_once(iris_spec):
    errors = errors_of(
        with_changes(iris_spec, models=[{"estimator": "Nope"}, {"estimator": "SVC", "params": {"C": [-1]}}],
                     cv={"folds": 0}, metric="r2")
    )

    assert set(errors) == {"models.0.estimator", "models.1.params.C", "cv.folds", "metric"}


def test_it_names_the_paths_in_its_message(iris_spec):
    with pytest.raises(SpecError, match=r"cv\.folds: Must be between 2 and 50\."):
        validate_spec(with_changes(iris_spec, cv={"folds": 99}))


def test_it_gives_each_metric_one_direction_everywhere():
    # The engine's ranking, the wizard's metric choices and the readable spec all take it from the catalog.
    assert catalog.greater_is_better("regression", "rmse") is False
    assert catalog.greater_is_better("classification", "roc_auc") is True
    assert catalog.greater_is_better("regression", "no_such_metric") is True  # unknown: a score
    for task, metrics in catalog.METRICS.items():
        for metric in metrics:
            assert scoring.greater_is_better(task, metric) == catalog.greater_is_better(task, metric)
    spec = validate_spec({**DIABETES, "metric": "rmse"})
    assert "RMSE is primary (lower is better)" in dict(describe.readable(spec))["Metrics"][0]
    choices = dict(CVStep(draft=wizard.new_draft(spec), user=None).fields["metric"].choices)
    assert choices == {"r2": "R2 (higher is better)", "rmse": "RMSE (lower is better)",
                       "mae": "MAE (lower is better)", "mape": "MAPE (lower is better)"}
