"""One long-lived publisher for a worker process.

Calling async_to_sync(group_send) per event opens a new event loop and a new Redis connection each time.
The worker instead keeps one loop in a side thread with one channel layer (one connection), and hands it
events through a queue, so publishing costs the engine a queue put. Each write batch of the reporter
is one channel-layer message (one PUBLISH), however many events it holds.
"""

import asyncio
import logging
import queue
import threading

from channels.layers import get_channel_layer

from .events import layer_sends, send_all

log = logging.getLogger(__name__)


class ThreadedPublisher:
    def __init__(self):
        self._queue = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="runwatch-publisher", daemon=True)
        self._thread.start()

    def send(self, run_id, messages, owner_id=None):
        self._idle.clear()
        self._queue.put((run_id, messages, owner_id))

    def flush(self, timeout=5.0):
        """Wait until everything handed over so far has been sent (before the work horse exits)."""
        self._queue.put(None)
        return self._idle.wait(timeout)

    def _run(self):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        layer = get_channel_layer()
        while True:
            item = self._queue.get()
            if item is None:
                if self._queue.empty():
                    self._idle.set()
                continue
            run_id, messages, owner_id = item
            if not messages:
                continue
            try:
                # One write batch, one PUBLISH to the run's group (watchers get the whole batch at once, in
                # order), and one tiny one to each list group (runs.events.row_messages).
                loop.run_until_complete(send_all(layer, layer_sends(run_id, messages, owner_id)))
            except Exception:
                # Stored already; watchers fill the gap from the database.
                log.exception("Publishing events %s..%s of run %s failed", messages[0].get("seq"),
                              messages[-1].get("seq"), run_id)
