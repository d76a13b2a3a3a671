"""Run events: per-run sequence numbers, strictly increasing and gap-free, even with concurrent writers in
several processes and threads; nothing is written once the run is terminal."""

import threading
import uuid

import pytest
from django.conf import settings
from django.db import connection
from redis import Redis

from runs import events
from runs.events import RunClosed
from runs.models import Run, RunEvent, append_event, append_events, events_after
from tests.helpers import Process, manage, wait_for

EVENTS_PER_WRITER = 150

# Each child process waits at a barrier in Redis, so all writers really do overlap, then appends events
# one by one and, every tenth time, two at once with append_events.
CHILD = """
import os, time
from django.conf import settings
from redis import Redis
from runs import events

from runs.models import append_event, append_events

r = Redis.from_url(settings.REDIS_URL)
key, writer = os.environ["BARRIER"], os.environ["WRITER"]
run_id, count = int(os.environ["RUN_ID"]), int(os.environ["COUNT"])
r.incr(key + ":ready")
while not r.exists(key + ":go"):
    time.sleep(0.002)
i = 0
while i < count:
    if i % 10 == 9 and i + 1 < count:
        pair = [(events.JOB_LOG, {"writer": writer, "i": i}), (events.JOB_LOG, {"writer": writer, "i": i + 1})]
        append_events(run_id, pair)
        i += 2
    else:
        append_event(run_id, events.JOB_LOG, {"writer": writer, "i": i})
        i += 1
"""


@pytest.fixture
def make_run(iris_spec):
    def make(owner, status=Run.Status.QUEUED):
        return Run.objects.create(owner=owner, name="Iris run", spec=iris_spec, status=status)

    return make


def seqs(run):
    return list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))


def thread_writer(run_id, writer, count, go, errors):
    try:
        go.wait()
        for i in range(count):
            append_event(run_id, events.JOB_LOG, {"writer": writer, "i": i})
    except Exception as e:  # surfaced by the test, which cannot see a thread's exception otherwise
        errors.append(e)
    finally:
        connection.close()  # each thread has its own connection; don't leave it open past the test


# --- One writer --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_numbers_events_from_one_without_gaps(owner, make_run):
    run = make_run(owner)

    first = append_event(run, events.JOB_PROGRESS, {"progress": 0.1})
    batch = append_events(run, [(events.JOB_LOG, {"message": "a"}), (events.JOB_LOG, {"message": "b"})])
    last = append_event(run.pk, events.JOB_PROGRESS, {"progress": 0.2})

    assert [first.seq, *(e.seq for e in batch), last.seq] == [1, 2, 3, 4]
    assert seqs(run) == [1, 2, 3, 4]
    assert Run.objects.get(pk=run.pk).last_seq == 4


@pytest.mark.django_db
def test_it_numbers_each_run_separately(owner, outsider, make_run):
    mine, theirs = make_run(owner), make_run(outsider)

    append_event(mine, events.JOB_LOG, {})
    append_event(theirs, events.JOB_LOG, {})
    append_event(mine, events.JOB_LOG, {})

    assert seqs(mine) == [1, 2]
    assert seqs(theirs) == [1]


@pytest.mark.django_db
def test_it_returns_exactly_the_events_after_a_cursor(owner, make_run):
    run = make_run(owner)
    append_events(run, [(events.JOB_LOG, {"i": i}) for i in range(10)])

    rest = events_after(run.pk, after=6)

    assert [m["seq"] for m in rest] == [7, 8, 9, 10]
    assert rest[0] == {"seq": 7, "type": "JOB_LOG", "ts": rest[0]["ts"], "run": run.pk, "data": {"i": 6}}
    assert [m["seq"] for m in events_after(run.pk, after=0, limit=3)] == [1, 2, 3]
    assert events_after(run.pk, after=10) == []


# --- Terminal runs -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("terminal", [Run.Status.COMPLETED, Run.Status.FAILED, Run.Status.STOPPED])
def test_it_refuses_events_after_a_terminal_status(owner, make_run, terminal):
    run = make_run(owner, Run.Status.RUNNING)
    run.transition(terminal)

    with pytest.raises(RunClosed, match=f"is {terminal}"):
        append_event(run, events.JOB_LOG, {"message": "too late"})
    with pytest.raises(RunClosed):
        append_events(run.pk, [(events.JOB_PROGRESS, {"progress": 1.0})])

    assert seqs(run) == [1]
    assert Run.objects.get(pk=run.pk).last_seq == 1


def test_it_writes_nothing_after_the_terminal_event_when_writers_race_the_finish(transactional_db, owner, make_run):
    run = make_run(owner, Run.Status.RUNNING)
    refused = []
    go = threading.Event()

    def write_until_closed():
        try:
            go.wait()
            while True:
                append_event(run.pk, events.JOB_PROGRESS, {"progress": 0.5})
        except RunClosed:
            refused.append(True)
        finally:
            connection.close()

    threads = [threading.Thread(target=write_until_closed) for _ in range(3)]
    for thread in threads:
        thread.start()
    go.set()
    wait_for(lambda: RunEvent.objects.filter(run=run).count() >= 30, timeout=30, message="writers to get going")
    run.mark_completed({"best_score": 1.0})
    for thread in threads:
        thread.join(timeout=30)

    assert refused == [True, True, True]
    numbers = seqs(run)
    assert numbers == list(range(1, len(numbers) + 1))
    last = RunEvent.objects.filter(run=run).order_by("-seq").first()
    assert last.type == events.JOB_COMPLETED


# --- Concurrent writers: two OS processes and two threads --------------------------------------------


@pytest.mark.system
def test_it_keeps_sequence_numbers_strictly_increasing_under_concurrent_writers(transactional_db, owner, make_run):
    run = make_run(owner, Run.Status.RUNNING)
    barrier = f"rw-test-barrier-{uuid.uuid4().hex}"
    redis = Redis.from_url(settings.REDIS_URL)
    children = [
        Process(manage("shell", "-c", CHILD), f"event-writer-{name}", BARRIER=barrier, RUN_ID=run.pk, WRITER=name,
                COUNT=EVENTS_PER_WRITER)
        for name in ("process-a", "process-b")
    ]
    try:
        wait_for(lambda: int(redis.get(f"{barrier}:ready") or 0) == 2, timeout=60,
                 message="both writer processes to reach the barrier")
        go, errors = threading.Event(), []
        threads = [
            threading.Thread(target=thread_writer, args=(run.pk, name, EVENTS_PER_WRITER, go, errors))
            for name in ("thread-a", "thread-b")
        ]
        for thread in threads:
            thread.start()
        redis.set(f"{barrier}:go", 1)
        go.set()
        for thread in threads:
            thread.join(timeout=120)
        for child in children:
            child.popen.wait(timeout=120)
            assert child.popen.returncode == 0, child.log_text()
    finally:
        for child in children:
            child.stop()
    assert errors == []

    rows = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "data"))
    total = 4 * EVENTS_PER_WRITER
    assert [seq for seq, _ in rows] == list(range(1, total + 1))  # unique, strictly increasing, gap-free
    assert Run.objects.get(pk=run.pk).last_seq == total
    by_writer = {}
    for seq, data in rows:
        by_writer.setdefault(data["writer"], []).append(data["i"])
    # Each writer's own events come out in the order it wrote them, all of them exactly once.
    assert by_writer == {name: list(range(EVENTS_PER_WRITER))
                         for name in ("process-a", "process-b", "thread-a", "thread-b")}
    # And the writers really did overlap: their events interleave rather than arriving in four blocks.
    switches = sum(1 for (_, a), (_, b) in zip(rows, rows[1:]) if a["writer"] != b["writer"])
    assert switches > 3
