"""Nothing stays stuck: a dead work horse, a dead worker and a vanished job each end the run, with a reason."""

import os
import signal

import pytest

from runs.control import get_queue, launch_run
from runs.models import Run
from runs.worker import describe_exit
from tests.helpers import child_env, start_worker, wait_for
from tests.runwork import (
    ONE_LONG_FIT_SPEC,
    assert_nothing_more_written,
    horse_of,
    is_running,
    status_of,
    wait_for_fitting,
    wait_for_status,
)


def test_it_describes_how_a_work_horse_died():
    assert describe_exit(signal.SIGKILL) == (
        "was killed by signal 9 (SIGKILL); it may have been killed or run out of memory"
    )
    assert describe_exit(signal.SIGSEGV) == "was killed by signal 11 (SIGSEGV)"
    assert describe_exit(3 << 8) == "exited with status 3"


def test_it_fails_the_run_at_once_when_the_work_horse_is_killed(worker, owner):
    # No monitor runs here: the worker itself must notice and say why.
    run = launch_run(owner, spec=ONE_LONG_FIT_SPEC, name="Horse dies")
    wait_for_fitting(run)
    horse = horse_of(worker)

    os.kill(horse, signal.SIGKILL)

    wait_for_status(run, Run.Status.FAILED, timeout=10)
    assert run.error_message == (
        "The work horse running this job was killed by signal 9 (SIGKILL); "
        "it may have been killed or run out of memory."
    )
    assert run.events.order_by("-seq").first().type == "JOB_FAILED"
    assert worker.alive()  # The worker survives its horse and goes on to the next job.
    assert_nothing_more_written(run)


def test_it_fails_the_run_when_the_whole_worker_is_killed(worker, monitor, owner):
    run = launch_run(owner, spec=ONE_LONG_FIT_SPEC, name="Worker dies")
    wait_for_fitting(run)
    horse = horse_of(worker)

    # kill -9 the worker. Its horse called setpgrp(), so it is not in the worker's group and survives the
    # signal; runs.heartbeat makes such an orphan exit rather than finish unsupervised.
    os.killpg(worker.pid, signal.SIGKILL)

    wait_for(lambda: not is_running(horse), timeout=10, message="the orphaned work horse to exit")
    lost_after = float(child_env()["RUNWATCH_WORKER_LOST"])
    wait_for_status(run, Run.Status.FAILED, timeout=lost_after + 15)
    assert run.error_message.startswith("Worker lost: no heartbeat for")
    assert (run.finished_at - run.heartbeat_at).total_seconds() <= 30
    # RQ still lists the dead worker and its job as started (its own cleanup takes minutes); what matters
    # is that the horse is gone, so nothing can write.
    assert_nothing_more_written(run, settled=lambda: not is_running(horse))


def test_it_fails_a_queued_run_whose_job_vanished_from_redis(monitor, owner, experiment, redis_client):
    run = launch_run(owner, experiment=experiment)
    queue = get_queue()
    assert queue.job_ids == [run.rq_job_id]

    redis_client.delete(f"rq:job:{run.rq_job_id}")
    redis_client.lrem(queue.key, 0, run.rq_job_id)

    wait_for_status(run, Run.Status.FAILED, timeout=float(child_env()["RUNWATCH_QUEUED_LOST"]) + 15)
    assert run.error_message == "Never started: its job disappeared from the queue. Re-run it to try again."
    assert run.started_at is None


def test_it_keeps_a_queued_run_while_its_job_waits_for_a_worker(monitor, owner, outsider, experiment, iris_spec):
    mine = launch_run(owner, experiment=experiment)
    theirs = launch_run(outsider, spec=iris_spec)

    # Longer than the lost-job delay of the monitor process: a job still in the queue is not lost.
    quiet = float(child_env()["RUNWATCH_QUEUED_LOST"]) + 2
    with pytest.raises(AssertionError, match="Timed out"):
        wait_for(lambda: status_of(mine) != Run.Status.QUEUED, timeout=quiet, message="a change")
    assert status_of(mine) == status_of(theirs) == Run.Status.QUEUED

    # And a worker arriving late still runs them.
    late = start_worker()
    try:
        wait_for_status(mine, Run.Status.COMPLETED, timeout=90)
        wait_for_status(theirs, Run.Status.COMPLETED, timeout=90)
    finally:
        late.stop()
