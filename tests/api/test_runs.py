"""runs/: submit (from an experiment or an inline spec), list with filters, retrieve; who sees what."""

import datetime as dt

import pytest
from django.utils import timezone

from runs.control import launch_run
from runs.worker.scheduling import get_queue
from runs.models import Run

pytestmark = pytest.mark.django_db
URL = "/api/v1/runs/"


def test_it_submits_a_run_from_an_experiment(api, owner, experiment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"experiment": experiment.pk}, format="json")
    assert response.status_code == 201
    body = response.json()
    run = Run.objects.get(pk=body["id"])
    assert (run.owner, run.experiment, run.name) == (owner, experiment, "Iris baseline")
    assert body["status"] == "queued" and body["total_fits"] == 6
    assert body["progress_record"]["total_units"] == 6
    assert body["last_seq"] == 1
    assert run.rq_job_id in get_queue().job_ids


def test_it_submits_an_inline_spec_with_a_name(api, iris_spec):
    response = api.post(URL, {"spec": iris_spec, "name": "Ad hoc iris"}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "Ad hoc iris"
    assert response.json()["experiment"] is None


def test_it_reports_inline_spec_errors_by_path(api, iris_spec):
    iris_spec["models"][0]["estimator"] = "NoSuchModel"
    response = api.post(URL, {"spec": iris_spec}, format="json")
    assert response.status_code == 400
    assert response.json() == {"spec": {"models.0.estimator": ["Unknown estimator."]}}
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "non_field_errors"),
        ({"experiment": "EXP", "spec": {}}, "non_field_errors"),
        ({"experiment": "abc"}, "experiment"),
        ({"experiment": 10**30}, "experiment"),
        ({"experiment": 999999}, "experiment"),
        ({"spec": [1]}, "spec"),
        ({"spec": {"runner": "cv"}, "name": ["list"]}, "name"),
    ],
)
def test_it_rejects_bad_submissions_with_field_errors(api, experiment, body, field):
    body = {k: experiment.pk if v == "EXP" else v for k, v in body.items()}
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_it_does_not_launch_someone_elses_experiment(outsider_api, experiment):
    response = outsider_api.post(URL, {"experiment": experiment.pk}, format="json")
    assert response.status_code == 400
    assert "does not exist" in response.json()["experiment"][0]


def test_it_retrieves_a_run_with_status_progress_and_timestamps(api, run):
    body = api.get(f"{URL}{run.pk}/").json()
    assert body["id"] == run.pk and body["status"] == "queued" and body["owner"] == "alice"
    assert body["progress"] == 0.0
    assert body["progress_record"]["percent"] == 0.0
    assert body["queued_at"] and body["started_at"] is None and body["finished_at"] is None
    assert body["spec"]["metric"] == "accuracy"
    assert body["has_model"] is False


def test_it_hides_runs_from_everyone_but_the_owner_and_staff(api, outsider_api, staff_api, anon, run):
    assert outsider_api.get(f"{URL}{run.pk}/").status_code == 404
    assert outsider_api.get(URL).json()["count"] == 0
    assert staff_api.get(f"{URL}{run.pk}/").status_code == 200
    assert staff_api.get(URL).json()["count"] == 1
    response = anon.get(f"{URL}{run.pk}/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert anon.get(URL).status_code == 401


def test_it_rejects_a_bad_token(run):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_it_filters_runs(api, owner, experiment, iris_spec):
    a = launch_run(owner, experiment=experiment)
    b = launch_run(owner, spec=iris_spec)
    c = launch_run(owner, spec=iris_spec)
    c.mark_stopped()
    old = timezone.now() - dt.timedelta(days=10)
    Run.objects.filter(pk=b.pk).update(queued_at=old)

    def ids(**params):
        response = api.get(URL, params)
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    assert ids() == {a.pk, b.pk, c.pk}
    assert ids(status="stopped") == {c.pk}
    assert ids(status="queued", experiment=experiment.pk) == {a.pk}
    since = (old + dt.timedelta(days=1)).isoformat()
    assert ids(created_after=since) == {a.pk, c.pk}
    assert ids(created_before=since) == {b.pk}


@pytest.mark.parametrize(
    "params, field",
    [({"status": "sleeping"}, "status"), ({"experiment": "x"}, "experiment"),
     ({"experiment": str(10**30)}, "experiment"), ({"created_after": "yesterday"}, "created_after")],
)
def test_it_rejects_bad_filters(api, params, field):
    response = api.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_it_paginates(api, owner, iris_spec, settings):
    for _ in range(3):
        launch_run(owner, spec=iris_spec)
    from rest_framework.pagination import PageNumberPagination

    PageNumberPagination.page_size, previous = 2, PageNumberPagination.page_size
    try:
        first = api.get(URL).json()
        second = api.get(first["next"]).json()
    finally:
        PageNumberPagination.page_size = previous
    assert first["count"] == 3 and len(first["results"]) == 2 and len(second["results"]) == 1
    assert api.get(URL, {"page": 99}).status_code == 404
    assert api.get(URL, {"page": "x"}).status_code == 404


def test_it_answers_json_404_for_unknown_ids_and_paths(api):
    for path in (f"{URL}999999/", f"{URL}abc/", f"{URL}{10**30}/", "/api/v1/nothing-here/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert "detail" in response.json()


def test_it_does_not_delete_or_edit_runs(api, run):
    assert api.delete(f"{URL}{run.pk}/").status_code == 405
    assert api.patch(f"{URL}{run.pk}/", {"name": "x"}, format="json").status_code == 405
