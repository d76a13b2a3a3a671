"""The fan-out hub (live/fanout.py): a live batch reaches every watcher with no database query and the same
bytes, and a watcher that goes away, at any moment, leaves no Redis subscription behind."""

import socket as raw_socket

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db.backends import utils as db_utils
from websockets.sync.client import connect

from runs import events
from live import fanout, fragments
from runs.models import append_events
from tests.helpers import DroppingPublisher, wait_for
from tests.test_consumers import receive_json, socket
from tests.test_ws_token import key_of, ws_url

pytestmark = pytest.mark.django_db(transaction=True)

WATCHERS = 20


@pytest.fixture
def run(owner, experiment):
    from runs.control import launch_run

    run = launch_run(owner, experiment=experiment)
    run.mark_running("w1")
    return run


@pytest.fixture
def queries(monkeypatch):
    """Counts every SQL statement of this process, on any thread and any connection."""
    seen = []
    original = db_utils.CursorWrapper._execute

    def counting(self, sql, *args, **kwargs):
        seen.append(sql)
        return original(self, sql, *args, **kwargs)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute", counting)
    return seen


def test_it_delivers_a_live_batch_to_every_watcher_with_no_query_and_one_render(owner, run, queries, monkeypatch):
    monkeypatch.setattr(fanout, "IDLE_CHECK_SECONDS", 60.0)  # no idle re-read during the test
    renders = []
    render = fragments.render_messages
    monkeypatch.setattr(fragments, "render_messages", lambda *a: renders.append(a) or render(*a))

    def store():
        previous = events.use_publisher(DroppingPublisher())
        try:  # stored, not yet published: the test publishes them once the watchers are in
            rows = append_events(run, [(events.JOB_LOG, {"level": "info", "message": f"live {i}"})
                                            for i in range(3)])
        finally:
            events.use_publisher(previous)
        return [row.to_message() for row in rows]

    async def scenario():
        json_socks = [await socket(f"/ws/runs/{run.pk}/?after=2", owner) for _ in range(WATCHERS)]
        html_socks = [await socket(f"/ws/runs/{run.pk}/fragments/?after=2", owner) for _ in range(WATCHERS)]
        for comm in json_socks + html_socks:
            assert (await comm.connect(timeout=30))[0]
        for comm in html_socks:
            await comm.receive_from(timeout=30)  # the "up to date" cursor
        messages = await database_sync_to_async(store)()
        renders.clear()
        queries.clear()
        await database_sync_to_async(events.publish)(run.pk, messages)  # one layer message, three events
        received = [[await receive_json(comm) for _ in range(3)] for comm in json_socks]
        html = [await comm.receive_from(timeout=30) for comm in html_socks]
        assert queries == []
        assert all([m["seq"] for m in got] == [3, 4, 5] for got in received)
        assert len(renders) == 1 and all(h is html[0] for h in html)  # rendered once, the same string to all
        assert "live 2" in html[0]
        for comm in json_socks + html_socks:
            await comm.disconnect()

    async_to_sync(scenario)()


def group_channel(run):
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    return f"{prefix}__group__{events.group_name(run.pk)}"


def subscribers(redis_client, run):
    return dict(redis_client.pubsub_numsub(group_channel(run)))[group_channel(run).encode()]


def half_handshake(server, path):
    """Open a WebSocket handshake and vanish before reading the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with raw_socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )


def test_it_holds_one_subscription_per_process_and_none_after_watchers_leave(daphne_server, owner, run, redis_client):
    url = ws_url(daphne_server, run, token=key_of(owner))
    sockets = [connect(url) for _ in range(10)]
    try:
        for ws in sockets:
            ws.recv(timeout=10)
        assert subscribers(redis_client, run) == 1  # ten watchers, one subscription
    finally:
        for ws in sockets:
            ws.close()
    wait_for(lambda: subscribers(redis_client, run) == 0, timeout=10, message="the subscription to go")
    # Watchers that vanish mid-handshake, while others come and go.
    path = f"/ws/runs/{run.pk}/?token={key_of(owner)}"
    for _ in range(30):
        half_handshake(daphne_server, path)
    with connect(url) as ws:
        ws.recv(timeout=10)
    wait_for(lambda: subscribers(redis_client, run) == 0, timeout=15, message="no subscription left")
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    wait_for(lambda: not redis_client.pubsub_channels(f"{prefix}*"), timeout=15, message="no channel of ours left")


