"""The worker's publisher (runs/publisher.py) on the real Redis channel layer: every write batch reaches the
run's group as one message, and the list groups hear of a run's progress at most once per ROW_INTERVAL, with
the newest state always sent and a status change sent at once."""

import copy
import socket
import time

import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings

from runs import events, publisher


class Listener:
    """Subscribes to the channel layer's group channels with a plain Redis client and decodes what arrives."""

    def __init__(self, *groups):
        layer = get_channel_layer()
        self.layer = layer
        self.names = {f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}__group__{g}": g for g in groups}
        self.pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub()
        self.pubsub.subscribe(*self.names)
        for _ in self.names:  # the subscribe confirmations
            assert self.pubsub.get_message(timeout=10)["type"] == "subscribe"

    def read(self, until, timeout=20):
        got, deadline = [], time.monotonic() + timeout
        while not until(got):
            assert time.monotonic() < deadline, f"Timed out; got {got}"
            message = self.pubsub.get_message(timeout=0.5)
            if message and message["type"] == "message":
                got.append((self.names[message["channel"].decode()], self.layer.deserialize(message["data"])))
        return got


def progress(seq, run_id=7):
    return {"seq": seq, "type": events.JOB_PROGRESS, "ts": "t", "run": run_id, "data": {"progress": seq / 100}}


@pytest.fixture
def publish(redis_client):
    sender = publisher.ThreadedPublisher()
    yield sender
    assert sender.flush(timeout=10)


def test_it_sends_every_batch_and_coalesces_the_list_rows(publish, monkeypatch):
    monkeypatch.setattr(publisher, "ROW_INTERVAL", 60.0)  # nothing is due by time during the test
    run_group, owner_group = events.group_name(7), events.owner_group(3)
    listener = Listener(run_group, owner_group, events.STAFF_GROUP)
    for seq in range(1, 41):
        publish.send(7, [progress(seq)], owner_id=3)
    got = listener.read(lambda got: sum(g == run_group for g, _ in got) == 40)
    assert [m["events"][0]["seq"] for g, m in got if g == run_group] == list(range(1, 41))
    # The first batch's rows go at once; the rest wait for the interval (or a flush, or a status change).
    assert [(g, m["seq"]) for g, m in got if g != run_group] == [(owner_group, 1), (events.STAFF_GROUP, 1)]
    status = {"seq": 41, "type": events.JOB_STATUS, "ts": "t", "run": 7, "data": {"status": "stopped"}}
    publish.send(7, [status], owner_id=3)
    got = listener.read(lambda got: len(got) == 3)
    assert sorted((g, m.get("seq")) for g, m in got if g != run_group) == sorted(
        [(owner_group, 41), (events.STAFF_GROUP, 41)])  # at once, and only the newest state
    publish.send(7, [progress(42)], owner_id=3)
    assert publish.flush(timeout=10)  # a flush (the work horse exits) sends what waits
    got = listener.read(lambda got: len(got) == 3)
    assert sorted((g, m.get("seq")) for g, m in got if g != run_group) == sorted(
        [(owner_group, 42), (events.STAFF_GROUP, 42)])


def test_it_sends_the_waiting_rows_once_the_interval_is_over(publish, monkeypatch):
    monkeypatch.setattr(publisher, "ROW_INTERVAL", 0.3)
    owner_group = events.owner_group(3)
    listener = Listener(owner_group)
    for seq in range(1, 6):
        publish.send(7, [progress(seq)], owner_id=3)
    got = listener.read(lambda got: any(m["seq"] == 5 for _, m in got))
    assert [m["seq"] for _, m in got] == [1, 5]  # the first at once, the newest when due: none in between


@pytest.mark.integration  # a local socket server stands in for a partitioned Redis
def test_it_pauses_after_a_send_fails_instead_of_waiting_on_every_batch(settings, monkeypatch):
    # A Redis that takes connections and never answers (a partition). The caller is the reporter's writer: a
    # send must give up after DOWN_PAUSE, and the batches after it must not try (and wait) again until the
    # pause is over. Each try is a new connection, which waits in the listening socket's queue (the kernel
    # completes the handshake before connect() returns), so draining the queue counts the tries.
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    server.setblocking(False)
    taken = []

    def tries():
        count = 0
        while True:
            try:
                taken.append(server.accept()[0])
            except BlockingIOError:
                return count
            count += 1

    monkeypatch.setattr(publisher, "DOWN_PAUSE", 0.5)
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"] = [f"redis://127.0.0.1:{server.getsockname()[1]}/0"]
    settings.CHANNEL_LAYERS = layers
    sender = publisher.ThreadedPublisher()
    try:
        sender.send(7, [progress(1)])  # waits out the timeout, then gives up
        assert tries() == 1
        for seq in range(2, 50):
            sender.send(7, [progress(seq)])
        assert tries() == 0  # nothing tried during the pause
        sender._down_until = 0.0  # the pause is over
        sender.send(7, [progress(50)])
        assert tries() == 1
    finally:
        server.close()
        for connection in taken:
            connection.close()
