"""experiments/: CRUD, with the spec validated like the wizard's and errors keyed by spec field."""

import json

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


def test_it_deletes_an_experiment(api, outsider_api, experiment):
    assert outsider_api.delete(f"{URL}{experiment.pk}/").status_code == 404
    assert api.delete(f"{URL}{experiment.pk}/").status_code == 204
    assert not Experiment.objects.exists()
