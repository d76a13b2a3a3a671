"""The contract test: drive the live API (daphne, a real worker, a real run) through a whole session and check
every response against the generated OpenAPI schema: status code documented, content type, headers, body."""

import hashlib

import httpx
import pytest
import schemathesis

from runs.models import Run


class Contract:
    def __init__(self, base_url, token=None):
        self.schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/schema/")
        headers = {"Authorization": f"Token {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=90)
        self.checked = set()

    def call(self, method, path, expect, **kwargs):
        response = self.http.request(method, path, **kwargs)
        response.request.read()  # multipart bodies are streamed; the validator looks at the request too
        assert response.status_code == expect, (method, path, response.status_code, response.text[:2000])
        operation = self.schema.find_operation_by_path(method, path.split("?")[0])
        assert operation is not None, f"{method} {path} is not in the schema"
        operation.validate_response(response)  # raises with the violations
        self.checked.add((method, operation.path))
        return response


@pytest.mark.timeout(240)
def test_it_conforms_to_its_schema_for_a_whole_session(live_api, live_worker, owner, outsider, iris_spec):
    anon = Contract(live_api.url)
    token = anon.call("POST", "/api/v1/auth/token/", 200,
                      json={"username": "alice", "password": "alice-password-1"}).json()["token"]
    anon.call("POST", "/api/v1/auth/token/", 400, json={"username": "alice"})
    anon.call("GET", "/api/v1/runs/", 401)
    api = Contract(live_api.url, token)
    api.checked |= anon.checked

    # Datasets
    csv = b"x1,x2,target\n" + b"".join(b"%d,%d,%s\n" % (i, i % 7, b"ab"[i % 2:i % 2 + 1]) for i in range(40))
    dataset = api.call("POST", "/api/v1/datasets/", 201, files={"file": ("d.csv", csv, "text/csv")}).json()
    api.call("POST", "/api/v1/datasets/", 400, files={"file": ("empty.csv", b"", "text/csv")})
    api.call("GET", "/api/v1/datasets/", 200)
    api.call("GET", f"/api/v1/datasets/{dataset['id']}/", 200)

    # Experiments
    experiment = api.call("POST", "/api/v1/experiments/", 201, json={"name": "Iris", "spec": iris_spec}).json()
    api.call("POST", "/api/v1/experiments/", 400, json={"name": "Bad", "spec": {**iris_spec, "cv": {"folds": 0}}})
    api.call("GET", "/api/v1/experiments/", 200)
    api.call("GET", f"/api/v1/experiments/{experiment['id']}/", 200)
    api.call("PATCH", f"/api/v1/experiments/{experiment['id']}/", 200, json={"description": "notes"})
    api.call("PUT", f"/api/v1/experiments/{experiment['id']}/", 200, json={"name": "Iris", "spec": iris_spec})

    # A real run, from submission to the end.
    run = api.call("POST", "/api/v1/runs/", 201, json={"experiment": experiment["id"]}).json()
    api.call("POST", "/api/v1/runs/", 400, json={"spec": {"models": []}})
    base = f"/api/v1/runs/{run['id']}"
    while not (run := api.call("GET", f"{base}/wait/?timeout=30", 200).json())["is_terminal"]:
        pass
    assert run["status"] == "completed", run
    api.call("GET", "/api/v1/runs/?status=completed", 200)
    api.call("GET", "/api/v1/runs/?status=bogus", 400)
    api.call("GET", f"{base}/", 200)
    events = api.call("GET", f"{base}/events/?after=0&limit=1000", 200).json()
    assert [e["seq"] for e in events] == list(range(1, run["last_seq"] + 1))
    api.call("GET", f"{base}/events/?after=-1", 400)
    assert api.call("GET", f"{base}/progress/", 200).json()["percent"] == 100.0
    api.call("GET", f"{base}/steps/", 200)
    assert api.call("GET", f"{base}/metrics/?metric=accuracy", 200).json()["count"] == 6
    api.call("GET", f"{base}/logs/?level=info", 200)
    results = api.call("GET", f"{base}/results/", 200).json()
    diagnosed = api.call("GET", f"{base}/diagnostics/", 200).json()
    assert len(results["leaderboard"]) == 2 and results["leaderboard"][0]["rank"] == 1
    assert diagnosed["kind"] == "classification" and len(diagnosed["folds"]) == 3
    download = api.call("GET", f"{base}/model/", 200)
    assert hashlib.sha256(download.content).hexdigest() == download.headers["X-Model-SHA256"] == run["model_sha256"]
    api.call("POST", f"{base}/cancel/", 409)
    api.call("POST", f"{base}/resume/", 409)  # a completed run has nothing to resume

    # Registry
    model = api.call("POST", f"{base}/promote/", 201, json={"name": "iris-best"}).json()
    api.call("POST", f"{base}/promote/", 400, json={"name": "iris-best"})
    api.call("GET", "/api/v1/models/", 200)
    api.call("GET", f"/api/v1/models/{model['id']}/", 200)
    assert api.call("GET", f"/api/v1/models/{model['id']}/download/", 200).content == download.content

    # Share links (sharing/api.py): make one, list it, refuse a past expiry, revoke it.
    share = api.call("POST", "/api/v1/shares/", 201, json={"run": run["id"]}).json()
    api.call("POST", "/api/v1/shares/", 400, json={"run": run["id"], "expires_at": "2000-01-01T00:00:00Z"})
    api.call("GET", "/api/v1/shares/", 200)
    api.call("GET", f"/api/v1/shares/{share['id']}/", 200)
    assert api.call("POST", f"/api/v1/shares/{share['id']}/revoke/", 200).json()["status"] == "revoked"

    # Re-run and stop it; promote a run that did not complete.
    again = api.call("POST", f"{base}/rerun/", 201).json()
    api.call("POST", f"/api/v1/runs/{again['id']}/promote/", 409, json={"name": "too-soon"})
    stopped = api.call("POST", f"/api/v1/runs/{again['id']}/cancel/", 200).json()
    assert stopped["status"] in ("stopped", "cancelling")

    # Someone else's objects do not exist; deleting works.
    api.call("GET", "/api/v1/runs/999999/", 404)
    api.call("GET", "/api/v1/runs/999999/wait/?timeout=0", 404)
    api.call("DELETE", f"/api/v1/experiments/{experiment['id']}/", 204)
    api.call("DELETE", f"/api/v1/datasets/{dataset['id']}/", 204)

    # Every operation in the schema was exercised at least once.
    documented = {(method.upper(), path) for path, item in api.schema.raw_schema["paths"].items() for method in item}
    assert documented - api.checked == set()
    assert Run.objects.filter(owner=outsider).count() == 0
