"""The run event stream over WebSocket, against the real ASGI application and the real Redis channel layer.

Each test is a coroutine run with async_to_sync, so the consumer's database_sync_to_async calls share the
test's database connection; transactional_db lets events commit and publish as they do in production.
"""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.asgi import application
from runs import events
from runs.control import launch_run
from runs.models import Run, append_event, events_after
from tests.helpers import DroppingPublisher, session_key_for

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 30  # generous: a busy machine is slow, and only a failure waits this long


def session_cookie(user):
    return f"{settings.SESSION_COOKIE_NAME}={session_key_for(user)}"


async def socket(path, user=None):
    headers = [(b"origin", b"http://127.0.0.1")]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def run_async(coro_fn):
    return async_to_sync(coro_fn)()


append = database_sync_to_async(append_event)


async def receive_json(comm):
    return json.loads(await comm.receive_from(timeout=TIMEOUT))


@pytest.fixture
def run(owner, experiment):
    run = launch_run(owner, experiment=experiment)  # seq 1: queued
    run.mark_running("w1")  # seq 2: running
    return run


def test_it_replays_everything_after_a_seq(owner, run):
    for i in range(3):
        append_event(run, events.JOB_LOG, {"level": "info", "message": f"line {i}"})

    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=2", owner)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        received = [await receive_json(comm) for _ in range(3)]
        assert [m["seq"] for m in received] == [3, 4, 5]
        assert received[0] == {**received[0], "type": "JOB_LOG", "run": run.pk}
        assert received[2]["data"]["message"] == "line 2" and "ts" in received[2]
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()

    run_async(scenario)


def test_it_replays_from_the_start_without_a_cursor(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/", owner)
        await comm.connect(timeout=TIMEOUT)
        first, second = await receive_json(comm), await receive_json(comm)
        assert (first["seq"], first["data"]["status"]) == (1, "queued")
        assert (second["seq"], second["data"]["status"]) == (2, "running")
        await comm.disconnect()

    run_async(scenario)


def test_it_streams_live_events(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=2", owner)
        await comm.connect(timeout=TIMEOUT)
        assert await comm.receive_nothing(timeout=0.2)
        await append(run, events.JOB_PROGRESS, {"progress": 0.25, "message": "Fitting fold 1/3"})
        message = await receive_json(comm)
        assert (message["seq"], message["type"]) == (3, "JOB_PROGRESS")
        assert message["data"]["message"] == "Fitting fold 1/3"
        await comm.disconnect()

    run_async(scenario)


def test_it_fills_gaps_from_the_database(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=2", owner)
        await comm.connect(timeout=TIMEOUT)
        previous = events.use_publisher(DroppingPublisher())
        try:
            await append(run, events.JOB_LOG, {"level": "info", "message": "lost 1"})
            await append(run, events.JOB_LOG, {"level": "info", "message": "lost 2"})
        finally:
            events.use_publisher(previous)
        await append(run, events.JOB_LOG, {"level": "info", "message": "delivered"})
        received = [await receive_json(comm) for _ in range(3)]
        assert [(m["seq"], m["data"]["message"]) for m in received] == [(3, "lost 1"), (4, "lost 2"), (5, "delivered")]
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()

    run_async(scenario)


def test_it_finds_trailing_events_the_layer_dropped(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=2", owner)
        await comm.connect(timeout=TIMEOUT)
        previous = events.use_publisher(DroppingPublisher())
        try:
            await append(run, events.JOB_LOG, {"level": "info", "message": "never published"})
        finally:
            events.use_publisher(previous)
        # No later event reveals the gap; the idle check reads it from the database.
        message = json.loads(await comm.receive_from(timeout=10))
        assert (message["seq"], message["data"]["message"]) == (3, "never published")
        await comm.disconnect()

    run_async(scenario)


def test_it_drops_duplicates(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=2", owner)
        await comm.connect(timeout=TIMEOUT)
        stored = await database_sync_to_async(events_after)(run.pk, 1)
        layer = get_channel_layer()
        await layer.group_send(events.group_name(run.pk), events.layer_message(run.pk, stored[:1]))
        assert await comm.receive_nothing(timeout=0.5)
        await append(run, events.JOB_LOG, {"level": "info", "message": "new"})
        assert (await receive_json(comm))["seq"] == 3
        await comm.disconnect()

    run_async(scenario)


def test_it_ends_the_stream_after_a_terminal_event(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=2", owner)
        await comm.connect(timeout=TIMEOUT)
        await database_sync_to_async(run.mark_completed)({"best_score": 0.95})
        done = await receive_json(comm)
        assert (done["seq"], done["type"]) == (3, "JOB_COMPLETED")
        end = await receive_json(comm)
        assert end["type"] == "STREAM_END" and end["data"] == {"status": "completed", "last_seq": 3}
        assert (await comm.receive_output(timeout=TIMEOUT)) == {"type": "websocket.close", "code": 1000}

    run_async(scenario)


def test_it_ends_at_once_for_a_finished_run_the_client_has(owner, run):
    run.mark_stopped()

    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=3", owner)
        await comm.connect(timeout=TIMEOUT)
        end = await receive_json(comm)
        assert end["type"] == "STREAM_END" and end["data"]["status"] == "stopped"
        assert (await comm.receive_output(timeout=TIMEOUT))["code"] == 1000

    run_async(scenario)


@pytest.mark.parametrize("path", ["/ws/runs/{}/", "/ws/runs/{}/fragments/"])
def test_it_refuses_the_unauthenticated(run, path):
    async def scenario():
        comm = await socket(path.format(run.pk))
        await comm.connect(timeout=TIMEOUT)
        assert (await comm.receive_output(timeout=TIMEOUT)) == {"type": "websocket.close", "code": 4401}

    run_async(scenario)


@pytest.mark.parametrize("path", ["/ws/runs/{}/", "/ws/runs/{}/fragments/"])
def test_it_refuses_another_users_run(outsider, run, path):
    async def scenario():
        comm = await socket(path.format(run.pk), outsider)
        await comm.connect(timeout=TIMEOUT)
        assert (await comm.receive_output(timeout=TIMEOUT)) == {"type": "websocket.close", "code": 4404}

    run_async(scenario)


def test_it_checks_each_watcher_of_a_crowd_connecting_at_once(owner, outsider, run):
    # Watchers connecting together may share one replay read (live.wsdb.shared); access is still theirs.
    async def scenario():
        comms = [await socket(f"/ws/runs/{run.pk}/", user) for user in [owner] * 6 + [outsider] * 2]
        await asyncio.gather(*(comm.connect(timeout=TIMEOUT) for comm in comms))
        for comm in comms[:6]:
            assert [(await receive_json(comm))["seq"] for _ in range(2)] == [1, 2]
            await comm.disconnect()
        for comm in comms[6:]:
            assert (await comm.receive_output(timeout=TIMEOUT)) == {"type": "websocket.close", "code": 4404}

    run_async(scenario)


def test_it_refuses_a_missing_run(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk + 1000}/", owner)
        await comm.connect(timeout=TIMEOUT)
        assert (await comm.receive_output(timeout=TIMEOUT))["code"] == 4404

    run_async(scenario)


def test_it_lets_staff_watch(staff, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=1", staff)
        await comm.connect(timeout=TIMEOUT)
        assert (await receive_json(comm))["seq"] == 2
        await comm.disconnect()

    run_async(scenario)


def test_it_ignores_malformed_client_messages(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/?after=oops", owner)
        await comm.connect(timeout=TIMEOUT)
        assert [(await receive_json(comm))["seq"] for _ in range(2)] == [1, 2]  # a bad cursor means "all"
        await comm.send_to(text_data="not json {")
        await comm.send_to(bytes_data=b"\x00\xff")
        await comm.send_to(text_data=json.dumps({"type": "subscribe", "run": 999}))
        await comm.send_to(text_data=json.dumps([1, 2, 3]))
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        assert (await receive_json(comm)) == {"type": "pong", "last_seq": 2}
        await append(run, events.JOB_LOG, {"level": "info", "message": "still streaming"})
        assert (await receive_json(comm))["data"]["message"] == "still streaming"
        await comm.disconnect()

    run_async(scenario)


# --- The fragment form -----------------------------------------------------------------------------------


def test_it_streams_fragments_for_the_page(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/fragments/?after=2", owner)
        await comm.connect(timeout=TIMEOUT)
        hello = await comm.receive_from(timeout=TIMEOUT)
        assert 'id="rw-cursor"' in hello and 'data-last="2"' in hello
        await append(run, events.JOB_LOG, {"level": "warning", "message": "Convergence warning", "fold": 2})
        html = await comm.receive_from(timeout=TIMEOUT)
        assert '<div id="log-lines" hx-swap-oob="beforeend">' in html
        assert "level-warning" in html and "Convergence warning" in html and 'data-fold="2"' in html
        assert 'data-first="3" data-last="3"' in html
        await append(run, events.JOB_PROGRESS, {"progress": 0.4, "message": "Fitting fold 2/3 - LogisticRegression",
                                                "eta_seconds": 4, "elapsed_seconds": 3})
        html = await comm.receive_from(timeout=TIMEOUT)
        assert 'id="run-progress"' in html and 'aria-valuenow="40.0"' in html and "Fitting fold 2/3" in html
        await append(run, events.FOLD_PROGRESS, {"fold": 2, "total": 3, "branch": "default", "variant": 1})
        assert "Fold 2/3" in await comm.receive_from(timeout=TIMEOUT)
        await comm.disconnect()

    run_async(scenario)


def test_it_sends_the_whole_state_without_a_cursor(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/fragments/", owner)
        await comm.connect(timeout=TIMEOUT)
        html = await comm.receive_from(timeout=TIMEOUT)
        for region in ("run-badge", "run-actions", "run-progress", "run-steps", "run-metrics", "log-lines", "rw-cursor"):
            assert f'id="{region}"' in html
        assert 'data-full="1"' in html
        await comm.disconnect()

    run_async(scenario)


def test_it_sends_the_end_state_as_fragments(owner, run):
    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/fragments/?after=2", owner)
        await comm.connect(timeout=TIMEOUT)
        await comm.receive_from(timeout=TIMEOUT)
        await database_sync_to_async(run.mark_failed)("ValueError: boom", "Traceback (most recent call last):\nboom")
        html = await comm.receive_from(timeout=TIMEOUT)
        assert 'aria-label="Run status: Failed"' in html and "ValueError: boom" in html
        assert "Traceback (most recent call last)" not in html  # staff see it on the page only
        assert 'data-terminal="1"' in html
        await comm.receive_from(timeout=TIMEOUT)  # the closing cursor
        assert (await comm.receive_output(timeout=TIMEOUT))["code"] == 1000

    run_async(scenario)


def test_it_warns_fragment_watchers_about_a_silent_worker(owner, run, settings):
    settings.RUNWATCH = {**settings.RUNWATCH, "STALE_WARNING_SECONDS": 1.0}
    Run.objects.filter(pk=run.pk).update(heartbeat_at=Run.objects.get(pk=run.pk).heartbeat_at.replace(year=2000))

    async def scenario():
        comm = await socket(f"/ws/runs/{run.pk}/fragments/?after=2", owner)
        await comm.connect(timeout=TIMEOUT)
        await comm.receive_from(timeout=TIMEOUT)
        html = await comm.receive_from(timeout=10)
        assert 'id="stale-warning"' in html and "No word from the worker" in html and " hidden" not in html
        await comm.disconnect()

    run_async(scenario)
