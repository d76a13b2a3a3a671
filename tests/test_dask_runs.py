"""Issue 26, point 5, through the whole product: an RQ worker whose RUNWATCH_DASK_SCHEDULER names a real Dask
cluster (a LocalCluster of worker processes) sends a run's fits there. The run ends as a sequential run would,
its stream is gap-free, a fit that raises on the cluster fails the run readably, a stop leaves nothing on the
scheduler, and a scheduler that cannot be reached fails the run well within 30 s."""

import copy
import tempfile
import time
from pathlib import Path

import pytest

from runs import events
from runs.control import cancel_run, launch_run
from runs.models import Run, RunEvent
from tests.helpers import free_port, start_worker, wait_for
from tests.runwork import MANY_FITS_SPEC, assert_nothing_more_written, wait_for_end, wait_for_fitting, wait_for_status
from tests.test_engine_dask import cluster, observer, runwatch_tasks  # noqa: F401 - fixtures
from tests.test_engine_parallel import SPEC, Recorder, outcome_of, scores_by_fold

pytestmark = pytest.mark.system  # its tests start processes (tests/tiers.py)


@pytest.fixture
def dask_worker(cluster, transactional_db):
    """An RQ worker that sends the fits of its runs to the cluster."""
    process = start_worker(RUNWATCH_DASK_SCHEDULER=cluster.scheduler_address)
    yield process
    process.stop()


def logged(run):
    return [e.data["message"] for e in RunEvent.objects.filter(run=run, type=events.JOB_LOG).order_by("seq")]


def test_it_runs_a_run_on_the_cluster_with_the_scores_of_a_sequential_run(dask_worker, cluster, owner):
    run = wait_for_end(launch_run(owner, spec={**SPEC, "n_jobs": -1}, name="on dask"))
    assert run.status == Run.Status.COMPLETED, run.error_message + run.traceback
    assert not run.in_flight  # nothing shown running once it is over

    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    folds = list(RunEvent.objects.filter(run=run, type=events.JOB_METRICS).values_list("data", flat=True))
    stored = {(d["branch"], d["variant"], d["fold"]): d["metrics"] for d in folds}
    assert len(folds) == len(stored) == 12  # each (branch, variant, fold) exactly once
    sequential = Recorder()
    with tempfile.TemporaryDirectory() as scratch:
        outcome_of({**SPEC, "n_jobs": 1}, Path(scratch), sequential)
    assert stored == scores_by_fold(sequential)  # bit for bit, fold by fold

    assert f"Fitting 12 models on the Dask cluster at {cluster.scheduler_address}" in logged(run)
    flights = RunEvent.objects.filter(run=run, type=events.FITS_IN_FLIGHT).values_list("data", flat=True)
    workers = {fit["worker"] for data in flights for fit in data["fits"]}
    assert workers and workers <= set(cluster.scheduler_info["workers"])  # the page names the cluster's workers


def test_it_fails_a_run_whose_fit_raises_on_the_cluster(dask_worker, observer, owner):
    spec = copy.deepcopy(SPEC)
    # lbfgs refuses an l1 penalty, but only when it fits: the spec is valid, the fit raises on a Dask worker.
    spec["models"] = [{"estimator": "LogisticRegression", "label": "LR",
                       "params": {"penalty": ["l1"], "solver": ["lbfgs"]}}]
    run = wait_for_end(launch_run(owner, spec={**spec, "n_jobs": 2}, name="raises on dask"))
    assert run.status == Run.Status.FAILED
    assert "Fitting LR(penalty=l1, solver=lbfgs) on fold " in run.error_message, run.error_message
    assert "failed: ValueError: Solver lbfgs supports only 'l2' or None penalties" in run.error_message
    assert "traceback" not in run.error_message
    assert not run.in_flight
    wait_for(lambda: not runwatch_tasks(observer), timeout=10, message="the scheduler to forget the run's fits")


def test_it_stops_a_run_on_the_cluster_and_leaves_nothing_on_the_scheduler(dask_worker, observer, owner):
    run = launch_run(owner, spec={**MANY_FITS_SPEC, "n_jobs": 2}, name="stopped on dask")
    wait_for_fitting(run)
    wait_for(lambda: runwatch_tasks(observer), timeout=60, message="the run's fits on the scheduler")
    cancel_run(run, by=owner)
    wait_for_status(run, Run.Status.STOPPED, timeout=30)
    wait_for(lambda: not runwatch_tasks(observer), timeout=10, message="the scheduler to forget the run's fits")
    assert_nothing_more_written(run)
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED and not run.in_flight


def test_it_fails_a_run_whose_scheduler_cannot_be_reached_well_within_30_seconds(transactional_db, owner):
    nowhere = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    process = start_worker(RUNWATCH_DASK_SCHEDULER=nowhere)
    try:
        run = launch_run(owner, spec={**SPEC, "n_jobs": 2}, name="no scheduler")
        wait_for(lambda: Run.objects.filter(pk=run.pk).exclude(started_at=None).exists(), timeout=60,
                 message="the worker to start the run")
        began = time.monotonic()
        run = wait_for_end(run, timeout=60)
        assert time.monotonic() - began < 30
        assert run.status == Run.Status.FAILED
        assert f"Could not reach the Dask scheduler at {nowhere}" in run.error_message
        assert "RUNWATCH_DASK_SCHEDULER" in run.error_message
    finally:
        process.stop()
