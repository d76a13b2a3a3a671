"""Shared by the cancellation, fault and CLI tests: specs with known timing, and ways to prove that nothing
more is written for a run once it has ended."""

import os

import pytest
from rq.job import Job
from rq.worker import Worker

from runs.worker.scheduling import get_queue
from runs.models import FoldMetric, LogEntry, Run, RunEvent, RunStep
from tests.helpers import wait_for

# Many short fits (~0.1 s each, 200 of them): a run that is still going when a test cancels it, and that the
# engine can stop between fits.
MANY_FITS_SPEC = {
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 3000, "n_features": 20, "seed": 1},
    "task": "classification",
    "models": [
        {"estimator": "RandomForestClassifier", "params": {"n_estimators": [10], "max_depth": list(range(2, 42))}}
    ],
    "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}

# One fit of about two minutes on this machine, far beyond the cancel grace period (2 s in tests): only a
# kill stops it.
ONE_LONG_FIT_SPEC = {
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 20000, "n_features": 50, "seed": 1},
    "task": "classification",
    "models": [{"estimator": "GradientBoostingClassifier", "params": {"n_estimators": [500]}}],
    "cv": {"kind": "stratified_kfold", "folds": 2, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}


def status_of(run):
    return Run.objects.filter(pk=run.pk).values_list("status", flat=True).get()


def wait_for_status(run, status, timeout=60):
    wait_for(lambda: status_of(run) == status, timeout=timeout, message=f"run {run.pk} to be {status}")
    run.refresh_from_db()
    return run


def wait_for_end(run, timeout=120):
    """The run, refreshed, once it is in a terminal status (whichever)."""
    wait_for(lambda: Run.objects.filter(pk=run.pk, status__in=Run.TERMINAL).exists(), timeout=timeout,
             message=f"run {run.pk} to end")
    run.refresh_from_db()
    return run


def wait_for_fitting(run, timeout=60):
    """Running, and inside the fitting loop (a fold has begun), not still loading data."""
    wait_for_status(run, Run.Status.RUNNING, timeout)
    wait_for(
        lambda: RunEvent.objects.filter(run=run, type="FOLD_PROGRESS").exists(),
        timeout=timeout,
        message=f"run {run.pk} to start a fold",
    )


def snapshot(run):
    """Everything that would change if anything more were written for the run."""
    fields = Run.objects.filter(pk=run.pk).values(
        "status", "last_seq", "updated_at", "heartbeat_at", "finished_at", "message", "partial", "progress",
        "finished_fits", "error_message",
    ).get()
    return {
        **fields,
        "events": RunEvent.objects.filter(run=run).count(),
        "metrics": FoldMetric.objects.filter(run=run).count(),
        "logs": LogEntry.objects.filter(run=run).count(),
        "steps": sorted(RunStep.objects.filter(run=run).values_list("name", "status", "finished_at")),
    }


def job_is_over(run):
    """The RQ job has ended and no worker is busy with it: no work horse is left that could write."""
    connection = get_queue().connection
    try:
        status = Job.fetch(run.rq_job_id, connection=connection).get_status()
    except Exception:
        status = None
    if status not in (None, "finished", "failed", "stopped", "canceled"):
        return False
    return all(w.get_current_job_id() != run.rq_job_id for w in Worker.all(connection=connection))


def assert_nothing_more_written(run, quiet_seconds=3, settled=None):
    """Once the job is over (or `settled()` says so), nothing changes for the run during a few more seconds."""
    settled = settled or (lambda: job_is_over(run))
    wait_for(settled, timeout=30, message=f"the job of run {run.pk} to be over")
    before = snapshot(run)
    with pytest.raises(AssertionError, match="Timed out"):
        wait_for(lambda: snapshot(run) != before, timeout=quiet_seconds, interval=0.2, message="a later write")
    assert snapshot(run) == before


def children(pid):
    """Process ids whose parent is `pid`, from /proc (the work horse is the worker's only child)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def is_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def horse_of(worker_process, timeout=30):
    return wait_for(lambda: children(worker_process.pid), timeout=timeout, message="the work horse")[0]
