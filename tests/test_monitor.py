"""The monitor's steps, each called directly with a chosen `now`, checked against the database and Redis."""

import json
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from rq.job import Job, JobStatus

from engine.spec import validate_spec
from runs.worker import monitor
from runs.worker.scheduling import enqueue, get_queue
from runs.models import Run, RunEvent
from tests.helpers import start_monitor, wait_for

pytestmark = pytest.mark.django_db


def seconds(key, extra=0):
    return timedelta(seconds=settings.RUNWATCH[key] + extra)


@pytest.fixture
def make_run(iris_spec):
    spec = validate_spec(iris_spec)

    def make(owner, status, **fields):
        now = timezone.now()
        if status != Run.Status.QUEUED:
            fields.setdefault("started_at", now)
            fields.setdefault("heartbeat_at", now)
        return Run.objects.create(
            owner=owner, name="Iris", spec=spec, status=status, rq_job_id=uuid.uuid4().hex, **fields
        )

    return make


def fake_executing_job(run, worker_name="worker-under-test"):
    """The Redis state of a job a worker has taken: what RQ's prepare_for_execution writes."""
    enqueue(run)
    job = Job.fetch(run.rq_job_id, connection=get_queue().connection)
    get_queue().remove(job)
    job.connection.hset(job.key, mapping={"status": JobStatus.STARTED, "worker_name": worker_name})
    return job


# --- reap_lost_workers -------------------------------------------------------------------------------------


def test_it_fails_a_running_run_whose_heartbeat_stopped(owner, make_run):
    run = make_run(owner, Run.Status.RUNNING)

    assert monitor.reap_lost_workers(now=timezone.now() + seconds("WORKER_LOST_SECONDS", 1)) == 1

    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error_message.startswith("Worker lost: no heartbeat for")
    assert run.events.last().type == "JOB_FAILED"


def test_it_leaves_runs_with_a_fresh_heartbeat_alone(owner, outsider, make_run):
    mine = make_run(owner, Run.Status.RUNNING)
    theirs = make_run(outsider, Run.Status.RUNNING)

    assert monitor.reap_lost_workers(now=timezone.now() + seconds("WORKER_LOST_SECONDS", -1)) == 0

    assert Run.objects.get(pk=mine.pk).status == Run.Status.RUNNING
    assert Run.objects.get(pk=theirs.pk).status == Run.Status.RUNNING


def test_it_reaps_every_owners_runs(owner, outsider, make_run):
    runs = [make_run(owner, Run.Status.RUNNING), make_run(outsider, Run.Status.RUNNING)]

    assert monitor.reap_lost_workers(now=timezone.now() + seconds("WORKER_LOST_SECONDS", 1)) == 2
    assert {r.status for r in Run.objects.filter(pk__in=[r.pk for r in runs])} == {Run.Status.FAILED}


def test_it_stops_a_cancelling_run_whose_worker_is_lost(owner, make_run):
    run = make_run(owner, Run.Status.CANCELLING, cancel_requested_at=timezone.now())

    assert monitor.reap_lost_workers(now=timezone.now() + seconds("WORKER_LOST_SECONDS", 1)) == 1

    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert "worker was lost" in run.message


def test_it_ignores_finished_runs(owner, make_run):
    long_ago = timezone.now() - timedelta(hours=1)
    run = make_run(owner, Run.Status.COMPLETED, heartbeat_at=long_ago, started_at=long_ago)

    assert monitor.reap_lost_workers() == 0
    assert not run.events.exists()


# --- enforce_cancel_grace ----------------------------------------------------------------------------------


def test_it_waits_for_the_grace_period(owner, make_run):
    run = make_run(owner, Run.Status.CANCELLING, cancel_requested_at=timezone.now())

    assert monitor.enforce_cancel_grace(now=timezone.now() + seconds("CANCEL_GRACE_SECONDS", -1)) == 0
    assert Run.objects.get(pk=run.pk).kill_sent_at is None


def test_it_sends_rq_stop_job_to_the_worker_after_the_grace_period(owner, make_run, redis_client):
    run = make_run(owner, Run.Status.CANCELLING, cancel_requested_at=timezone.now())
    fake_executing_job(run, worker_name="worker-under-test")
    pubsub = redis_client.pubsub()
    pubsub.subscribe("rq:pubsub:worker-under-test")
    wait_for(lambda: pubsub.get_message(timeout=0.1), message="the subscription")

    assert monitor.enforce_cancel_grace(now=timezone.now() + seconds("CANCEL_GRACE_SECONDS", 1)) == 1

    command = wait_for(lambda: pubsub.get_message(timeout=0.1), message="the stop-job command")
    assert json.loads(command["data"]) == {"command": "stop-job", "job_id": run.rq_job_id}
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLING  # The worker confirms the kill (runs.jobs.job_stopped).
    assert run.kill_sent_at is not None
    pubsub.close()


def test_it_wakes_at_the_next_grace_deadline_rather_than_a_round_later(owner, outsider, make_run):
    from runs.management.commands.monitor import Command

    now = timezone.now()
    grace = settings.RUNWATCH["CANCEL_GRACE_SECONDS"]
    assert monitor.seconds_to_next_grace(now) is None
    make_run(owner, Run.Status.RUNNING)
    make_run(outsider, Run.Status.CANCELLING, cancel_requested_at=now - timedelta(seconds=grace - 0.3))
    make_run(owner, Run.Status.CANCELLING, cancel_requested_at=now - timedelta(seconds=grace - 0.6))
    assert monitor.seconds_to_next_grace(now) == pytest.approx(0.3)
    # A killed run's deadline is the second grace period, counted from the kill.
    make_run(owner, Run.Status.CANCELLING, cancel_requested_at=now - timedelta(seconds=60),
             kill_sent_at=now - timedelta(seconds=grace - 0.1))
    assert monitor.seconds_to_next_grace(now) == pytest.approx(0.1)
    assert 0 < Command().pause(interval=1.0) < 0.2
    Run.objects.filter(status=Run.Status.CANCELLING).update(status=Run.Status.STOPPED)
    assert Command().pause(interval=1.0) == 1.0


def test_it_stops_the_run_when_the_kill_is_never_confirmed(owner, make_run):
    now = timezone.now()
    run = make_run(owner, Run.Status.CANCELLING, cancel_requested_at=now, kill_sent_at=now)

    assert monitor.enforce_cancel_grace(now=now + seconds("CANCEL_GRACE_SECONDS", -1)) == 0
    assert monitor.enforce_cancel_grace(now=now + seconds("CANCEL_GRACE_SECONDS", 1)) == 1

    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert run.message == "Stopped: the work horse was killed."


def test_it_stops_a_cancelling_run_whose_job_is_not_executing(owner, make_run):
    run = make_run(owner, Run.Status.CANCELLING, cancel_requested_at=timezone.now())  # No job in Redis.

    assert monitor.enforce_cancel_grace(now=timezone.now() + seconds("CANCEL_GRACE_SECONDS", 1)) == 1

    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert run.kill_sent_at is None
    assert run.events.last().data["status"] == "stopped"


# --- reap_lost_queued --------------------------------------------------------------------------------------


def test_it_fails_a_queued_run_whose_job_disappeared(owner, make_run):
    run = make_run(owner, Run.Status.QUEUED)

    assert monitor.reap_lost_queued(now=timezone.now() + seconds("QUEUED_LOST_SECONDS", 1)) == 1

    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error_message == "Never started: its job disappeared from the queue. Re-run it to try again."


def test_it_gives_a_young_queued_run_time_to_be_enqueued(owner, make_run):
    run = make_run(owner, Run.Status.QUEUED)

    assert monitor.reap_lost_queued(now=timezone.now() + seconds("QUEUED_LOST_SECONDS", -1)) == 0
    assert Run.objects.get(pk=run.pk).status == Run.Status.QUEUED


def test_it_leaves_a_run_waiting_in_the_queue_alone(owner, outsider, make_run):
    runs = [make_run(owner, Run.Status.QUEUED), make_run(outsider, Run.Status.QUEUED)]
    for run in runs:
        enqueue(run)

    # However long it waits: a busy worker is not a lost job.
    assert monitor.reap_lost_queued(now=timezone.now() + timedelta(hours=2)) == 0
    assert set(get_queue().job_ids) == {r.rq_job_id for r in runs}


def test_it_fails_a_queued_run_whose_job_was_cancelled_in_rq(owner, make_run):
    run = make_run(owner, Run.Status.QUEUED)
    enqueue(run)
    Job.fetch(run.rq_job_id, connection=get_queue().connection).cancel()

    assert monitor.reap_lost_queued(now=timezone.now() + seconds("QUEUED_LOST_SECONDS", 1)) == 1
    assert "its job ended (canceled)" in Run.objects.get(pk=run.pk).error_message


def test_it_fails_a_queued_run_whose_worker_died_before_the_run_began(owner, make_run):
    run = make_run(owner, Run.Status.QUEUED)
    job = fake_executing_job(run)
    job.connection.hset(job.key, "started_at", "2020-01-01T00:00:00.000000Z")

    assert monitor.reap_lost_queued(now=timezone.now() + seconds("QUEUED_LOST_SECONDS", 1)) == 1
    assert "the worker that took its job stopped" in Run.objects.get(pk=run.pk).error_message


def test_it_gives_a_job_just_taken_by_a_worker_time_to_start(owner, make_run):
    run = make_run(owner, Run.Status.QUEUED)
    job = fake_executing_job(run)
    job.connection.hset(job.key, "started_at", timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    assert monitor.reap_lost_queued(now=timezone.now() + seconds("QUEUED_LOST_SECONDS", 1)) == 0


# --- The command -------------------------------------------------------------------------------------------


def test_it_runs_every_step_once(owner, make_run, capsys):
    long_ago = timezone.now() - timedelta(hours=1)
    make_run(owner, Run.Status.RUNNING, heartbeat_at=long_ago)
    make_run(owner, Run.Status.QUEUED, queued_at=long_ago)

    call_command("monitor", "--once")

    assert "Changed 2 run(s)" in capsys.readouterr().out
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.FAILED}


@pytest.mark.system
@pytest.mark.django_db(transaction=True)
def test_it_keeps_reaping_through_a_redis_outage(owner, make_run):
    """Redis is unreachable for the monitor process: the database-only steps still run, and it stays up."""
    run = make_run(owner, Run.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5))
    # Checking this one needs Redis: while Redis is away it must stay queued, not be failed blindly.
    queued = make_run(owner, Run.Status.QUEUED, queued_at=timezone.now() - timedelta(minutes=5))
    process = start_monitor(REDIS_URL="redis://127.0.0.1:1/0")
    try:
        wait_for(lambda: Run.objects.get(pk=run.pk).status == Run.Status.FAILED, timeout=30, message="the reaper")
        wait_for(lambda: "will keep trying" in process.log_text(), timeout=30, message="the error report")
        assert process.alive()
        # Reported once, not once a round.
        assert process.log_text().count("will keep trying") == 1
        assert RunEvent.objects.filter(run=run, type="JOB_FAILED").count() == 1
        assert Run.objects.get(pk=queued.pk).status == Run.Status.QUEUED
    finally:
        process.stop()
