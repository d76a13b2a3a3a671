"""Issue 14, "Supervision": a queued run says what it waits for, on its page and in the API, and says so
plainly when no worker is running at all."""

import os
import signal
from html import unescape

from django.urls import reverse

from accounts.models import Quota
from runs.worker import queue
from runs.control import cancel_run, launch_run
from runs.models import Run
from tests.api.conftest import client_for
from tests.runwork import MANY_FITS_SPEC, horse_of, is_running, wait_for_fitting


def api_run(user, run):
    response = client_for(user).get(f"/api/v1/runs/{run.pk}/")
    assert response.status_code == 200
    return response.json()


def page(client, user, run):
    client.force_login(user)
    return unescape(client.get(reverse("live:detail", args=[run.pk])).content.decode())


def test_it_says_no_worker_is_running(transactional_db, client, owner, experiment):
    first = launch_run(owner, experiment=experiment)
    second = launch_run(owner, experiment=experiment)

    data = api_run(owner, second)
    assert data["waiting_reason"] == queue.NO_WORKER
    assert data["waiting_reason"].startswith("No worker is running — start the app with `make run`, or add a worker with `make worker`")
    assert (data["queue_position"], api_run(owner, first)["queue_position"]) == (2, 1)
    assert queue.NO_WORKER in page(client, owner, second)
    listed = unescape(client.get(reverse("runs:list")).content.decode())
    assert listed.count(queue.NO_WORKER) == 2 and "1st in queue" in listed and "2nd in queue" in listed

    cancel_run(first)
    data = api_run(owner, first)
    assert (data["waiting_reason"], data["queue_position"]) == (None, None)
    assert "No worker is running" not in page(client, owner, first)
    assert api_run(owner, second)["queue_position"] == 1


def test_it_says_which_run_the_busy_worker_is_on(worker, client, owner, experiment):
    Quota.objects.create(user=owner, running=3)  # all three in RQ: this is about the worker, not the slots
    busy = launch_run(owner, spec=MANY_FITS_SPEC, name="Busy")
    wait_for_fitting(busy)
    waiting = launch_run(owner, experiment=experiment)
    behind = launch_run(owner, experiment=experiment)

    expected = f"Waiting for a worker: 1 worker, busy with run #{busy.pk}"
    data = api_run(owner, waiting)
    assert (data["waiting_reason"], data["queue_position"]) == (expected, 1)
    assert api_run(owner, behind)["waiting_reason"] == f"{expected}; 1 queued run ahead of it"
    assert expected in page(client, owner, waiting)
    assert api_run(owner, busy)["waiting_reason"] is None  # running: nothing to wait for

    for run in (waiting, behind, busy):
        cancel_run(run)


def test_it_does_not_count_a_dead_worker_on_this_host(worker, owner, experiment):
    from tests.helpers import wait_for

    wait_for(lambda: queue.snapshot() and queue.snapshot().workers, timeout=30, message="the worker to register")
    run = launch_run(owner, spec=MANY_FITS_SPEC)
    wait_for_fitting(run)
    horse = horse_of(worker)
    worker.stop(sig=9)  # kill -9: RQ keeps it registered for minutes

    try:
        waiting = launch_run(owner, experiment=experiment)
        assert Run.objects.get(pk=waiting.pk).status == Run.Status.QUEUED
        assert queue.waiting_reason(waiting) == queue.NO_WORKER
    finally:
        # The orphaned work horse would go on writing until its next heartbeat notices; the test's teardown
        # empties the tables meanwhile, and the two deadlock. End it first.
        os.kill(horse, signal.SIGKILL)
        wait_for(lambda: not is_running(horse), timeout=30, message="the orphaned work horse to exit")


def test_it_enqueues_a_launched_run_before_anyone_hears_of_it(transactional_db, owner, experiment):
    # A runs list renders a new run's row when the QUEUED event arrives; its place in the queue must be known
    # by then, so the job is in the queue before that event is published.
    from runs import events

    class Recorder:
        def __init__(self):
            self.places = []

        def send(self, run_id, messages, owner_id=None):
            self.places.append(queue.queue_position(Run.objects.get(pk=run_id)))

        def flush(self, timeout=5.0):
            return True

    recorder = Recorder()
    previous = events.use_publisher(recorder)
    try:
        launch_run(owner, experiment=experiment)
        launch_run(owner, experiment=experiment)
    finally:
        events.use_publisher(previous)
    assert recorder.places == [1, 2]
