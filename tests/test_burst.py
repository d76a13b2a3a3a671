"""A burst on the real stack: 20,000 log lines reported by one run, as fast as the engine can, reach a live
watcher of a real daphne complete and in order. The reporter batches them (group commit, one channel-layer
message per batch); whatever the batches and however the live and replayed paths interleave, the watcher
must see every seq exactly once, in order, and every line's text in the order it was logged."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.sync.client import connect

from runs import events
from runs.worker import execution
from runs.reporter import DbReporter
from tests.test_ws_token import key_of, ws_url

pytestmark = pytest.mark.django_db(transaction=True)

LINES = 20_000


@pytest.fixture
def run(owner, experiment):
    from runs.control import launch_run

    run = launch_run(owner, experiment=experiment)  # seq 1: queued
    run.mark_running("w1")  # seq 2: running
    return run


@pytest.fixture
def worker_publisher():
    """Publish as a work horse does: one long-lived publisher thread, one PUBLISH per write batch."""
    previous = events.use_publisher(execution.publisher())
    yield
    execution.publisher().flush(timeout=30)
    events.use_publisher(previous)


def burst(run):
    """What the engine does in a chatty run: log as fast as it can, then finish the run."""
    from django.db import connection

    try:
        reporter = DbReporter(run)
        for i in range(LINES):
            reporter.log("info", f"burst line {i}")
        reporter.close()
        run.mark_completed({})
    finally:
        connection.close()


def test_it_delivers_a_burst_of_20000_log_lines_complete_and_in_order(daphne_server, owner, run, worker_publisher):
    received = []
    with (connect(ws_url(daphne_server, run, token=key_of(owner)), max_size=None, open_timeout=30) as ws,
          ThreadPoolExecutor(1) as pool):
        writer = pool.submit(burst, run)
        # Generous: this is a test of completeness and order, not of speed, and the machine may be busy.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if writer.done() and writer.exception():
                raise writer.exception()  # the reporter's own error, not a timeout 180 s later
            message = json.loads(ws.recv(timeout=max(1.0, deadline - time.monotonic())))
            if message["type"] == events.STREAM_END:
                break
            received.append(message)
        else:
            pytest.fail(f"no end of stream within 180 s; {len(received)} messages received")
        writer.result(timeout=60)
    run.refresh_from_db()
    assert run.last_seq >= LINES + 3  # queued, running, the lines, completed
    assert [m["seq"] for m in received] == list(range(1, run.last_seq + 1))
    lines = [m["data"]["message"] for m in received if m["type"] == events.JOB_LOG]
    assert lines == [f"burst line {i}" for i in range(LINES)]
    assert received[-1]["type"] == events.status_event_type(run.Status.COMPLETED)
