"""WebSocket token auth for API clients, with a real `websockets` client against daphne.

The token goes as ?token=<key> or as the subprotocol token.<key>; 4401 without a valid one, 4404 for another
user's run. Then a real run streamed across random disconnects must arrive as exactly seq 1..N.
"""

import json
import random
import socket
import time

import pytest
from rest_framework.authtoken.models import Token
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from runs.control import launch_run
from runs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

# 4 variants x 5 folds: enough events for many disconnect points, still a few seconds of work.
MANY_EVENTS_SPEC = {
    "dataset": {"kind": "builtin", "name": "iris"},
    "task": "classification",
    "models": [{"estimator": "LogisticRegression", "params": {"C": [0.01, 0.1, 1.0, 10.0], "max_iter": [300]}}],
    "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}


def ws_url(server, run, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{server.url.replace('http://', 'ws://')}/ws/runs/{run.pk}/" + (f"?{query}" if query else "")


def key_of(user):
    return Token.objects.get_or_create(user=user)[0].key


def close_code(ws):
    """Read until the server closes; the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=10)
    return closed.value.rcvd.code


@pytest.fixture
def run(owner, experiment):
    return launch_run(owner, experiment=experiment)


def test_it_accepts_a_token_in_the_query(daphne_server, owner, run):
    with connect(ws_url(daphne_server, run, token=key_of(owner))) as ws:
        first = json.loads(ws.recv(timeout=10))
    assert (first["seq"], first["type"], first["data"]["status"]) == (1, "JOB_STATUS", "queued")


def test_it_accepts_a_token_as_subprotocol_and_echoes_the_plain_one(daphne_server, owner, run):
    with connect(ws_url(daphne_server, run), subprotocols=["runwatch.v1", f"token.{key_of(owner)}"]) as ws:
        assert ws.subprotocol == "runwatch.v1"  # the key is not sent back when there is another choice
        assert json.loads(ws.recv(timeout=10))["seq"] == 1


def test_it_echoes_the_token_subprotocol_when_it_is_the_only_one(daphne_server, owner, run):
    protocol = f"token.{key_of(owner)}"
    with connect(ws_url(daphne_server, run), subprotocols=[protocol]) as ws:
        assert ws.subprotocol == protocol
        assert json.loads(ws.recv(timeout=10))["seq"] == 1


@pytest.mark.parametrize("how", ["none", "bad query", "bad subprotocol"])
def test_it_closes_4401_without_a_valid_token(daphne_server, run, how):
    url = ws_url(daphne_server, run, token="nope") if how == "bad query" else ws_url(daphne_server, run)
    protocols = ["token.nope"] if how == "bad subprotocol" else None
    with connect(url, subprotocols=protocols) as ws:
        assert close_code(ws) == 4401


def test_it_closes_4404_for_another_users_run_as_for_a_missing_one(daphne_server, outsider, run):
    with connect(ws_url(daphne_server, run, token=key_of(outsider))) as ws:
        assert close_code(ws) == 4404
    with connect(ws_url(daphne_server, run, token=key_of(outsider)).replace(f"/runs/{run.pk}/", "/runs/999999/")) as ws:
        assert close_code(ws) == 4404


def test_it_lets_staff_watch_any_run(daphne_server, staff, run):
    with connect(ws_url(daphne_server, run, token=key_of(staff))) as ws:
        assert json.loads(ws.recv(timeout=10))["seq"] == 1


def test_it_still_checks_browser_origins(daphne_server, owner, run):
    url = ws_url(daphne_server, run, token=key_of(owner))
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    with connect(url, origin=daphne_server.url) as ws:  # our own pages
        assert json.loads(ws.recv(timeout=10))["seq"] == 1


def test_it_streams_a_real_run_across_random_disconnects(daphne_server, worker, owner):
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    run = launch_run(owner, spec=MANY_EVENTS_SPEC)
    protocols = ["runwatch.v1", f"token.{key_of(owner)}"]
    received, connections, ended = [], 0, False
    while not ended:
        assert connections < 500, f"the stream never ended (seed {seed})"
        with connect(ws_url(daphne_server, run, after=received[-1] if received else 0), subprotocols=protocols) as ws:
            connections += 1
            for _ in range(rng.randint(1, 12)):
                message = json.loads(ws.recv(timeout=60))
                if message["type"] == "STREAM_END":
                    ended = True
                    break
                received.append(message["seq"])
            if not ended and rng.random() < 0.5:
                try:
                    ws.socket.shutdown(socket.SHUT_RDWR)  # a dropped network rather than a polite close
                except OSError:
                    pass  # the server had already sent the rest, STREAM_END and its close: nothing to drop
    run.refresh_from_db()
    assert run.status == Run.Status.COMPLETED, run.error_message
    assert received == list(range(1, run.last_seq + 1)), f"seed {seed}"
    assert connections > 3


@pytest.mark.system
def test_it_streams_from_the_database_while_redis_is_down(owner, run):
    """Issue 14: the handshake answered HTTP 500 while Redis was down. Now the stream opens and serves what the
    database holds; the live path comes back with Redis."""
    from tests.helpers import free_port, serve_daphne

    # Nothing listens on this port: every Redis call of this daphne fails (the channel layer, the cache).
    server = serve_daphne(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        with connect(ws_url(server, run, token=key_of(owner)), open_timeout=30) as ws:
            first = json.loads(ws.recv(timeout=30))
        assert (first["seq"], first["data"]["status"]) == (1, "queued")
    finally:
        server.stop()


def test_it_gives_a_slow_reader_the_whole_replay_and_stream_end(daphne_server, owner, run):
    """The server closes a finished run's stream after STREAM_END. It used to abort the connection 1 s later if the
    client had not answered the close by then, throwing away what the client had not read yet."""
    from runs import events
    from runs.models import append_events

    append_events(run, [(events.JOB_LOG, {"level": "info", "message": f"line {i} " + "x" * 1000}) for i in range(2000)])
    run.mark_failed("Ended for the test")
    last = Run.objects.get(pk=run.pk).last_seq
    seqs = []
    with connect(ws_url(daphne_server, run, token=key_of(owner)), max_queue=4) as ws:
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "STREAM_END":
                break
            seqs.append(message["seq"])
            if len(seqs) % 100 == 0:
                time.sleep(0.1)  # a slow reader (a phone, a busy script): 2 s for the whole replay, on purpose
    assert seqs == list(range(1, last + 1))
