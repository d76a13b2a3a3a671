"""experiments/: CRUD, with the spec validated like the wizard's and errors keyed by spec field."""

import json
import time

import pytest

from experiments.models import Experiment

pytestmark = pytest.mark.django_db
URL = "/api/v1/experiments/"


def test_it_creates_an_experiment_with_a_normalised_spec(api, owner, iris_spec):
    response = api.post(URL, {"name": "Iris", "description": "baseline", "spec": iris_spec}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["owner"] == "alice"
    experiment = Experiment.objects.get(pk=body["id"])
    assert experiment.owner == owner
    # validate_spec filled in the defaults.
    assert body["spec"]["runner"] == "cv" and body["spec"]["seed"] == 42
    assert experiment.spec == body["spec"]


def test_it_reports_spec_errors_by_dotted_path(api, iris_spec):
    iris_spec["models"][0]["params"]["C"] = [-1.0]
    iris_spec["cv"]["folds"] = 1
    response = api.post(URL, {"name": "Bad", "spec": iris_spec}, format="json")
    assert response.status_code == 400
    errors = response.json()["spec"]
    assert set(errors) == {"models.0.params.C", "cv.folds"}
    assert errors["cv.folds"] == ["Must be between 2 and 50."]
    assert not Experiment.objects.exists()


@pytest.mark.parametrize("spec", ["a string", [1, 2], 3, None])
def test_it_requires_the_spec_to_be_an_object(api, spec):
    response = api.post(URL, {"name": "x", "spec": spec}, format="json")
    assert response.status_code == 400
    assert isinstance(response.json()["spec"], list)


@pytest.mark.parametrize("bad", ["1e999", '"nul\\u0000char"', "-1e999"])
def test_it_rejects_values_the_database_cannot_store(api, iris_spec, bad):
    # 1e999 is valid JSON that Python reads as infinity; PostgreSQL's jsonb takes neither it nor NUL.
    iris_spec["dataset"]["noise"] = "BAD"
    body = json.dumps({"name": "x", "spec": iris_spec}).replace('"BAD"', bad)
    response = api.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert "spec" in response.json()


def test_it_requires_a_name(api, iris_spec):
    response = api.post(URL, {"spec": iris_spec}, format="json")
    assert response.status_code == 400
    assert response.json()["name"] == ["This field is required."]


def test_it_lists_and_retrieves_only_my_experiments(api, outsider_api, staff_api, anon, experiment):
    assert [e["id"] for e in api.get(URL).json()["results"]] == [experiment.pk]
    assert outsider_api.get(URL).json()["count"] == 0
    assert staff_api.get(URL).json()["count"] == 1
    assert api.get(f"{URL}{experiment.pk}/").json()["name"] == "Iris baseline"
    assert outsider_api.get(f"{URL}{experiment.pk}/").status_code == 404
    assert staff_api.get(f"{URL}{experiment.pk}/").status_code == 200
    assert anon.get(f"{URL}{experiment.pk}/").status_code == 401


def test_it_updates_an_experiment(api, outsider_api, experiment, iris_spec):
    iris_spec["cv"]["folds"] = 4
    response = api.put(f"{URL}{experiment.pk}/", {"name": "Renamed", "spec": iris_spec}, format="json")
    assert response.status_code == 200
    experiment.refresh_from_db()
    assert experiment.name == "Renamed" and experiment.spec["cv"]["folds"] == 4

    assert api.patch(f"{URL}{experiment.pk}/", {"description": "notes"}, format="json").status_code == 200
    bad = api.patch(f"{URL}{experiment.pk}/", {"spec": {**iris_spec, "metric": "r2"}}, format="json")
    assert bad.status_code == 400 and "metric" in bad.json()["spec"]
    assert outsider_api.patch(f"{URL}{experiment.pk}/", {"name": "mine"}, format="json").status_code == 404
    experiment.refresh_from_db()
    assert (experiment.name, experiment.description) == ("Renamed", "notes")


def test_it_validates_a_csv_dataset_against_the_experiment_owner(api, outsider_api, owner, media):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("d.csv", b"x,target\n1,a\n2,b\n3,a\n4,b\n", "text/csv")
    dataset_id = api.post("/api/v1/datasets/", {"file": upload}, format="multipart").json()["id"]
    spec = {"dataset": {"kind": "csv", "id": dataset_id}, "task": "classification",
            "models": ["LogisticRegression"], "cv": {"folds": 2}}
    assert api.post(URL, {"name": "mine", "spec": spec}, format="json").status_code == 201
    response = outsider_api.post(URL, {"name": "theirs", "spec": spec}, format="json")
    assert response.status_code == 400 and "dataset.id" in response.json()["spec"]


def test_it_leaves_out_named_columns_and_refuses_unknown_ones(api, media):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("d.csv", b"id,x,target\n1,5,a\n2,3,b\n3,8,a\n4,1,b\n", "text/csv")
    dataset_id = api.post("/api/v1/datasets/", {"file": upload}, format="multipart").json()["id"]
    spec = {"dataset": {"kind": "csv", "id": dataset_id}, "task": "classification", "drop_columns": ["id"],
            "models": ["LogisticRegression"], "cv": {"folds": 2}}
    response = api.post(URL, {"name": "no id", "spec": spec}, format="json")
    assert response.status_code == 201 and response.json()["spec"]["drop_columns"] == ["id"]
    response = api.post(URL, {"name": "bad", "spec": {**spec, "drop_columns": ["id", "ID", "target"]}}, format="json")
    assert response.status_code == 400
    assert response.json()["spec"] == {"drop_columns.1": ["The dataset has no column 'ID'."],
                                       "drop_columns.2": ["'target' is the target column; it cannot also be left out."]}


def test_it_deletes_an_experiment(api, outsider_api, experiment):
    assert outsider_api.delete(f"{URL}{experiment.pk}/").status_code == 404
    assert api.delete(f"{URL}{experiment.pk}/").status_code == 204
    assert not Experiment.objects.exists()


# --- Hostile and careless specs (issue 14) --------------------------------------------------------------

STRING_FIELDS = {
    "metric": lambda spec, v: spec.update(metric=v),
    "runner": lambda spec, v: spec.update(runner=v),
    "task": lambda spec, v: spec.update(task=v),
    "cv.kind": lambda spec, v: spec["cv"].update(kind=v),
    "dataset.name": lambda spec, v: spec["dataset"].update(name=v),
    "dataset.generator": lambda spec, v: spec.update(dataset={"kind": "synthetic", "generator": v}),
    "models.0.estimator": lambda spec, v: spec["models"][0].update(estimator=v),
    "preprocessing.0.name": lambda spec, v: spec.update(preprocessing=[{"name": v}]),
    "models.0.label": lambda spec, v: spec["models"][0].update(label=v),
}


@pytest.mark.parametrize("value", [["a", "list"], {"an": "object"}, 7], ids=["list", "object", "number"])
@pytest.mark.parametrize("path", list(STRING_FIELDS))
def test_it_reports_a_wrongly_typed_field_as_a_field_error(api, iris_spec, path, value):
    # These were TypeError (unhashable type) and a 500; an object label was accepted and failed the run later.
    STRING_FIELDS[path](iris_spec, value)
    response = api.post(URL, {"name": "typed", "spec": iris_spec}, format="json")
    assert response.status_code == 400
    assert path in response.json()["spec"], response.json()
    assert not Experiment.objects.exists()


def test_it_refuses_hyperparameters_that_would_exhaust_the_machine(api, iris_spec):
    iris_spec["models"] = [
        {"estimator": "RandomForestClassifier", "params": {"n_estimators": [1_000_000_000]}},
        {"estimator": "MLPClassifier", "params": {"hidden_layer_sizes": [100_000_000]}},
    ]
    iris_spec["preprocessing"] = [{"name": "polynomial_features", "params": {"degree": 50}}]
    response = api.post(URL, {"name": "greedy", "spec": iris_spec}, format="json")
    assert response.status_code == 400
    assert response.json()["spec"] == {
        "preprocessing.0.params.degree": ["Must be a whole number between 1 and 5."],
        "models.0.params.n_estimators.0": ["Must be between 1 and 2000."],
        "models.1.params.hidden_layer_sizes.0": ["Each layer must be a whole number between 1 and 2048."],
    }


def test_it_refuses_more_fits_than_the_cap(api, iris_spec):
    iris_spec["branches"] = [{"name": f"branch {i}", "preprocessing": []} for i in range(50)]
    iris_spec["models"][0]["params"] = {"C": [float(c) for c in range(1, 51)]}
    iris_spec["cv"]["folds"] = 5
    response = api.post(URL, {"name": "wide", "spec": iris_spec}, format="json")
    assert response.status_code == 400
    assert response.json()["spec"][0].startswith("12,500 fits (50 branches x 50 variants x 5 folds)")


def test_it_takes_the_limit_ceilings_from_settings(api, iris_spec, settings):
    settings.RUNWATCH = {**settings.RUNWATCH, "RUN_TIME_LIMIT_MAX_SECONDS": 60, "RUN_MEMORY_LIMIT_MAX_MB": 512}
    iris_spec["limits"] = {"time_seconds": 61, "memory_mb": 513}
    response = api.post(URL, {"name": "limited", "spec": iris_spec}, format="json")
    assert response.status_code == 400
    assert "between 1 and 60, the ceiling" in response.json()["spec"]["limits.time_seconds"][0]
    assert "between 256 and 512, the ceiling" in response.json()["spec"]["limits.memory_mb"][0]

    iris_spec["limits"] = {"time_seconds": 60, "memory_mb": 512}
    response = api.post(URL, {"name": "limited", "spec": iris_spec}, format="json")
    assert response.status_code == 201
    assert response.json()["spec"]["limits"] == {"time_seconds": 60, "memory_mb": 512}


def test_it_refuses_a_body_over_the_size_limit_at_once(api, iris_spec):
    # 10,000 models x 100 values, 4.5 MB: this went unanswered for 650 s, burning a daphne thread.
    iris_spec["models"] = [{"estimator": "RandomForestClassifier", "params": {"n_estimators": list(range(1, 101))}}
                           for _ in range(10_000)]
    body = json.dumps({"name": "huge", "spec": iris_spec})
    assert len(body) > 4_000_000
    started = time.perf_counter()
    response = api.post(URL, body, content_type="application/json")
    assert time.perf_counter() - started < 1
    assert response.status_code == 413
    assert "over 1024 KB" in response.json()["detail"]
