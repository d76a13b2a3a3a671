"""The runs list stream (/ws/runs/list/) against the real ASGI application and the real Redis channel layer:
it sees only its user's runs (staff: all), rows settle on terminal events, and new runs appear."""

import json

import pytest
from channels.db import database_sync_to_async

from experiments.models import Experiment
from runs import events
from live import fanout, listfeed
from runs.control import launch_run
from runs.models import Run, append_event
from tests.helpers import DroppingPublisher, reporter_for
from tests.test_consumers import run_async, socket

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 15

append = database_sync_to_async(append_event)


async def rows(comm, timeout=TIMEOUT):
    frame = json.loads(await comm.receive_from(timeout=timeout))
    assert frame["type"] == "rows"
    return {row["run"]: row for row in frame["rows"]}


async def runs_seen(comm, seconds=1.0):
    """The runs of every frame the socket gets within `seconds` (a feed may send a row again: the page keeps
    the higher seq, so a repeat is harmless; only whose rows arrive matters)."""
    seen = set()
    while not await comm.receive_nothing(timeout=seconds):
        seen |= set(await rows(comm))
    return seen


async def rows_until(comm, condition):
    """Frames until one satisfies `condition` (a feed may coalesce or split batches)."""
    while True:
        found = await rows(comm)
        if condition(found):
            return found


@pytest.fixture
def run(owner, experiment):
    run = launch_run(owner, experiment=experiment)
    run.mark_running("w1")
    return run


@pytest.fixture
def their_run(outsider, iris_spec):
    other = Experiment.objects.create(owner=outsider, name="Mallory's", spec=iris_spec)
    run = launch_run(outsider, experiment=other)
    run.mark_running("w2")
    return run


@database_sync_to_async
def progress(run, done):
    """Progress as the engine's reporter writes it: the event and the run's counters."""
    reporter_for(run).progress(f"Fitting {done}", progress=done / 6, finished=done, total=6)


def test_it_refuses_anonymous_users_and_bad_ids(owner):
    async def scenario():
        comm = await socket("/ws/runs/list/")
        await comm.connect(timeout=TIMEOUT)
        assert (await comm.receive_output(timeout=TIMEOUT))["code"] == 4401
        comm = await socket("/ws/runs/list/?ids=1,drop", owner)
        await comm.connect(timeout=TIMEOUT)
        assert (await comm.receive_output(timeout=TIMEOUT))["code"] == 4400

    run_async(scenario)


def test_it_sends_the_asked_rows_then_only_the_users_runs(owner, outsider, run, their_run, monkeypatch):
    # Only the reporter's publish may bring the rows here, not the feed's idle check for lost messages.
    monkeypatch.setattr(listfeed, "IDLE_CHECK_SECONDS", 3600)

    async def scenario():
        mine = await socket(f"/ws/runs/list/?ids={run.pk},{their_run.pk}", owner)
        theirs = await socket(f"/ws/runs/list/?ids={run.pk},{their_run.pk}", outsider)
        assert (await mine.connect(timeout=TIMEOUT))[0] and (await theirs.connect(timeout=TIMEOUT))[0]
        first = await rows(mine)
        assert list(first) == [run.pk] and first[run.pk]["status"] == "running"  # never the outsider's row
        assert list(await rows(theirs)) == [their_run.pk]

        await progress(their_run, 1)
        await progress(their_run, 2)
        got = await rows_until(theirs, lambda r: r[their_run.pk]["seq"] == 4)  # one frame or two: coalesced
        assert list(got) == [their_run.pk]
        assert their_run.pk not in await runs_seen(mine)  # an outsider's run events never reach the owner

        await progress(run, 3)
        got = await rows_until(mine, lambda r: run.pk in r and 'aria-valuenow="50.0"' in r[run.pk]["html"])
        assert list(got) == [run.pk] and got[run.pk]["seq"] == 3
        assert "LIVE" in got[run.pk]["html"]
        assert run.pk not in await runs_seen(theirs)
        await mine.disconnect()
        await theirs.disconnect()

    run_async(scenario)


def test_it_gives_staff_every_run(staff, run, their_run):
    async def scenario():
        comm = await socket("/ws/runs/list/", staff)
        await comm.connect(timeout=TIMEOUT)
        assert await rows(comm) == {}
        await progress(run, 1)
        await progress(their_run, 1)
        seen = set()
        while seen != {run.pk, their_run.pk}:
            seen |= set(await rows(comm))
        await comm.disconnect()

    run_async(scenario)


def test_it_settles_rows_on_terminal_events(owner, run, experiment):
    stopping = launch_run(owner, experiment=experiment)
    failing = launch_run(owner, experiment=experiment)
    failing.mark_running("w3")

    async def scenario():
        comm = await socket(f"/ws/runs/list/?ids={run.pk},{stopping.pk},{failing.pk}", owner)
        await comm.connect(timeout=TIMEOUT)
        assert set(await rows(comm)) == {run.pk, stopping.pk, failing.pk}
        await database_sync_to_async(run.mark_completed)({"best_score": 0.93}, best_score=0.93)
        await database_sync_to_async(stopping.mark_stopped)("Cancelled before it started")
        await database_sync_to_async(failing.mark_failed)("The dataset is gone", reason="Dataset missing")
        final = {}
        while len(final) < 3:
            final.update({k: v for k, v in (await rows(comm)).items() if v["terminal"]})
        assert final[run.pk]["status"] == "completed"
        assert 'data-note="Completed · best Accuracy 0.9300"' in final[run.pk]["html"]
        assert "Re-run" in final[run.pk]["html"] and "LIVE" not in final[run.pk]["html"]
        assert final[stopping.pk]["status"] == "stopped" and 'data-note="Stopped"' in final[stopping.pk]["html"]
        assert 'data-note="Failed: Dataset missing"' in final[failing.pk]["html"]
        await comm.disconnect()

    run_async(scenario)


def test_it_settles_a_row_whose_messages_were_lost(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/list/?ids={run.pk}", owner)
        await comm.connect(timeout=TIMEOUT)
        assert (await rows(comm))[run.pk]["status"] == "running"
        previous = events.use_publisher(DroppingPublisher())
        try:
            await database_sync_to_async(run.mark_completed)({"best_score": 0.9}, best_score=0.9)
        finally:
            events.use_publisher(previous)
        # Nothing was published: the feed's idle check finds the row moved and sends it.
        got = await rows_until(comm, lambda r: run.pk in r and r[run.pk]["terminal"])
        assert got[run.pk]["status"] == "completed"
        await comm.disconnect()

    run_async(scenario)


def test_it_shows_runs_launched_elsewhere_and_shares_one_render(owner, outsider, run, experiment, iris_spec):
    theirs = Experiment.objects.create(owner=outsider, name="Mallory's", spec=iris_spec)

    async def scenario():
        first = await socket(f"/ws/runs/list/?after={run.pk}", owner)
        second = await socket(f"/ws/runs/list/?after={run.pk}", owner)
        await first.connect(timeout=TIMEOUT)
        await second.connect(timeout=TIMEOUT)
        assert await rows(first) == {} and await rows(second) == {}
        await database_sync_to_async(launch_run)(outsider, experiment=theirs)
        new = await database_sync_to_async(launch_run)(owner, experiment=experiment)
        one, two = await first.receive_from(timeout=TIMEOUT), await second.receive_from(timeout=TIMEOUT)
        assert one == two  # the same frame, rendered once for both watchers
        got = json.loads(one)["rows"]
        assert [r["run"] for r in got] == [new.pk] and got[0]["status"] == "queued"
        feed = fanout.hub().topics[events.owner_group(owner.pk)]
        assert isinstance(feed, listfeed.RowFeed) and len(feed.watchers) == 2
        await first.disconnect()
        await second.disconnect()

    run_async(scenario)
    assert Run.objects.count() == 3


def test_it_tells_the_list_groups_once_per_batch_and_not_for_log_lines():
    progress_batch = [{"seq": 4, "type": events.JOB_LOG}, {"seq": 5, "type": events.JOB_PROGRESS}]
    sends = events.layer_sends(7, progress_batch, owner_id=3)
    assert [group for group, _ in sends] == ["run-7", "runs-owner-3", "runs-staff"]
    assert sends[1][1] == {"type": events.ROW_LAYER_TYPE, "group": "runs-owner-3", "run": 7, "seq": 5}
    assert events.layer_sends(7, [{"seq": 6, "type": events.JOB_LOG}], owner_id=3) == [
        ("run-7", events.layer_message(7, [{"seq": 6, "type": events.JOB_LOG}]))]
    assert len(events.layer_sends(7, progress_batch)) == 1  # owner unknown: the run page's group only
