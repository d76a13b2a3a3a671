"""Bad input anywhere is a 4xx with a JSON body, never a 500."""

import json

import pytest

pytestmark = pytest.mark.django_db

JSON_POSTS = ["/api/v1/runs/", "/api/v1/experiments/", "/api/v1/auth/token/"]


@pytest.mark.parametrize("path", JSON_POSTS)
@pytest.mark.parametrize(
    "body",
    ['{"name": ', "[1, 2]", '"just a string"', "NaN", '{"spec": NaN}', "[" * 100_000, '{"a": 1e999999}', "\x00"],
)
def test_it_answers_400_to_malformed_or_odd_json(api, path, body):
    response = api.post(path, body, content_type="application/json")
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize("path", JSON_POSTS[:2])
def test_it_answers_415_to_other_content_types(api, path):
    response = api.post(path, "name=x", content_type="text/plain")
    assert response.status_code == 415
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "body",
    [{"spec": {"models": [{"estimator": "Ridge", "params": {"alpha": [10**400]}}]}},
     {"spec": {"seed": 10**100, "dataset": {"kind": "csv", "id": 2**70}}},
     {"spec": {"models": "x" * 100_000}},
     {"spec": {"dataset": {"kind": ["list"]}, "cv": [], "branches": {"a": 1}, "training": 5}},
     {"name": "x" * 1000, "spec": {}}],
)
def test_it_answers_400_to_wrong_types_and_huge_values(api, body):
    for path in JSON_POSTS[:2]:
        response = api.post(path, {"name": "x", **body}, format="json")
        assert response.status_code == 400, (path, response.content[:300])


def test_it_rejects_deeply_nested_specs(api):
    spec = current = {}
    for _ in range(200):
        current["x"] = current = {}
    response = api.post("/api/v1/runs/", json.dumps({"spec": spec}), content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"spec": ["Nested more than 32 levels deep."]}
