"""models/: promoted models, list, retrieve, download."""

import hashlib

import pytest

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/"


@pytest.fixture
def model_id(api, completed_run):
    response = api.post(f"/api/v1/runs/{completed_run.pk}/promote/", {"name": "iris-v1"}, format="json")
    return response.json()["id"]


def test_it_lists_my_promoted_models(api, outsider_api, staff_api, anon, model_id, completed_run):
    body = api.get(URL).json()
    assert body["count"] == 1
    assert body["results"][0] | {"created": None} == {
        "id": model_id, "name": "iris-v1", "owner": "alice", "run": completed_run.pk,
        "sha256": completed_run.model_sha256, "size_bytes": 18, "metric": "accuracy", "score": 0.95, "created": None,
    }
    assert outsider_api.get(URL).json()["count"] == 0
    assert staff_api.get(URL).json()["count"] == 1
    assert anon.get(URL).status_code == 401


def test_it_retrieves_a_model(api, outsider_api, staff_api, model_id):
    assert api.get(f"{URL}{model_id}/").json()["name"] == "iris-v1"
    assert outsider_api.get(f"{URL}{model_id}/").status_code == 404
    assert staff_api.get(f"{URL}{model_id}/").status_code == 200
    assert api.get(f"{URL}999999/").status_code == 404


def test_it_downloads_a_model_with_its_checksum(api, outsider_api, anon, model_id):
    response = api.get(f"{URL}{model_id}/download/")
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    assert response["X-Model-SHA256"] == hashlib.sha256(content).hexdigest()
    assert 'filename="iris-v1.joblib"' in response["Content-Disposition"]
    assert outsider_api.get(f"{URL}{model_id}/download/").status_code == 404
    assert anon.get(f"{URL}{model_id}/download/").status_code == 401


def test_it_is_read_only(api, model_id):
    assert api.post(URL, {"name": "x"}, format="json").status_code == 405
    assert api.delete(f"{URL}{model_id}/").status_code == 405
