"""One long-lived publisher for a worker process.

Calling async_to_sync(group_send) per event opens a new event loop and a new Redis connection each time.
The worker instead keeps one Redis client. Each write batch of the reporter is one channel-layer message (one
PUBLISH), however many events it holds, sent by the reporter's writer thread once it has committed, with any
list rows that are due in the same pipeline (one round trip).

It publishes with redis-py's plain (blocking) client, not through the channel layer's asyncio one: on a run
of short fits nearly every event is a write batch of its own, and publishing through the layer from a side
thread was a third of what reporting cost the worker's CPU (bench/overhead.py --short-fit, with publishing
and without). It sends exactly what the layer's group_send sends: the layer's own serializer (its public
serialize), to the layer's group channel (library_internals.group_channel, the one internal name relied on), so
consumers receive it through the layer as before (tests/test_publisher.py reads it back with the layer).
Another layer backend is sent to through its own group_send.
"""

import logging
import threading
import time

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from .events import STATUS_TYPES, layer_sends, send_all
from .library_internals import group_channel

log = logging.getLogger(__name__)


# Seconds between two row messages of one run to one list group. A list row shows the latest state, and the
# list feed renders at most every listfeed.ROW_INTERVAL anyway; a status change is sent at once.
ROW_INTERVAL = 0.25
# After a failed send, seconds during which nothing is sent (see _publish); Redis calls time out after this too.
DOWN_PAUSE = 1.0


class ThreadedPublisher:
    """Sends a write batch's message at once, in the caller's thread (the reporter's writer, which has just
    committed it), with the list rows that are due in the same round trip. Rows not yet due wait, newest per
    (group, run), for a side thread that sends them when they fall due. Handing every batch to a thread cost
    a thread switch per write batch: on a run of short fits, a fifth of what reporting cost."""

    def __init__(self):
        self._send = _sender(get_channel_layer())
        self._cond = threading.Condition()
        self._rows, self._rows_due = {}, 0.0  # the newest row message per (list group, run) not sent yet
        self._down_until = 0.0
        self._thread = threading.Thread(target=self._run, name="runwatch-publisher", daemon=True)
        self._thread.start()

    def send(self, run_id, messages, owner_id=None):
        if not messages:
            return
        run_send, *row_sends = layer_sends(run_id, messages, owner_id)
        with self._cond:
            self._rows.update(((group, run_id), message) for group, message in row_sends)
            rows = self._take_rows(force=any(m.get("type") in STATUS_TYPES for m in messages))
            if self._rows:
                self._cond.notify()
        self._publish([run_send, *rows])

    def flush(self, timeout=5.0):
        """Send the rows that wait (before the work horse exits). Everything else is sent already."""
        with self._cond:
            rows = self._take_rows(force=True)
        self._publish(rows)
        return True

    def _take_rows(self, force):
        # One row message per ROW_INTERVAL per (group, run): a run of short fits writes a batch every few
        # milliseconds, and each row is a PUBLISH that every list watcher's daphne renders.
        now = time.monotonic()
        if not self._rows or (not force and now < self._rows_due):
            return []
        rows, self._rows, self._rows_due = self._rows, {}, now + ROW_INTERVAL
        return [(group, message) for (group, _), message in rows.items()]

    def _run(self):
        while True:
            with self._cond:
                while not self._rows or time.monotonic() < self._rows_due:
                    self._cond.wait(max(self._rows_due - time.monotonic(), 0.001) if self._rows else None)
                rows = self._take_rows(force=True)
            self._publish(rows)

    def _publish(self, sends):
        if not sends or time.monotonic() < self._down_until:
            return
        try:
            self._send(sends)
        except Exception:
            # Stored already; watchers fill the gap from the database, and list feeds check idle rows. The
            # caller is the reporter's writer: while Redis is unreachable, it must not wait out a timeout for
            # every write batch, so nothing is sent for a moment after a failure.
            self._down_until = time.monotonic() + DOWN_PAUSE
            log.exception("Publishing %s channel-layer message(s) failed; none are sent for %s s", len(sends),
                          DOWN_PAUSE)


def _sender(layer):
    """What sends [(group, message)] as the layer's group_send would, in one round trip."""
    config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    hosts = config.get("hosts") or []
    # One Redis given as a URL (what config/settings.py gives); the layer would shard over several.
    if not isinstance(layer, RedisPubSubChannelLayer) or len(hosts) != 1 or not isinstance(hosts[0], str):
        return _LayerSender(layer)
    return _RedisSender(layer, hosts[0], config.get("prefix", "asgi"))


class _LayerSender:
    """Another layer backend: through its own group_send."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, sends):
        async_to_sync(send_all)(self.layer, sends)


class _RedisSender:
    def __init__(self, layer, url, prefix):
        self.layer, self.prefix = layer, prefix
        # No retries: a failed send is dropped (see _publish), not repeated while the writer waits.
        self.client = redis.Redis.from_url(url, socket_timeout=DOWN_PAUSE, socket_connect_timeout=DOWN_PAUSE,
                                           retry=Retry(NoBackoff(), 0))
    def __call__(self, sends):
        pipe = self.client.pipeline(transaction=False)
        for group, message in sends:
            pipe.publish(self._channel(group), self.layer.serialize(message))
        pipe.execute()

    def _channel(self, group):
        return group_channel(self.prefix, group)
