"""The OpenAPI schema at /api/v1/schema/ and the docs UI at /api/v1/docs/."""

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("post", "/api/v1/auth/token/"),
    ("get", "/api/v1/datasets/"), ("post", "/api/v1/datasets/"),
    ("get", "/api/v1/datasets/{id}/"), ("delete", "/api/v1/datasets/{id}/"),
    ("get", "/api/v1/experiments/"), ("post", "/api/v1/experiments/"), ("get", "/api/v1/experiments/{id}/"),
    ("put", "/api/v1/experiments/{id}/"), ("patch", "/api/v1/experiments/{id}/"),
    ("delete", "/api/v1/experiments/{id}/"),
    ("get", "/api/v1/models/"), ("get", "/api/v1/models/{id}/"), ("get", "/api/v1/models/{id}/download/"),
    ("get", "/api/v1/runs/"), ("post", "/api/v1/runs/"), ("get", "/api/v1/runs/{id}/"),
    *(("get", f"/api/v1/runs/{{id}}/{a}/") for a in
      ("events", "progress", "steps", "metrics", "logs", "results", "diagnostics", "model", "wait")),
    *(("post", f"/api/v1/runs/{{id}}/{a}/") for a in ("cancel", "rerun", "resume", "promote")),
    ("get", "/api/v1/shares/"), ("post", "/api/v1/shares/"), ("get", "/api/v1/shares/{id}/"),
    ("post", "/api/v1/shares/{id}/revoke/"),
}


@pytest.fixture
def schema(anon):
    response = anon.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_it_serves_a_valid_openapi_3_schema(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_it_describes_every_endpoint(schema):
    found = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert found == OPERATIONS


def test_it_documents_auth_and_errors_on_every_operation(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (method, path)
            if path == "/api/v1/auth/token/":
                assert {"400", "429"} <= set(responses)
                continue
            assert {"tokenAuth": []} in operation["security"], (method, path)
            assert "401" in responses, (method, path)
            if "{id}" in path:
                assert "404" in responses, (method, path)


def test_it_describes_the_request_and_response_bodies(schema):
    paths, components = schema["paths"], schema["components"]["schemas"]
    submit = paths["/api/v1/runs/"]["post"]
    assert list(submit["requestBody"]["content"]) == ["application/json"]
    assert set(components["RunCreateRequest"]["properties"]) == {"experiment", "spec", "name"}
    assert "multipart/form-data" in paths["/api/v1/datasets/"]["post"]["requestBody"]["content"]
    assert paths["/api/v1/runs/{id}/cancel/"]["post"]["responses"].keys() >= {"200", "409"}
    assert "application/octet-stream" in paths["/api/v1/runs/{id}/model/"]["get"]["responses"]["200"]["content"]
    events = paths["/api/v1/runs/{id}/events/"]["get"]
    assert {p["name"] for p in events["parameters"]} == {"id", "after", "limit"}
    assert events["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    logs = paths["/api/v1/runs/{id}/logs/"]["get"]
    assert {p["name"] for p in logs["parameters"]} >= {"level", "step", "fold", "branch", "variant", "page"}
    assert set(components["Event"]["properties"]) == {"seq", "type", "ts", "run", "data"}
    wait = paths["/api/v1/runs/{id}/wait/"]["get"]
    assert "event loop" in wait["description"]


def test_it_serves_the_docs_ui_without_a_cdn(anon):
    response = anon.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # The split view keeps its script out of the page (CSP: no inline script); the script names the schema.
    script = anon.get("/api/v1/docs/?script=").content.decode()
    assert "/api/v1/schema/" in script
    assert "cdn.jsdelivr.net" not in html and "drf_spectacular_sidecar" in html


def test_it_describes_every_event_payload_by_type(schema):
    from runs import events

    data = schema["components"]["schemas"]["Event"]["properties"]["data"]
    titled = {t for variant in data["anyOf"] for t in variant["title"].split(" / ")}
    assert titled == set(events.STORED_TYPES)
    metrics = next(v for v in data["anyOf"] if v["title"] == events.JOB_METRICS)
    assert {"running_mean", "best_score", "finished_fits", "metrics"} <= set(metrics["properties"])
    assert set(metrics["required"]) >= {"branch", "variant", "primary", "finished_fits", "total_fits"}
