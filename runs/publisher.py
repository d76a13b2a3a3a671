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
import time

from channels.layers import get_channel_layer

from .events import STATUS_TYPES, layer_sends, send_all

log = logging.getLogger(__name__)


# Seconds between two row messages of one run to one list group. A list row shows the latest state, and the
# list feed renders at most every listfeed.ROW_INTERVAL anyway; a status change is sent at once.
ROW_INTERVAL = 0.25
_ROWS_DUE = object()


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
        # The newest row message per (list group, run) not sent yet. Each is a PUBLISH of its own, and a run of
        # short fits writes a batch every few milliseconds: one per ROW_INTERVAL is what a list can show.
        rows, rows_due = {}, 0.0
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, rows_due - time.monotonic()) if rows else None)
            except queue.Empty:
                item = _ROWS_DUE
            sends = []
            if item is not None and item is not _ROWS_DUE:
                run_id, messages, owner_id = item
                if not messages:
                    continue
                # One write batch, one PUBLISH to the run's group (watchers get the whole batch at once, in order).
                run_send, *row_sends = layer_sends(run_id, messages, owner_id)
                sends.append(run_send)
                rows.update(((group, run_id), message) for group, message in row_sends)
                if not any(m.get("type") in STATUS_TYPES for m in messages) and time.monotonic() < rows_due:
                    rows_sends = []
                else:
                    rows_sends, rows, rows_due = list(rows.items()), {}, time.monotonic() + ROW_INTERVAL
            else:  # due, or a flush: nothing may wait
                rows_sends, rows, rows_due = list(rows.items()), {}, time.monotonic() + ROW_INTERVAL
            sends += [(group, message) for (group, _), message in rows_sends]
            try:
                if sends:
                    loop.run_until_complete(send_all(layer, sends))
            except Exception:
                # Stored already; watchers fill the gap from the database, and list feeds check idle rows.
                log.exception("Publishing %s channel-layer message(s) failed", len(sends))
            if item is None and self._queue.empty():
                self._idle.set()
