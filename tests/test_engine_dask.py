"""Fits on a Dask cluster (engine/runners/dask_fits.py), with real processes: a LocalCluster of two 1-thread workers.
The same scores as one at a time, every fold once, the cluster's workers named, a stop that leaves nothing on
the scheduler, and a readable failure when the scheduler cannot be reached."""

import copy
import os
import time

import psutil
import pytest
from distributed import Client, LocalCluster

import engine
from engine.runners import dask_fits
from tests.helpers import wait_for
from tests.test_engine_parallel import SPEC, Recorder, scores_by_fold

# loky children and Dask clusters are processes (tests/tiers.py).
pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def cluster():
    # Processes, as on real hosts: the tasks and the data are pickled across, and a worker can be killed.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture
def observer(cluster):
    """A second client, to look at the scheduler as an operator would."""
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        yield client


class Logged(Recorder):
    def __init__(self, stop_after=None):
        super().__init__(stop_after)
        self.lines = []

    def log(self, level, message, **context):
        self.lines.append((level, message))


def on_dask(spec, tmp_path, reporter, address):
    from engine.spec import validate_spec

    return engine.execute(validate_spec(spec), reporter, tmp_path, default_jobs=-1, scheduler=address)


def sequential_scores(tmp_path, spec=SPEC):
    from engine.spec import validate_spec

    reporter = Recorder()
    engine.execute(validate_spec({**spec, "n_jobs": 1}), reporter, tmp_path / "sequential")
    return scores_by_fold(reporter)


def runwatch_tasks(observer):
    """The run's tasks the scheduler still holds, by state (pending, processing, ...)."""
    def tasks(dask_scheduler):
        return {key: ts.state for key, ts in dask_scheduler.tasks.items()
                if isinstance(key, str) and key.startswith("runwatch-") and "-fit-" in key}

    return observer.run_on_scheduler(tasks)


def test_it_scores_every_fold_as_a_sequential_run_does(cluster, tmp_path):
    reporter = Logged()
    outcome = on_dask(SPEC, tmp_path / "dask", reporter, cluster.scheduler_address)
    assert scores_by_fold(reporter) == sequential_scores(tmp_path)  # bit for bit, fold by fold
    assert len(reporter.folds) == len(scores_by_fold(reporter)) == 4 * 3  # each (branch, variant, fold) once
    assert [e["finished"] for e in reporter.folds] == list(range(1, 13))
    assert outcome["summary"]["models_trained"] == 13
    messages = [m for _, m in reporter.lines]
    assert f"Fitting 12 models on the Dask cluster at {cluster.scheduler_address}" in messages
    assert f"Connected to the Dask scheduler at {cluster.scheduler_address}: 2 workers, 2 threads" in messages


def test_it_says_which_dask_workers_run_the_fits(cluster, tmp_path):
    reporter = Logged()
    on_dask(SPEC, tmp_path, reporter, cluster.scheduler_address)
    snapshots = [fits for kind, fits in reporter.timeline if kind == "in_flight"]
    assert snapshots[-1] == []
    assert all(len(fits) <= 2 for fits in snapshots)  # one fit per worker thread
    workers = {fit["worker"] for fits in snapshots for fit in fits}
    assert workers == set(cluster.scheduler_info["workers"])  # both workers, by their addresses
    for index, (kind, item) in enumerate(reporter.timeline):  # seen in flight before its result, not after
        if kind != "fold_done":
            continue
        before = [f for k, fits in reporter.timeline[:index] if k == "in_flight" for f in fits]
        after = [f for k, fits in reporter.timeline[index + 1:] if k == "in_flight" for f in fits]
        assert item in {(f["branch"], f["variant"], f["fold"]) for f in before}
        assert item not in {(f["branch"], f["variant"], f["fold"]) for f in after}


def test_it_keeps_a_spec_that_asks_for_one_fit_at_a_time_in_the_work_horse(cluster, tmp_path):
    reporter = Logged()
    on_dask({**SPEC, "n_jobs": 1}, tmp_path, reporter, cluster.scheduler_address)
    assert not any("Dask" in m for _, m in reporter.lines)
    assert len(reporter.folds) == 12


def test_it_stops_and_leaves_nothing_of_the_run_on_the_scheduler(cluster, observer, tmp_path):
    spec = copy.deepcopy(SPEC)
    spec["models"][0]["params"] = {"n_estimators": [200, 300, 400], "max_depth": [None, 8]}
    reporter = Logged(stop_after=1)
    with pytest.raises(engine.Cancelled):
        on_dask(spec, tmp_path, reporter, cluster.scheduler_address)
    assert len(reporter.folds) == 1  # nothing reported after the stop
    wait_for(lambda: not runwatch_tasks(observer), timeout=2, message="the scheduler to forget the run's fits")


def test_it_fails_readably_when_the_scheduler_cannot_be_reached(tmp_path):
    started = time.monotonic()
    with pytest.raises(engine.RunError) as raised:
        on_dask(SPEC, tmp_path, Logged(), "tcp://127.0.0.1:1")
    assert time.monotonic() - started < 30
    assert raised.value.step == "cross_validate"
    assert raised.value.message.startswith("Could not reach the Dask scheduler at tcp://127.0.0.1:1: ")
    assert "Check RUNWATCH_DASK_SCHEDULER" in raised.value.message


def test_it_runs_the_fits_again_when_a_dask_worker_is_lost(cluster, observer, tmp_path):
    spec = copy.deepcopy(SPEC)
    spec["models"][0]["params"] = {"n_estimators": [60, 120], "max_depth": [None, 6]}

    class KillsAWorker(Logged):
        killed, seen = None, set()

        def in_flight(self, fits):
            super().in_flight(fits)
            self.seen |= {f["worker"] for f in fits}
            # Once both workers have begun a fit (so both hold the data), kill one that is inside a fit.
            if self.killed is None and len(self.seen) == 2 and len(self.folds) >= 2 and fits:
                self.killed = fits[0]["worker"]
                pid = observer.run(os.getpid, workers=[self.killed])[self.killed]
                psutil.Process(pid).kill()  # as the kernel's OOM killer would

    reporter = KillsAWorker()
    try:
        on_dask(spec, tmp_path, reporter, cluster.scheduler_address)
        assert reporter.killed is not None
        assert scores_by_fold(reporter) == sequential_scores(tmp_path, spec)
        assert len(reporter.folds) == 12
        assert any(level == "warning" and f"Dask worker {reporter.killed} was lost" in message
                   and "Dask runs them again on the other workers" in message for level, message in reporter.lines)
    finally:
        # The nanny starts a new worker process; the next tests want two again.
        wait_for(lambda: len(observer.scheduler_info(n_workers=-1)["workers"]) == 2, timeout=30,
                 message="the nanny to restart the killed worker")


def test_it_fails_readably_when_the_scheduler_dies_during_the_run(tmp_path):
    """A scheduler and a worker as their own processes (`dask scheduler`, `dask worker`, as on real hosts); the
    scheduler is killed while the run fits. The run must end with a readable RunError, not wait for ever."""
    import signal
    import sys
    import threading

    from tests.helpers import Process, free_port

    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = Process([*dask, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                        "dask-scheduler")
    worker = Process([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                      "--nworkers", "1", "--no-dashboard"], "dask-worker")
    try:
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)
        spec = copy.deepcopy(SPEC)
        spec["models"][0]["params"] = {"n_estimators": [200, 300, 400], "max_depth": [None, 8]}
        reporter, raised = Logged(), []

        def run():
            try:
                on_dask(spec, tmp_path, reporter, address)
            except BaseException as e:  # noqa: BLE001 - what the run ends with is the point
                raised.append(e)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        wait_for(lambda: reporter.folds, timeout=60, message="a first fold on the cluster")
        os.killpg(scheduler.pid, signal.SIGKILL)
        thread.join(timeout=60)
        assert not thread.is_alive(), "the run still waits on a dead scheduler"
        assert len(raised) == 1 and isinstance(raised[0], engine.RunError), raised
        assert raised[0].message.startswith(
            f"Lost the Dask scheduler at {address} while the run was fitting (the connection to it broke). Check that "
            "it is up (RUNWATCH_DASK_SCHEDULER), then re-run."), raised[0].message
    finally:
        worker.stop()
        scheduler.stop()
