"""Cancellation that really stops work: queued runs never start; running runs stop cooperatively between fits,
or are killed after the grace period; and after Stopped nothing more is written."""

import random
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rq.job import Job

from accounts.models import Quota
from engine.spec import validate_spec
from runs import jobs
from runs.control import CannotCancel, cancel_run, launch_run
from runs.worker.scheduling import get_queue
from runs.models import FoldMetric, IllegalTransition, Run, RunEvent
from tests.helpers import start_worker, wait_for
from tests.runwork import (
    MANY_FITS_SPEC,
    ONE_LONG_FIT_SPEC,
    assert_nothing_more_written,
    job_is_over,
    snapshot,
    status_of,
    wait_for_fitting,
    wait_for_status,
)


@pytest.fixture
def make_run(iris_spec):
    spec = validate_spec(iris_spec)

    def make(owner, status, **fields):
        job_id = uuid.uuid4().hex
        return Run.objects.create(owner=owner, name="Iris", spec=spec, status=status, rq_job_id=job_id, **fields)

    return make


def event_statuses(run):
    kinds = ("JOB_STATUS", "JOB_COMPLETED", "JOB_FAILED")
    return [e.data["status"] for e in RunEvent.objects.filter(run=run, type__in=kinds).order_by("seq")]


# --- The rules, without a worker ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_moves_a_running_run_to_cancelling_at_once(owner, make_run):
    run = make_run(owner, Run.Status.RUNNING, started_at=timezone.now())

    cancel_run(run)

    assert run.status == Run.Status.CANCELLING
    assert status_of(run) == Run.Status.CANCELLING
    assert run.cancel_requested_at is not None
    assert event_statuses(run) == ["cancelling"]


@pytest.mark.django_db
def test_it_logs_who_stopped_the_run_and_when(owner, make_run):
    queued, running = make_run(owner, Run.Status.QUEUED), make_run(owner, Run.Status.RUNNING)

    cancel_run(queued, by=owner)
    cancel_run(running, by="alice (command line)")

    for run, who in ((queued, "alice"), (running, "alice (command line)")):
        line = run.logs.get()
        assert line.message.startswith(f"Stop requested by {who} at {timezone.now():%Y-%m-%d}")
        # The line is in the stream too, before the status change it explains.
        types = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("type", flat=True))
        assert types[-2:] == ["JOB_LOG", "JOB_STATUS"]
        assert RunEvent.objects.get(run=run, seq=line.seq).data["message"] == line.message


def test_it_makes_a_second_cancel_harmless(owner, make_run):
    running = make_run(owner, Run.Status.RUNNING, started_at=timezone.now())
    cancel_run(running)
    before = snapshot(running)

    assert cancel_run(running).status == Run.Status.CANCELLING
    assert snapshot(running) == before

    stopped = make_run(owner, Run.Status.STOPPED)
    before = snapshot(stopped)
    assert cancel_run(stopped).status == Run.Status.STOPPED
    assert snapshot(stopped) == before


@pytest.mark.django_db
@pytest.mark.parametrize("status, word", [(Run.Status.COMPLETED, "completed"), (Run.Status.FAILED, "failed")])
def test_it_refuses_to_cancel_a_finished_run(owner, make_run, status, word):
    run = make_run(owner, status)

    with pytest.raises(CannotCancel) as e:
        cancel_run(run)

    assert str(e.value) == f"This run already {word}; there is nothing to stop."
    assert status_of(run) == status
    assert not run.events.exists()


@pytest.mark.django_db
def test_it_does_nothing_when_a_worker_picks_up_a_cancelled_run(owner, make_run):
    """The race RQ cannot close for us: a worker dequeued the job just before the cancel removed it."""
    run = make_run(owner, Run.Status.STOPPED)
    before = snapshot(run)

    assert jobs.execute_run(run.pk) is None

    assert snapshot(run) == before


def test_it_tells_one_story_when_the_worker_starts_the_run_during_the_cancel(transactional_db, owner, make_run,
                                                                            monkeypatch):
    """Issue 14, finding 7: the worker's mark_running lands after the cancel has read "queued" and before it
    writes "stopped". With real transactions on two connections, the run must then either never start, or
    not be called "cancelled before it started"."""
    run = make_run(owner, Run.Status.QUEUED)
    real_transition = Run.transition
    worker_tried = threading.Event()
    outcome, threads = {}, []

    def worker_side():  # What runs.worker.execution.execute does first in the work horse.
        try:
            worker_tried.set()
            Run.objects.get(pk=run.pk).mark_running(worker_name="w1")
            outcome["started"] = True
        except IllegalTransition:
            outcome["started"] = False
        finally:
            connection.close()

    def transition(self, new_status, **kwargs):
        if threading.current_thread() is threading.main_thread() and not threads:
            # The cancel is about to write: let the worker go now, in its own thread and transaction.
            threads.append(threading.Thread(target=worker_side))
            threads[0].start()
            if connection.in_atomic_block:
                wait_for(worker_tried.is_set, timeout=10, message="the worker to try")  # It waits for our lock.
            else:
                threads[0].join(timeout=30)  # Nothing holds it back: it starts the run now.
        return real_transition(self, new_status, **kwargs)

    monkeypatch.setattr(Run, "transition", transition)
    cancel_run(run)
    threads[0].join(timeout=30)

    run.refresh_from_db()
    assert outcome == {"started": False}
    assert (run.status, run.message, run.started_at) == (Run.Status.STOPPED, "Cancelled before it started", None)
    assert event_statuses(run) == ["stopped"]


# --- Queued runs never start -------------------------------------------------------------------------------


@pytest.mark.system
def test_it_removes_a_cancelled_queued_run_from_the_queue_and_never_starts_it(transactional_db, owner, experiment):
    run = launch_run(owner, experiment=experiment)
    queue = get_queue()
    assert queue.job_ids == [run.rq_job_id]

    cancel_run(run)

    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert run.message == "Cancelled before it started"
    assert queue.job_ids == []
    assert Job.fetch(run.rq_job_id, connection=queue.connection).get_status() == "canceled"

    # Now a worker comes up. It runs the next launch to the end and never touches the cancelled one.
    before = snapshot(run)
    worker = start_worker()
    try:
        later = launch_run(owner, experiment=experiment)
        wait_for_status(later, Run.Status.COMPLETED, timeout=90)
    finally:
        worker.stop()
    assert snapshot(run) == before
    run.refresh_from_db()
    assert run.started_at is None
    assert event_statuses(run) == ["queued", "stopped"]


def test_it_cancels_a_run_queued_behind_a_busy_worker(worker, owner):
    busy = launch_run(owner, spec=MANY_FITS_SPEC, name="Busy")
    wait_for_fitting(busy)
    waiting = launch_run(owner, spec=MANY_FITS_SPEC, name="Waiting")
    assert status_of(waiting) == Run.Status.QUEUED
    assert waiting.rq_job_id in get_queue().job_ids

    cancel_run(waiting)

    assert status_of(waiting) == Run.Status.STOPPED
    assert waiting.rq_job_id not in get_queue().job_ids
    before = snapshot(waiting)

    # Free the worker; it must go idle without ever starting the cancelled run.
    cancel_run(busy)
    wait_for_status(busy, Run.Status.STOPPED, timeout=60)
    assert_nothing_more_written(busy)
    assert snapshot(waiting) == before
    assert Run.objects.get(pk=waiting.pk).started_at is None


# --- Running runs ------------------------------------------------------------------------------------------


def test_it_stops_a_running_run_cooperatively_and_keeps_partial_results(worker, owner):
    run = launch_run(owner, spec=MANY_FITS_SPEC, name="Many fits")
    wait_for_fitting(run)
    wait_for(lambda: FoldMetric.objects.filter(run=run).exists(), timeout=60, message="a finished fold")

    cancelled = cancel_run(run)
    # Cancelling at once. The engine checks between fits, so on short fits it may already have stopped when
    # the row is read back; the history below says Cancelling came first either way.
    assert cancelled.status in (Run.Status.CANCELLING, Run.Status.STOPPED)

    # No monitor is running: only the engine itself can end it, between two fits.
    wait_for_status(run, Run.Status.STOPPED, timeout=settings.RUNWATCH["CANCEL_GRACE_SECONDS"] + 30)
    assert run.partial is True
    assert "killed" not in run.message
    assert run.kill_sent_at is None
    finished = FoldMetric.objects.filter(run=run).values("variant", "fold").distinct().count()
    assert 0 < finished < run.total_fits
    assert event_statuses(run) == ["queued", "running", "cancelling", "stopped"]
    assert RunEvent.objects.filter(run=run).order_by("-seq").first().data["status"] == "stopped"

    assert_nothing_more_written(run)


def test_it_kills_a_fit_that_outlasts_the_grace_period(worker, monitor, owner):
    run = launch_run(owner, spec=ONE_LONG_FIT_SPEC, name="One long fit")
    wait_for_fitting(run)
    scratch = list(Path(tempfile.gettempdir()).glob(f"runwatch-run-{run.pk}-{run.rq_job_id}-*"))
    assert len(scratch) == 1  # the run's data and models, which a killed horse cannot clean up itself

    cancel_run(run)
    assert status_of(run) == Run.Status.CANCELLING
    asked = time.monotonic()

    # The test processes use a 2 s grace period (tests.helpers.child_env); the fit takes minutes.
    wait_for_status(run, Run.Status.STOPPED, timeout=30)
    assert time.monotonic() - asked < 20
    assert run.kill_sent_at is not None
    assert "killed" in run.message
    assert FoldMetric.objects.filter(run=run).count() == 0
    assert run.partial is False
    assert event_statuses(run) == ["queued", "running", "cancelling", "stopped"]
    assert "stopped by user" in worker.log_text()  # RQ's own account: it was the stop-job command.
    wait_for(lambda: not scratch[0].exists(), timeout=10, message="the stopped horse's scratch to be removed")

    assert_nothing_more_written(run)


# --- Under load: cancels at random moments ------------------------------------------------------------------

# Fits of a few milliseconds (400 rows, 1 tree): a run is a couple of seconds of dense events, so a cancel at a
# random event lands anywhere, from queued to the refit and export.
SHORT_FITS_SPEC = {
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 400, "n_features": 8, "seed": 7},
    "task": "classification",
    "models": [{"estimator": "RandomForestClassifier", "params": {"n_estimators": [1], "max_depth": [4, 8, 12]}}],
    "cv": {"kind": "stratified_kfold", "folds": 10, "shuffle": True, "seed": 7},
    "metric": "accuracy",
}


@pytest.mark.system
def test_it_writes_nothing_after_stopped_for_cancels_at_20_random_moments(transactional_db, owner):
    """20 runs on 3 workers (with a monitor), each cancelled once its stream reaches a random seq (0: while
    queued). For every run that ended Stopped, its Stopped event is the last thing written: no event, fold
    metric or log line has a later seq or a later time."""
    from runs.models import LogEntry
    from tests.cluster import Cluster

    seed = random.randrange(10**6)
    rng = random.Random(seed)
    cluster = Cluster(daphnes=0, workers=3)
    Quota.objects.create(user=owner, running=3)  # every worker busy, so the stops race all three
    try:
        runs = [launch_run(owner, spec=SHORT_FITS_SPEC, name=f"Stop me {i}") for i in range(20)]
        # Seq 0 cancels at once (queued, now and then); up to 60 reaches into the refit and export (about 80 events).
        moments = {run.pk: 0 if rng.random() < 0.15 else rng.randint(1, 60) for run in runs}
        pending = dict(moments)

        def cancel_the_due_ones():
            for pk, seq, status in Run.objects.filter(pk__in=pending).values_list("pk", "last_seq", "status"):
                if status in Run.TERMINAL:
                    del pending[pk]  # it ended before its moment came: nothing to stop
                elif seq >= pending[pk]:
                    del pending[pk]
                    try:
                        cancel_run(Run.objects.get(pk=pk), by="the fault test")
                    except CannotCancel:
                        pass  # it completed between the read above and the cancel: nothing to stop either
            return not pending

        wait_for(cancel_the_due_ones, timeout=240, interval=0.01, message=f"every cancel (seed {seed})")
        wait_for(lambda: not Run.objects.filter(pk__in=moments, status__in=Run.ACTIVE).exists(), timeout=120,
                 message=f"every run to end (seed {seed})")
        wait_for(lambda: all(job_is_over(run) for run in runs), timeout=60, message="every job to be over")
        stopped = list(Run.objects.filter(pk__in=moments, status=Run.Status.STOPPED))
        print(f"cancels: {len(stopped)} of 20 runs stopped, at seqs {sorted(moments.values())} (seed {seed})")
        assert len(stopped) >= 15, f"only {len(stopped)} of 20 cancels stopped a run (seed {seed})"
        assert Run.objects.filter(pk__in=moments, status=Run.Status.FAILED).count() == 0

        def last_writes():
            found = {}
            for run in stopped:
                [stop] = [e for e in RunEvent.objects.filter(run=run, type="JOB_STATUS") if e.data["status"] == "stopped"]
                found[run.pk] = {
                    "stop": (stop.seq, stop.created),
                    "last_seq": Run.objects.get(pk=run.pk).last_seq,
                    "events": RunEvent.objects.filter(run=run).order_by("-seq").values_list("seq", "created")[0],
                    "latest_event": max(RunEvent.objects.filter(run=run).values_list("created", flat=True)),
                    "metric": max(FoldMetric.objects.filter(run=run).values_list("seq", flat=True), default=0),
                    "log": max(LogEntry.objects.filter(run=run).values_list("seq", "created"), default=(0, None)),
                    "latest_log": max(LogEntry.objects.filter(run=run).values_list("created", flat=True), default=None),
                }
            return found

        found = last_writes()
        for pk, w in found.items():
            stop_seq, stop_at = w["stop"]
            where = f"run {pk}, cancelled at seq {moments[pk]} (seed {seed})"
            assert w["last_seq"] == stop_seq and w["events"] == (stop_seq, stop_at), where
            assert w["latest_event"] <= stop_at, where
            assert w["metric"] < stop_seq and w["log"][0] < stop_seq, where
            assert w["latest_log"] is None or w["latest_log"] <= stop_at, where
        # And nothing comes later either, once every work horse is gone.
        with pytest.raises(AssertionError, match="Timed out"):
            wait_for(lambda: last_writes() != found, timeout=3, interval=0.5, message="a write after Stopped")
    finally:
        cluster.stop()
