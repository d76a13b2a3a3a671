"""Nothing stays stuck: a dead work horse, a dead worker and a vanished job each end the run, with a reason; and a
watcher loses nothing when its connection, daphne and Redis all fail under it."""

import json
import os
import random
import signal
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from engine.spec import validate_spec
from runs.control import launch_run
from runs.worker.scheduling import get_queue
from runs.models import Run
from runs.worker.process import describe_exit
from tests.cluster import RedisServer, launch, restart_daphne, token_for, ws_url
from tests.helpers import child_env, serve_daphne, start_monitor, start_worker, wait_for
from tests.runwork import (
    MANY_FITS_SPEC,
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
    run.refresh_from_db()
    scratch = list(Path(tempfile.gettempdir()).glob(f"runwatch-run-{run.pk}-{run.rq_job_id}-*"))
    assert len(scratch) == 1 and scratch[0].is_dir()  # the data and models of the run at work

    os.kill(horse, signal.SIGKILL)

    wait_for_status(run, Run.Status.FAILED, timeout=10)
    wait_for(lambda: not scratch[0].exists(), timeout=10, message="the dead horse's scratch to be removed")
    assert run.error_message == (
        "The work horse running this job was killed by signal 9 (SIGKILL); "
        "it may have been killed or run out of memory."
    )
    assert run.events.order_by("-seq").first().type == "JOB_FAILED"
    assert worker.alive()  # The worker survives its horse and goes on to the next job.
    assert_nothing_more_written(run)


def test_it_fails_the_run_when_the_whole_worker_is_killed(worker, monitor, owner, experiment):
    run = launch_run(owner, spec=ONE_LONG_FIT_SPEC, name="Worker dies")
    wait_for_fitting(run)
    horse = horse_of(worker)

    # kill -9 the worker. Its horse called setpgrp(), so it is not in the worker's group and survives the
    # signal; runs.worker.heartbeat makes such an orphan exit rather than finish unsupervised.
    os.killpg(worker.pid, signal.SIGKILL)

    wait_for(lambda: not is_running(horse), timeout=10, message="the orphaned work horse to exit")
    lost_after = float(child_env()["RUNWATCH_WORKER_LOST"])
    wait_for_status(run, Run.Status.FAILED, timeout=lost_after + 15)
    assert run.error_message.startswith("Worker lost: no heartbeat for")
    assert (run.finished_at - run.heartbeat_at).total_seconds() <= 30
    # RQ still lists the dead worker and its job as started (its own cleanup takes minutes); what matters
    # is that the horse is gone, so nothing can write.
    assert_nothing_more_written(run, settled=lambda: not is_running(horse))

    # The scratch the killed pair left goes once a worker on this machine finishes its next job.
    scratch = Path(tempfile.gettempdir()) / f"runwatch-run-{run.pk}-{run.rq_job_id}-left"
    scratch.mkdir(exist_ok=True)  # (the orphan may have cleaned up as it exited: leave one, as a kill would)
    active = Run.objects.create(owner=owner, name="Running elsewhere", spec=validate_spec(experiment.spec),
                                status=Run.Status.RUNNING, rq_job_id=uuid.uuid4().hex)
    kept = [Path(tempfile.gettempdir()) / f"runwatch-run-{active.pk}-{active.rq_job_id}-left",  # not ended
            Path(tempfile.gettempdir()) / f"runwatch-run-{run.pk}-{uuid.uuid4().hex}-left"]  # another database's
    for path in kept:
        path.mkdir()
    replacement = start_worker()
    try:
        next_run = launch_run(owner, experiment=experiment)
        wait_for_status(next_run, Run.Status.COMPLETED, timeout=60)
        wait_for(lambda: not scratch.exists(), timeout=10, message="the killed horse's scratch to be removed")
        assert all(path.exists() for path in kept)
    finally:
        replacement.stop()
        for path in kept:
            path.rmdir()


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


@pytest.mark.system
def test_it_loses_nothing_across_50_disconnects_and_restarts_of_daphne_and_redis(transactional_db, owner, tmp_path):
    """A watcher is dropped 50 times at random; daphne is killed and started again, and so is Redis (a private
    one: the shared Redis is never touched), each while the run works and the watcher is connected. The watcher
    still ends with exactly seq 1..N, and the run ends, Completed or Failed with a reason."""
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    redis_server = RedisServer(tmp_path / "redis")
    env = {"REDIS_URL": redis_server.url}
    processes = [start_worker(**env), start_monitor(**env)]
    daphne = serve_daphne(**env)
    try:
        # A hundred short fits: long enough for both restarts, which come within the first 20 drops.
        spec = {**MANY_FITS_SPEC, "models": [{"estimator": "RandomForestClassifier",
                                              "params": {"n_estimators": [10], "max_depth": list(range(2, 22))}}]}
        run = launch(daphne, owner, spec, "Disrupted")
        token = token_for(owner)
        # Redis first (quick), then daphne (a kill -9 and a new process, many seconds on a busy machine), both
        # early enough to land while the run works.
        restart_redis_after, restart_daphne_after = rng.randint(3, 10), rng.randint(12, 20)
        restarted = []
        received, disconnects, connections, end = [], 0, 0, None
        deadline = time.monotonic() + 300
        while end is None:
            assert time.monotonic() < deadline, f"the stream never ended (seed {seed}, {disconnects} drops)"
            try:
                # max_queue=None: the client keeps reading while the test holds unread messages, so its
                # polite close sees the server's answer (websockets' flow control would hold it for close_timeout).
                with connect(ws_url(daphne, run.pk, token=token, after=received[-1] if received else 0),
                             open_timeout=10, max_queue=None) as ws:
                    connections += 1
                    for what, due in (("redis", restart_redis_after), ("daphne", restart_daphne_after)):
                        if disconnects >= due and what not in restarted and received:
                            restarted.append(what)
                            assert status_of(run) == Run.Status.RUNNING, f"the run ended before the {what} restart"
                            if what == "redis":
                                redis_server.restart()  # the watcher stays connected through it
                            else:
                                daphne = restart_daphne(daphne, **env)  # and this drops the watcher
                    # Silence for 30 s on an open socket while the run works would be a stall: recv raises.
                    for _ in range(rng.randint(1, 8) if disconnects < 50 else 10**9):
                        message = json.loads(ws.recv(timeout=30))
                        if message["type"] == "STREAM_END":
                            end = message
                            break
                        received.append(message["seq"])
                    else:
                        disconnects += 1
                        if rng.random() < 0.5:
                            ws.socket.shutdown(socket.SHUT_RDWR)  # a dropped network rather than a polite close
            except (OSError, ConnectionClosed, InvalidHandshake) as e:
                if isinstance(e, TimeoutError):
                    raise
                time.sleep(0.05)  # daphne is restarting: connections are refused for a while
        run.refresh_from_db()
        print(f"disruption: {connections} connections, {disconnects} drops, seqs 1..{run.last_seq}, {run.status}")
        assert restarted == ["redis", "daphne"] and disconnects == 50, (restarted, disconnects)
        assert received == list(range(1, run.last_seq + 1)), f"seed {seed}"
        assert run.status in (Run.Status.COMPLETED, Run.Status.FAILED), run.status
        assert run.status == Run.Status.COMPLETED or run.error_message, f"failed without a reason (seed {seed})"
        assert end["data"]["status"] == run.status
    finally:
        for process in (*processes, daphne):
            process.stop()
        redis_server.stop(save=False)
