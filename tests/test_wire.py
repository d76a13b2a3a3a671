"""Live frames written once and sent as the same bytes to every watcher (live/wire.py)."""

import json
import re

import pytest
from websockets.sync.client import connect

from runs import events
from live import wire
from runs.models import append_events
from tests.helpers import wait_for
from tests.test_ws_token import key_of, ws_url

LAST = re.compile(r'data-last="(\d+)"')


def test_it_frames_text_as_unmasked_websocket_frames_back_to_back():
    short, medium, long = "a", "é" * 100, "x" * 70_000
    data = wire.frame([short, medium, long])
    encoded = medium.encode()
    assert data == (
        b"\x81\x01a"  # FIN + text, 1 byte, no mask
        + b"\x81\x7e" + len(encoded).to_bytes(2, "big") + encoded  # 16-bit length
        + b"\x81\x7f" + (70_000).to_bytes(8, "big") + long.encode()  # 64-bit length
    )


@pytest.fixture
def run(owner, experiment):
    from runs.control import launch_run

    run = launch_run(owner, experiment=experiment)
    run.mark_running("w1")
    return run


def test_it_writes_live_batches_straight_to_daphnes_sockets(daphne_server, owner, run):
    token = key_of(owner)
    fragments_url = ws_url(daphne_server, run, token=token).replace("/?", "/fragments/?") + "&after=0"
    watchers = [connect(ws_url(daphne_server, run, token=token, after=0)) for _ in range(3)]
    page = connect(fragments_url)
    try:
        page.recv(timeout=30)  # "up to date": it holds the subscription now, as the others do
        for batch in range(3):  # three write batches of ten lines: three layer messages
            append_events(run, [(events.JOB_LOG, {"level": "info", "message": f"line {batch}.{i}"})
                                for i in range(10)])
        run.refresh_from_db()
        end = run.last_seq  # the launch's status events come first
        for ws in watchers:
            got = []
            while len(got) < end:
                got.append(json.loads(ws.recv(timeout=30)))
            assert [m["seq"] for m in got] == list(range(1, end + 1))
            assert [m["data"]["message"] for m in got[-30:]] == [f"line {b}.{i}" for b in range(3) for i in range(10)]
        last = 0
        while last < end:
            html = page.recv(timeout=30)
            last = max([last, *map(int, LAST.findall(html))])
    finally:
        for ws in [*watchers, page]:
            ws.close()
    # The daphne process says which way it wrote; a change in daphne, autobahn or twisted that turned the
    # direct path off would show up here (and as the old per-watcher cost in bench/latency.py).
    log = lambda: daphne_server.log_path.read_text()  # noqa: E731
    wait_for(lambda: "written straight to daphne's WebSocket connections" in log(), timeout=10,
             message="daphne to write live frames directly")
    assert "go through ASGI send" not in log()
