"""Issue 29, part 1: Resume a stopped or failed run from its finished folds. The new run reuses every finished
(branch, variant, fold) once, fits only the missing ones, and ends with the leaderboard of an uninterrupted run;
a resume that could not be exact is refused (409) with the reason."""

import copy
import os
import signal
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from runs import events
from results import leaderboard
from runs.control import cancel_run, launch_run
from runs.models import FoldMetric, Run, RunEvent
from runs.resume import CannotResume, resume
from tests.helpers import start_worker, wait_for
from tests.runwork import horse_of, is_running, wait_for_end, wait_for_status
from tests.test_engine_parallel import Recorder, outcome_of, scores_by_fold

# 12 variants x 5 folds = 60 fits of ~0.1-0.3 s each: long enough to stop about half-way.
SPEC = {
    "runner": "cv", "task": "classification", "target": "target", "seed": 7, "metric": "accuracy",
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 1500, "n_features": 12,
                "noise": 0.1, "seed": 3, "n_classes": 2},
    "models": [{"estimator": "RandomForestClassifier", "label": "RF",
                "params": {"n_estimators": [20, 40, 60], "max_depth": [3, 5, 8, None]}}],
    "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 1},
}


@pytest.fixture(scope="module")
def uninterrupted():
    """{(branch, variant, fold): metrics} of the spec run from start to end, in the engine."""
    reporter = Recorder()
    with tempfile.TemporaryDirectory() as scratch:
        outcome_of(SPEC, Path(scratch), reporter)
    return scores_by_fold(reporter)


def stopped_part_way(owner, fits=20):
    run = launch_run(owner, spec=SPEC, name="half")
    wait_for(lambda: Run.objects.get(pk=run.pk).finished_fits >= fits, timeout=120, message=f"{fits} fits")
    cancel_run(run, by=owner)
    wait_for_status(run, Run.Status.STOPPED, timeout=60)
    run.refresh_from_db()
    assert 0 < FoldMetric.objects.filter(run=run).values("variant", "fold").distinct().count() < 60
    return run


def folds_of(run):
    """(reused, fitted) {(branch, variant, fold): metrics} from the run's JOB_METRICS events."""
    reused, fitted = {}, {}
    for data in RunEvent.objects.filter(run=run, type=events.JOB_METRICS).values_list("data", flat=True):
        key = (data["branch"], data["variant"], data["fold"])
        into = reused if data.get("reused") else fitted
        assert key not in reused and key not in fitted, f"{key} reported twice"
        into[key] = data["metrics"]
    return reused, fitted


def test_it_fits_only_the_missing_folds_and_ends_with_the_uninterrupted_leaderboard(worker, owner, uninterrupted):
    first = stopped_part_way(owner)
    done_before = {(m.branch, m.variant, m.fold) for m in FoldMetric.objects.filter(run=first)}

    second = wait_for_end(resume(first, owner=owner))
    assert second.status == Run.Status.COMPLETED, second.error_message
    assert second.resumed_from_id == first.pk and second.reused_fits == len(done_before)
    reused, fitted = folds_of(second)
    assert set(reused) == done_before  # every finished fold reused, once
    assert set(fitted) == set(uninterrupted) - done_before  # and only the missing ones fitted
    assert {**reused, **fitted} == uninterrupted  # the same scores, fold by fold
    assert second.summary["models_trained"] == len(fitted) + 1  # + the refit
    # Progress counted the work left: it ended at all of it.
    assert (second.finished_fits, second.total_fits) == (len(fitted), 60 - len(done_before))

    board = leaderboard.leaderboard(second)
    stored = {(r["branch"], r["variant"], r["fold"]): r["values"] for r in board["rows"]}
    assert stored == uninterrupted
    assert {(r["branch"], r["variant"], r["fold"]) for r in board["rows"] if r["reused"]} == done_before
    assert FoldMetric.objects.filter(run=second, reused=True).count() == len(done_before) * len(
        next(iter(uninterrupted.values())))


def test_it_resumes_a_resumed_run(worker, owner, uninterrupted):
    first = stopped_part_way(owner, fits=10)
    second = resume(first, owner=owner)
    wait_for(lambda: Run.objects.get(pk=second.pk).finished_fits >= 10, timeout=120, message="10 more fits")
    cancel_run(second, by=owner)
    wait_for_status(second, Run.Status.STOPPED, timeout=60)
    third = wait_for_end(resume(second, owner=owner))
    assert third.status == Run.Status.COMPLETED, third.error_message
    reused, fitted = folds_of(third)
    assert len(reused) == FoldMetric.objects.filter(run=second).values("variant", "fold").distinct().count()
    assert {**reused, **fitted} == uninterrupted


def test_it_resumes_a_run_whose_worker_was_killed_mid_fit(worker, monitor, owner, uninterrupted):
    first = launch_run(owner, spec=SPEC, name="killed")
    wait_for(lambda: Run.objects.get(pk=first.pk).finished_fits >= 15, timeout=120, message="15 fits")
    horse = horse_of(worker)
    os.killpg(worker.pid, signal.SIGKILL)  # kill -9 the worker mid-fit; its orphaned horse exits by itself
    wait_for(lambda: not is_running(horse), timeout=30, message="the orphaned work horse to exit")
    first = wait_for_status(first, Run.Status.FAILED, timeout=60)  # the monitor: no heartbeat
    assert first.error_message.startswith("Worker lost")
    done_before = {(m.branch, m.variant, m.fold) for m in FoldMetric.objects.filter(run=first)}
    assert 0 < len(done_before) < 60

    replacement = start_worker()
    try:
        second = wait_for_end(resume(first, owner=owner))
    finally:
        replacement.stop()
    assert second.status == Run.Status.COMPLETED, second.error_message
    reused, fitted = folds_of(second)
    assert set(reused) == done_before  # what the killed run stored is reused, once
    assert set(fitted) == set(uninterrupted) - done_before
    assert {**reused, **fitted} == uninterrupted  # the same scores as a run never interrupted


def test_it_fails_readably_when_the_data_changed_before_the_worker_loaded_it(worker, owner):
    first = stopped_part_way(owner, fits=5)
    second = resume(first, owner=owner)  # refused at launch were the upload's checksum to differ; here the
    Run.objects.filter(pk=first.pk).update(data_hash="0" * 64)  # data changes while the resume is queued
    second = wait_for_end(second)
    assert second.status == Run.Status.FAILED
    assert second.error_message == (
        "Load data failed: the data is not the data of the run being resumed (its SHA-256 changed), so its folds "
        "cannot be reused. Start a fresh run instead: Re-run fits every fold again.")
    assert not FoldMetric.objects.filter(run=second).exists()


def test_it_refuses_what_could_not_be_exact(owner, outsider, client):
    run = Run.objects.create(owner=owner, name="done", spec=SPEC, runner="cv", status=Run.Status.COMPLETED,
                             library_versions={"scikit-learn": "0.0.1"})
    client.force_login(owner)
    url = reverse("api:run-resume", args=[run.pk])

    def refusal():
        answer = client.post(url, {}, content_type="application/json")
        assert answer.status_code == 409, answer.content
        assert answer.json()["code"] == "cannot_resume"
        return answer.json()["detail"]

    assert refusal() == f"Only a stopped or failed run can be resumed; run #{run.pk} is completed."
    Run.objects.filter(pk=run.pk).update(status=Run.Status.STOPPED)
    assert refusal() == f"Run #{run.pk} finished no fold, so there is nothing to reuse. Re-run it instead."
    FoldMetric.objects.create(run=run, variant=1, fold=1, metric="accuracy", value=0.9, seq=1)
    assert refusal().startswith(f"Run #{run.pk} fitted with scikit-learn 0.0.1 and this server has ")
    Run.objects.filter(pk=run.pk).update(library_versions={})
    edited = copy.deepcopy(SPEC)
    edited["cv"]["folds"] = 4
    answer = client.post(url, {"spec": edited}, content_type="application/json")
    assert answer.status_code == 409 and "this one was edited" in answer.json()["detail"]
    assert client.post(url, {"spec": "folds=4"}, content_type="application/json").json() == {
        "spec": ["Expected a JSON object: the run's spec."]}
    Run.objects.filter(pk=run.pk).update(runner="training")
    assert refusal().startswith("Only a cross-validation run can be resumed")
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, runner="cv")
    assert refusal() == f"Only a stopped or failed run can be resumed; run #{run.pk} is running."
    assert Run.objects.count() == 1  # nothing launched by any of them

    client.force_login(outsider)
    assert client.post(url, {}, content_type="application/json").status_code == 404


def test_it_offers_resume_on_the_page_and_resumes_from_it(worker, owner, client):
    first = stopped_part_way(owner, fits=5)
    client.force_login(owner)
    page = client.get(first.get_absolute_url()).content.decode()
    assert 'id="resume-btn"' in page
    answer = client.post(reverse("results:resume", args=[first.pk]))
    second = Run.objects.get(resumed_from=first)
    assert answer.status_code == 302 and answer["Location"] == second.get_absolute_url()
    page = client.get(second.get_absolute_url()).content.decode()
    assert (f"Resumed from <a href=\"{first.get_absolute_url()}\">half #{first.pk}</a>: {second.reused_fits} of 60 "
            "fits reused") in page
    wait_for_end(second)
    page = client.get(second.get_absolute_url()).content.decode()
    assert page.count('data-r="1"') == second.reused_fits  # the chart's reused points, hollow (run.js)


def test_it_resumes_from_the_command_line(worker, owner, capsys):
    first = stopped_part_way(owner, fits=5)
    call_command("run_experiment", "--resume", str(first.pk), "--user", owner.username)
    second = Run.objects.get(resumed_from=first)
    assert f"Resuming run #{first.pk} as run #{second.pk}: {second.reused_fits} of 60 fits reused" in (
        capsys.readouterr().out)
    with pytest.raises(CannotResume, match="Only a stopped or failed run"):
        resume(second, owner=owner)
