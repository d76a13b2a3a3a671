"""Bad data fails the validate-data step with a message a person can act on.

Each case runs the engine in-process on a small CSV (fast, no database needed); one case also goes through
a real worker to show the message reaching the run, its step and its JOB_FAILED event.
"""

import pytest

import engine
from runs import events
from runs.control import launch_run
from runs.models import Run, RunEvent, RunStep
from tests.helpers import wait_for


class StepRecorder(engine.Reporter):
    def __init__(self):
        self.steps = []

    def step(self, name, status, detail=""):
        self.steps.append((name, status, detail))


def csv_spec(path, **overrides):
    spec = {
        "runner": "cv", "task": "classification", "target": "y", "seed": 1,
        "dataset": {"kind": "csv", "id": 1, "sha256": ""},
        "preprocessing": [], "branches": [],
        "models": [{"estimator": "LogisticRegression", "params": {}, "label": "LogisticRegression"}],
        "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1},
        "metric": "accuracy",
    }
    spec.update(overrides)
    return spec


def run_engine(tmp_path, text, **overrides):
    path = tmp_path / "data.csv"
    path.write_text(text)
    reporter = StepRecorder()
    with pytest.raises(engine.DataError) as caught:
        engine.execute(csv_spec(path, **overrides), reporter, tmp_path / "run-1", dataset_path=path)
    assert caught.value.step == "validate_data"
    assert ("validate_data", "failed", caught.value.message) in reporter.steps
    assert ("load_data", "completed", "") in reporter.steps
    return caught.value.message


def rows(n, y=lambda i: i % 2, extra=""):
    return "a,b,y\n" + "".join(f"{i},{i * 2}{extra},{y(i)}\n" for i in range(n))


def test_it_rejects_an_empty_file(tmp_path):
    assert run_engine(tmp_path, "") == "The file is empty (0 bytes)."


def test_it_rejects_a_file_with_a_header_and_no_rows(tmp_path):
    assert run_engine(tmp_path, "a,b,y\n") == "The file has column names but no rows of data."


def test_it_rejects_a_missing_target_column(tmp_path):
    message = run_engine(tmp_path, rows(12), target="label")
    assert message == "The target column 'label' is not in the file. Its columns are: 'a', 'b', 'y'."


def test_it_rejects_a_target_with_missing_values(tmp_path):
    text = "a,b,y\n" + "".join(f"{i},{i},{'' if i in (2, 5) else i % 2}\n" for i in range(12))
    message = run_engine(tmp_path, text)
    assert message == "The target column 'y' has no value in 2 rows (data rows 3, 6); remove those rows or fill them in."


def test_it_rejects_a_constant_target(tmp_path):
    message = run_engine(tmp_path, rows(12, y=lambda i: 3.0), task="regression", cv={"kind": "kfold", "folds": 3, "shuffle": True, "seed": 1},
                         models=[{"estimator": "Ridge", "params": {}, "label": "Ridge"}], metric="r2")
    assert message == "The target column 'y' is constant: every row is 3.0"


def test_it_rejects_text_features_without_an_encoder(tmp_path):
    text = "city,b,y\n" + "".join(f"{['Paris', 'Lyon'][i % 2]},{i},{i % 2}\n" for i in range(12))
    message = run_engine(tmp_path, text)
    assert message.startswith("Column 'city' holds text (for example 'Paris'), and the preprocessing has no one_hot_encoder")


def test_it_leaves_text_columns_out_when_asked(tmp_path):
    """The other answer to text features: drop_text_columns keeps the numeric columns only."""
    text = "city,b,y\n" + "".join(f"{['Paris', 'Lyon'][i % 2]},{i},{i % 3 % 2}\n" for i in range(12))
    path = tmp_path / "data.csv"
    path.write_text(text)
    spec = csv_spec(path, preprocessing=[{"name": "drop_text_columns", "params": {}}])
    outcome = engine.execute(spec, engine.Reporter(), tmp_path / "run-1", dataset_path=path)
    assert outcome["summary"]["rows"] == 12 and outcome["best_score"] is not None
    model = engine.load_bundle(outcome["bundle"]["path"], outcome["bundle"]["sha256"]).model
    assert list(model[:-1].get_feature_names_out()) == ["b"]  # the model saw no city


def test_it_names_the_branch_that_lacks_an_encoder(tmp_path):
    text = "city,b,y\n" + "".join(f"{['Paris', 'Lyon'][i % 2]},{i},{i % 2}\n" for i in range(12))
    branches = [{"name": "encoded", "preprocessing": [{"name": "one_hot_encoder", "params": {}}]},
                {"name": "raw", "preprocessing": []}]
    assert "the preprocessing of branch 'raw' has no one_hot_encoder" in run_engine(tmp_path, text, branches=branches)


def test_it_rejects_missing_values_without_an_imputer(tmp_path):
    text = "a,b,y\n" + "".join(f"{i},{'' if i == 4 else i},{i % 2}\n" for i in range(12))
    message = run_engine(tmp_path, text)
    assert message.startswith("Column 'b' has 1 missing values (data rows 5), and the preprocessing has no simple_imputer")


def test_it_accepts_missing_values_with_an_imputer_or_a_model_that_handles_them(tmp_path):
    text = "a,b,y\n" + "".join(f"{i},{'' if i == 4 else i},{i % 2}\n" for i in range(12))
    path = tmp_path / "data.csv"
    path.write_text(text)
    imputed = csv_spec(path, preprocessing=[{"name": "simple_imputer", "params": {}}])
    outcomes = [engine.execute(imputed, engine.Reporter(), tmp_path / "run-1", dataset_path=path)]
    native = csv_spec(path, models=[{"estimator": "HistGradientBoostingClassifier", "params": {"max_iter": [5]},
                                     "label": "HistGradientBoostingClassifier"}])
    outcomes.append(engine.execute(native, engine.Reporter(), tmp_path / "run-2", dataset_path=path))
    for outcome in outcomes:
        # Both ran every fold on all 12 rows and scored: the missing value was imputed or handled, not dropped.
        assert outcome["summary"]["rows"] == 12
        assert 0.0 <= outcome["best_score"] <= 1.0
        assert outcome["bundle"]["sha256"]


def test_it_rejects_too_few_rows_for_the_folds(tmp_path):
    message = run_engine(tmp_path, rows(7), cv={"kind": "kfold", "folds": 5, "shuffle": False, "seed": 1})
    assert message == (
        "The data has 7 rows, too few for 5 folds: each fold needs at least 2 rows, so at least 10 rows. "
        "Use fewer folds or more data."
    )


def test_it_rejects_a_class_with_fewer_members_than_the_folds(tmp_path):
    message = run_engine(tmp_path, rows(20, y=lambda i: "rare" if i < 2 else "common"),
                         cv={"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1})
    assert message == (
        "Class 'rare' has only 2 rows, fewer than the 3 folds: stratified folds need at least 3 rows of every "
        "class. Use fewer folds, or plain k-fold."
    )


def test_it_rejects_an_unreadable_csv(tmp_path):
    message = run_engine(tmp_path, 'a,b,y\n1,2,3\n"4,5,6\n')
    assert message.startswith("This is not a readable CSV file:")


def test_it_fails_the_run_with_its_message_through_a_worker(worker, owner, outsider, tmp_path):
    from django.core.files.base import ContentFile

    from datasets.models import Dataset

    dataset = Dataset(owner=owner, name="constant")
    content = ContentFile(rows(12, y=lambda i: 3.0).encode(), name="constant.csv")
    dataset.describe_csv(content)
    dataset.file.save("constant.csv", content, save=True)
    spec = {"dataset": {"kind": "csv", "id": dataset.pk}, "task": "regression", "target": "y",
            "models": ["Ridge"], "cv": {"kind": "kfold", "folds": 3}}
    run = launch_run(owner, spec=spec)
    wait_for(lambda: Run.objects.get(pk=run.pk).is_terminal, timeout=60, message="the run to end")
    run.refresh_from_db()
    message = "The target column 'y' is constant: every row is 3.0"
    assert run.status == Run.Status.FAILED
    assert run.message == message
    hint = ("Clone and edit: the Preprocessing step fills missing values, encodes text and leaves columns out; or "
            "fix the data and upload it again.")
    assert run.error_message == f"Validate data failed: {message}. {hint}"
    assert "DataError" in run.traceback
    assert run.partial is False
    steps = dict(RunStep.objects.filter(run=run).values_list("name", "status"))
    assert steps == {"load_data": "completed", "validate_data": "failed", "cross_validate": "pending",
                     "refit_best": "pending", "export": "pending"}
    assert RunStep.objects.get(run=run, name="validate_data").detail == message
    last = RunEvent.objects.filter(run=run).order_by("-seq").first()
    assert last.type == events.JOB_FAILED and last.data["message"] == run.error_message
    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert not run.visible_to(outsider)
