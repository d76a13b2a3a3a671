"""Issue 14, finding 1 (the work horse's side): every run has a wall-clock and a memory limit, and a run that
reaches one ends Failed with a message saying which limit, its value and how to raise it."""

import pytest

from runs.worker import limits
from runs.control import launch_run
from runs.models import Run, RunEvent, RunStep
from tests.conftest import IRIS_SPEC
from tests.helpers import start_worker
from tests.runwork import (
    MANY_FITS_SPEC,
    ONE_LONG_FIT_SPEC,
    assert_nothing_more_written,
    wait_for_fitting,
    wait_for_status,
)

# About 320 MB of features alone (400,000 rows x 100 float64 columns), well within the catalog's bounds.
BIG_DATA_SPEC = {
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 400_000, "n_features": 100},
    "task": "classification",
    "models": ["LogisticRegression"],
    "cv": {"kind": "stratified_kfold", "folds": 2},
    "metric": "accuracy",
}


@pytest.fixture
def limited_worker(request, transactional_db):
    process = start_worker(**request.param)
    yield process
    process.stop()


def last_event(run):
    return RunEvent.objects.filter(run=run).order_by("-seq").first()


def test_it_takes_the_limits_from_the_settings_then_the_spec_up_to_the_ceilings(settings):
    settings.RUNWATCH = {
        **settings.RUNWATCH, "RUN_TIME_LIMIT_SECONDS": 60, "RUN_TIME_LIMIT_MAX_SECONDS": 600,
        "RUN_MEMORY_LIMIT_MB": 512, "RUN_MEMORY_LIMIT_MAX_MB": 2048, "CANCEL_GRACE_SECONDS": 5,
    }
    assert limits.for_spec({}) == limits.Limits(time_seconds=60, memory_mb=512)
    assert limits.for_spec({"limits": {"time_seconds": 120}}) == limits.Limits(120, 512)
    assert limits.for_spec({"limits": {"time_seconds": 10_000, "memory_mb": 99_999}}) == limits.Limits(600, 2048)
    assert limits.job_timeout({"limits": {"time_seconds": 120}}) == 120 + 5 + 60


@pytest.mark.system
@pytest.mark.parametrize("limited_worker", [{"RUNWATCH_RUN_MEMORY_LIMIT_MB": "300"}], indirect=True)
def test_it_fails_a_run_that_passes_its_memory_limit(limited_worker, owner):
    run = launch_run(owner, spec=BIG_DATA_SPEC, name="Too big")

    wait_for_status(run, Run.Status.FAILED, timeout=90)

    assert run.message == "It used more than its memory limit of 300 MB"
    assert run.error_message.startswith("Load data failed: it used more than its memory limit of 300 MB.")
    assert '"limits": {"memory_mb": ...}' in run.error_message
    assert "RUN_MEMORY_LIMIT_MB" in run.error_message
    event = last_event(run)
    assert event.data.pop("elapsed_seconds") >= 0
    assert event.type == "JOB_FAILED" and event.data == {
        "status": "failed", "previous": "running", "message": run.error_message, "partial": False, "runner": "cv",
        "steps": [{"step": "load_data", "label": "Load data", "status": "failed"}],  # the step it cut short
        "finished_fits": 0, "total_fits": run.total_fits,
    }
    assert RunStep.objects.get(run=run, name="load_data").status == RunStep.Status.FAILED
    assert limited_worker.alive()
    assert_nothing_more_written(run)
    # The limit is about what a run allocates: an ordinary run fits well under it on the same worker.
    small = launch_run(owner, spec=IRIS_SPEC, name="Small")
    wait_for_status(small, Run.Status.COMPLETED, timeout=90)


@pytest.mark.system
@pytest.mark.parametrize("limited_worker", [{"RUNWATCH_RUN_TIME_LIMIT": "3"}], indirect=True)
def test_it_ends_a_fit_that_outlasts_the_time_limit(limited_worker, owner):
    run = launch_run(owner, spec=ONE_LONG_FIT_SPEC, name="One long fit")
    wait_for_fitting(run)

    # The fit takes minutes: only the watchdog can end it, at the limit plus the grace period (2 s in tests).
    wait_for_status(run, Run.Status.FAILED, timeout=30)

    assert (run.finished_at - run.started_at).total_seconds() < 15
    assert run.message == "It reached its time limit of 3 s"
    assert run.error_message.startswith("Cross-validate (variant 1: ")
    assert "failed: it reached its time limit of 3 s." in run.error_message
    assert '"limits": {"time_seconds": ...}' in run.error_message
    assert "RUN_TIME_LIMIT_SECONDS" in run.error_message
    assert "the engine was here" in run.traceback  # for staff: what the fit was doing
    assert last_event(run).type == "JOB_FAILED"
    assert "traceback" not in last_event(run).data
    assert limited_worker.alive()
    assert_nothing_more_written(run)


@pytest.mark.system
@pytest.mark.parametrize("limited_worker", [{"RUNWATCH_RUN_TIME_LIMIT": "3"}], indirect=True)
def test_it_stops_between_fits_at_the_time_limit_and_keeps_what_was_reported(limited_worker, owner):
    run = launch_run(owner, spec=MANY_FITS_SPEC, name="Many fits")

    wait_for_status(run, Run.Status.FAILED, timeout=60)

    assert run.message == "It reached its time limit of 3 s"
    assert "failed: it reached its time limit of 3 s." in run.error_message
    assert RunStep.objects.get(run=run, name="cross_validate").detail == "it reached its time limit of 3 s"
    assert 0 < run.fold_metrics.values("variant", "fold").distinct().count() < run.total_fits
    assert run.partial is True
    assert last_event(run).type == "JOB_FAILED"
    assert_nothing_more_written(run)
