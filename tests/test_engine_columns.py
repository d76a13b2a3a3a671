"""The spec's column choices: `drop_columns` leaves columns out of the features, `categorical_imputer` fills
text columns' gaps with its own strategy, and validation names every data problem at once."""

import pytest

import engine
from engine.export import load_bundle
from engine.spec import SpecError, validate_spec
from tests.test_bad_datasets import StepRecorder, csv_spec

COLUMNS = ["rownames", "size", "colour", "y"]


class Lookups:
    def csv_dataset(self, dataset_id):
        return {"sha256": "0" * 64, "n_rows": 60, "n_columns": 4, "columns": COLUMNS}

    def evaluable_run(self, run_id):
        return False


def spec_with(**overrides):
    return {"dataset": {"kind": "csv", "id": 1}, "task": "classification", "target": "y",
            "models": ["LogisticRegression"], **overrides}


def errors_of(data, lookups=Lookups()):
    with pytest.raises(SpecError) as caught:
        validate_spec(data, lookups=lookups)
    return caught.value.errors


def test_it_keeps_the_columns_to_leave_out():
    spec = validate_spec(spec_with(drop_columns=["rownames", "rownames"]), lookups=Lookups())
    assert spec["drop_columns"] == ["rownames"]
    assert "drop_columns" not in validate_spec(spec_with(drop_columns=[]), lookups=Lookups())


@pytest.mark.parametrize("value, path, message", [
    (["y"], "drop_columns.0", "'y' is the target column; it cannot also be left out."),
    (["weight"], "drop_columns.0", "The dataset has no column 'weight'."),
    ("rownames", "drop_columns", "Must be a list of the dataset's column names to leave out."),
    ([3], "drop_columns.0", "Must be a list of the dataset's column names to leave out."),
    (["x"] * 1001, "drop_columns", "1,001 columns; at most 1,000 can be left out."),
])
def test_it_refuses_bad_columns_to_leave_out(value, path, message):
    assert errors_of(spec_with(drop_columns=value))[path] == [message]


def test_it_leaves_columns_out_of_uploads_only():
    errors = errors_of({"dataset": {"kind": "builtin", "name": "iris"}, "models": ["LogisticRegression"],
                        "drop_columns": ["sepal length (cm)"]})
    assert errors == {"drop_columns": ["Columns can be left out of an uploaded CSV dataset only."]}


def test_it_refuses_a_categorical_imputer_after_the_encoder():
    errors = errors_of(spec_with(preprocessing=["one_hot_encoder", {"name": "categorical_imputer",
                                                                    "params": {"strategy": "most_frequent"}}]))
    assert errors == {"preprocessing.1.name": ["A categorical_imputer fills text columns before they are encoded: "
                                               "put it before the one_hot_encoder."]}
    assert errors_of(spec_with(preprocessing=[{"name": "categorical_imputer", "params": {"strategy": "mean"}}])) == {
        "preprocessing.0.params.strategy": ["Must be one of: most_frequent, constant."]}


TEXT = "rownames,size,colour,y\n" + "".join(
    f"{i},{'' if i % 9 == 0 else i % 7},{'' if i % 5 == 0 else ['red', 'blue'][i % 2]},{i % 2}\n" for i in range(60))


def test_it_fills_each_kind_of_column_its_own_way_and_leaves_columns_out(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(TEXT)
    spec = csv_spec(path, drop_columns=["rownames"], preprocessing=[
        {"name": "simple_imputer", "params": {"strategy": "median"}},
        {"name": "categorical_imputer", "params": {"strategy": "most_frequent"}},
        {"name": "one_hot_encoder", "params": {}}])
    result = engine.execute(spec, StepRecorder(), tmp_path / "run-1", dataset_path=path)
    model = load_bundle(result["bundle"]["path"]).model
    columns = model.named_steps["columns"]
    assert list(columns.feature_names_in_) == ["size", "colour"]
    text = columns.named_transformers_["text"]
    assert [name for name, _ in text.steps] == ["categorical_imputer", "one_hot_encoder"]
    assert text.named_steps["categorical_imputer"].strategy == "most_frequent"
    assert columns.named_transformers_["numeric"].named_steps["simple_imputer"].strategy == "median"
    # The gaps were filled, not encoded as a category of their own: only red and blue remain.
    assert list(text.named_steps["one_hot_encoder"].categories_[0]) == ["blue", "red"]


def test_it_names_every_data_problem_at_once(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(TEXT.replace("rownames", "name").replace("\n0,", "\nzero,"))
    reporter = StepRecorder()
    with pytest.raises(engine.DataError) as caught:
        engine.execute(csv_spec(path), reporter, tmp_path / "run-1", dataset_path=path)
    message = caught.value.message
    assert "Column 'name' holds text (for example 'zero')" in message
    assert "Column 'colour' holds text (for example 'blue')" in message
    assert "Column 'size' has 7 missing values (data rows 1, 10, 19)" in message
    assert caught.value.code == "several"
