"""runs/{id}/ actions: cancel, events, progress, steps, metrics, logs, results, model, rerun, promote."""

import hashlib

import pytest

from experiments.models import RegisteredModel
from runs.models import Run, RunStep, events_after
from tests.helpers import reporter_for

pytestmark = pytest.mark.django_db


def url(run, action=""):
    return f"/api/v1/runs/{run.pk}/{action + '/' if action else ''}"


def log(run, message, level="info", **context):
    reporter_for(run).log(level, message, **context)  # as a real run writes it


def fold(run, branch, variant, fold_, scores, description="LogisticRegression"):
    primary = scores.get("accuracy", next(iter(scores.values())))
    reporter_for(run).fold_done(
        branch=branch, variant=variant, description=description, fold=fold_, metrics=scores, fit_time=0.1,
        primary_metric="accuracy", primary=primary, running_mean=primary, finished=1, total=1, eta_seconds=None,
        best_score=primary,
    )


# --- permissions, for every action ----------------------------------------------------------------------

ACTIONS = [("get", a) for a in ("", "events", "progress", "steps", "metrics", "logs", "results", "model")] + [
    ("post", a) for a in ("cancel", "rerun", "promote")
]


@pytest.mark.parametrize("method, action", ACTIONS)
def test_it_hides_every_action_from_outsiders(outsider_api, anon, run, method, action):
    assert getattr(outsider_api, method)(url(run, action), {"name": "x"}, format="json").status_code == 404
    assert getattr(anon, method)(url(run, action), {"name": "x"}, format="json").status_code == 401
    assert Run.objects.count() == 1 and Run.objects.get().status == "queued"


@pytest.mark.parametrize("action", ["events", "progress", "steps", "metrics", "logs", "results"])
def test_it_lets_staff_read_every_run(staff_api, run, action):
    assert staff_api.get(url(run, action)).status_code == 200


# --- cancel -----------------------------------------------------------------------------------------------


def test_it_cancels_a_queued_run(api, run):
    response = api.post(url(run, "cancel"))
    assert response.status_code == 200
    assert response.json()["status"] == "stopped"
    assert api.post(url(run, "cancel")).json()["status"] == "stopped"  # harmless the second time


def test_it_moves_a_running_run_to_cancelling(api, run):
    run.mark_running("w")
    assert api.post(url(run, "cancel")).json()["status"] == "cancelling"


def test_it_answers_409_when_the_run_already_ended(api, staff_api, completed_run):
    response = api.post(url(completed_run, "cancel"))
    assert response.status_code == 409
    assert response.json() == {"detail": "This run already completed; there is nothing to stop."}
    assert staff_api.post(url(completed_run, "cancel")).status_code == 409


# --- events -----------------------------------------------------------------------------------------------


def test_it_returns_events_in_order_in_the_websocket_shape(api, run):
    run.mark_running("w")
    log(run, "hello", step="load_data")
    body = api.get(url(run, "events")).json()
    assert [e["seq"] for e in body] == [1, 2, 3]
    assert [e["type"] for e in body] == ["JOB_STATUS", "JOB_STATUS", "JOB_LOG"]
    assert body == events_after(run.pk)
    assert set(body[2]) == {"seq", "type", "ts", "run", "data"} and body[2]["data"]["message"] == "hello"
    assert [e["seq"] for e in api.get(url(run, "events"), {"after": 1, "limit": 1}).json()] == [2]
    assert api.get(url(run, "events"), {"after": 3}).json() == []


@pytest.mark.parametrize("params", [{"after": -1}, {"after": "x"}, {"after": 2**64}, {"limit": 0}, {"limit": 10**6}])
def test_it_rejects_bad_event_cursors(api, run, params):
    response = api.get(url(run, "events"), params)
    assert response.status_code == 400
    assert set(response.json()) == set(params)


# --- progress, steps ------------------------------------------------------------------------------------


def test_it_returns_the_progress_record(api, run):
    Run.objects.filter(pk=run.pk).update(finished_fits=3, best_score=0.9, warnings=["slow"])
    body = api.get(url(run, "progress")).json()
    assert body["runner"] == "cv"
    assert (body["completed_units"], body["total_units"], body["percent"]) == (3, 6, 50.0)
    assert body["best_score"] == 0.9 and body["warnings"] == ["slow"] and body["error"] == ""
    assert set(body) >= {"early_stopped", "started_at", "updated_at", "latest_score", "eta_seconds"}


def test_it_lists_the_steps_in_order(api, run):
    RunStep.objects.filter(run=run, order=0).update(status="completed")
    body = api.get(url(run, "steps")).json()
    assert [s["order"] for s in body] == sorted(s["order"] for s in body) and len(body) >= 2
    assert body[0]["status"] == "completed" and body[1]["status"] == "pending"


# --- metrics, logs ---------------------------------------------------------------------------------------


def test_it_lists_and_filters_metrics(api, run):
    fold(run, "default", 1, 1, {"accuracy": 0.9, "f1_macro": 0.8})
    fold(run, "default", 2, 1, {"accuracy": 0.7})
    body = api.get(url(run, "metrics")).json()
    assert body["count"] == 3
    only = api.get(url(run, "metrics"), {"variant": 2}).json()["results"]
    assert [(m["variant"], m["metric"], m["value"]) for m in only] == [(2, "accuracy", 0.7)]
    assert api.get(url(run, "metrics"), {"metric": "f1_macro", "fold": 1}).json()["count"] == 1
    assert api.get(url(run, "metrics"), {"fold": 0}).status_code == 400


def test_it_filters_logs_by_level_and_context(api, run):
    log(run, "loading", step="load_data")
    log(run, "fold 1", fold=1, branch="scaled", variant=2)
    log(run, "careful", level="warning", fold=2, branch="scaled", variant=2)

    def messages(**params):
        response = api.get(url(run, "logs"), params)
        assert response.status_code == 200, response.json()
        return [line["message"] for line in response.json()["results"]]

    assert messages() == ["loading", "fold 1", "careful"]
    assert messages(level="warning") == ["careful"]
    assert messages(step="load_data") == ["loading"]
    assert messages(branch="scaled", variant=2) == ["fold 1", "careful"]
    assert messages(fold=1) == ["fold 1"]
    assert api.get(url(run, "logs"), {"level": "loud"}).status_code == 400


# --- results ------------------------------------------------------------------------------------------------


def test_it_ranks_variants_by_mean_primary_score(api, run):
    fold(run, "default", 1, 1, {"accuracy": 0.8, "f1_macro": 0.7}, "C=0.1")
    fold(run, "default", 1, 2, {"accuracy": 0.9, "f1_macro": 0.8}, "C=0.1")
    fold(run, "default", 2, 1, {"accuracy": 0.95, "f1_macro": 0.9}, "C=1")
    fold(run, "default", 2, 2, {"accuracy": 0.85, "f1_macro": 0.9}, "C=1")
    fold(run, "scaled", 1, 1, {"accuracy": None}, "C=0.1")
    body = api.get(url(run, "results")).json()
    assert (body["metric"], body["greater_is_better"], body["metrics"]) == ("accuracy", True, ["accuracy", "f1_macro"])
    board = body["leaderboard"]
    assert [(r["rank"], r["branch"], r["variant"]) for r in board] == [(1, "default", 2), (2, "default", 1),
                                                                      (3, "scaled", 1)]
    assert board[0]["primary"] == pytest.approx({"mean": 0.9, "std": 0.05, "count": 2})
    assert board[0]["scores"]["f1_macro"] == pytest.approx({"mean": 0.9, "std": 0.0, "count": 2})
    assert board[0]["folds"] == 2 and board[0]["description"] == "C=1"
    assert board[2]["primary"] == {"mean": None, "std": None, "count": 0}


def test_it_puts_the_lowest_error_first_when_less_is_better(api, owner):
    from runs.control import launch_run

    spec = {"dataset": {"kind": "builtin", "name": "diabetes"}, "models": ["Ridge", "LinearRegression"],
            "metric": "rmse", "cv": {"folds": 2}}
    run = launch_run(owner, spec=spec)
    for variant, error in ((1, 60.0), (2, 50.0)):
        fold(run, "default", variant, 1, {"rmse": error, "r2": 0.4})
    body = api.get(url(run, "results")).json()
    assert body["greater_is_better"] is False
    assert [r["variant"] for r in body["leaderboard"]] == [2, 1]


# --- model, rerun, promote ------------------------------------------------------------------------------


def test_it_downloads_the_model_with_its_checksum(api, completed_run):
    response = api.get(url(completed_run, "model"))
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    assert content == b"model bundle bytes"
    assert response["X-Model-SHA256"] == hashlib.sha256(content).hexdigest()
    assert "attachment" in response["Content-Disposition"]


def test_it_answers_404_for_a_run_without_a_model(api, run):
    response = api.get(url(run, "model"))
    assert response.status_code == 404
    assert response.json()["detail"]


def test_it_reruns_a_run(api, staff_api, completed_run, staff):
    response = api.post(url(completed_run, "rerun"))
    assert response.status_code == 201
    rerun = Run.objects.get(pk=response.json()["id"])
    assert rerun.rerun_of == completed_run and rerun.spec == completed_run.spec and rerun.status == "queued"
    assert response.json()["rerun_of"] == completed_run.pk
    # Staff may re-run anyone's run; the new run is theirs.
    assert Run.objects.get(pk=staff_api.post(url(completed_run, "rerun")).json()["id"]).owner == staff


def test_it_promotes_a_completed_runs_model(api, owner, completed_run):
    response = api.post(url(completed_run, "promote"), {"name": "iris-v1"}, format="json")
    assert response.status_code == 201
    body = response.json()
    model = RegisteredModel.objects.get(pk=body["id"])
    assert (model.owner, model.run, model.name, model.metric, model.score) == (
        owner, completed_run, "iris-v1", "accuracy", 0.95)
    assert model.sha256 == completed_run.model_sha256 == body["sha256"]
    assert model.file.read() == b"model bundle bytes" and body["size_bytes"] == 18

    again = api.post(url(completed_run, "promote"), {"name": "iris-v1"}, format="json")
    assert again.status_code == 400 and "name" in again.json()
    assert api.post(url(completed_run, "promote"), {}, format="json").json() == {"name": ["This field is required."]}


def test_it_refuses_to_promote_a_run_that_did_not_complete(api, run, media):
    response = api.post(url(run, "promote"), {"name": "nope"}, format="json")
    assert response.status_code == 409
    assert "completed" in response.json()["detail"]
    assert not RegisteredModel.objects.exists()


def test_it_refuses_to_promote_a_completed_run_without_a_model(api, run, media):
    run.mark_running("w")
    run.mark_completed({})
    assert api.post(url(run, "promote"), {"name": "nope"}, format="json").status_code == 409


def test_it_keeps_a_promoted_model_after_the_run_is_gone(api, completed_run, media):
    model_id = api.post(url(completed_run, "promote"), {"name": "keep"}, format="json").json()["id"]
    completed_run.delete()
    response = api.get(f"/api/v1/models/{model_id}/download/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"model bundle bytes"
    assert api.get(f"/api/v1/models/{model_id}/").json()["run"] is None

