"""The live runs list: one feed per list group in each daphne process, one socket per list page.

    /ws/runs/list/?ids=<ids of the page's active rows>&after=<newest run id the page shows>

A user's list watches their owner group, a staff list the staff group (runs.events.row_messages); so no list
watcher is ever handed a run its user may not see, and no watcher does any work for such a run. The worker
sends each group one tiny message per write batch. A RowFeed (held by the process's fan-out hub, next to the
run topics: one channel-layer channel for both) collects the runs that changed, reads and renders their rows
once for all of the group's watchers (runs/listing.py; one database call), and hands every watcher the same
frame. Batches that arrive while a render is under way, or within ROW_INTERVAL of the last one, share the
next render: a list row needs the latest state, not every event, so its cost per event falls as events
speed up. Delivery is at most once, so a feed whose active rows stay silent for IDLE_CHECK_SECONDS reads
their seqs (one query for the group) and re-renders the rows that moved: a lost message delays a row, it
never leaves it running forever.

Frames are JSON: {"type": "rows", "rows": [{"run", "seq", "status", "terminal", "html"}]}. `seq` is the
run's last event seq when the row was read; the page keeps whichever row it holds with the higher seq, so a
frame that arrives late never undoes a newer one. On connect the consumer sends the current rows of `ids`
and the runs newer than `after` (a run launched meanwhile, elsewhere), after joining the feed, so nothing
in between is missed (live/list_consumer.py).
"""

import asyncio
import logging
import time

from runs import events, listing
from . import wire, wsdb
from runs.models import Run

log = logging.getLogger(__name__)

# Seconds between two renders of a group's rows in one process.
ROW_INTERVAL = 0.25
# The layer delivers at most once: a feed whose active rows stay silent this long checks them in the database
# (one query for the group, not one per watcher), so a lost message does not leave a row running forever.
IDLE_CHECK_SECONDS = 5.0


def group_for(user):
    return events.STAFF_GROUP if user.is_staff else events.owner_group(user.pk)


def initial_frame(user, ids, after):
    """What a list socket sends first (the rows it asked about, and the runs newer than `after`), and
    {run id: seq} of the active ones, for the feed's idle check."""
    rows = listing.rows_for(user, ids, after)
    return {"type": "websocket.send", "text": listing.rows_payload(rows)}, _active(rows)


def _active(runs):
    return {run.pk: run.last_seq for run in runs if run.is_active}


def moved_since(active):
    """The runs of {run id: seq} that have events past that seq (their rows are out of date)."""
    seqs = dict(Run.objects.filter(pk__in=list(active)).values_list("pk", "last_seq"))
    return [pk for pk, seq in active.items() if seqs.get(pk, seq) > seq]


def render_rows(group, run_ids):
    """One frame for the runs that changed, as the group's watchers may see them (owner groups: only the
    owner's runs, whatever a message claims)."""
    runs = Run.objects.filter(pk__in=run_ids).select_related("experiment").defer(*listing.DEFERRED)
    if group != events.STAFF_GROUP:
        runs = runs.filter(owner_id=int(group.rsplit("-", 1)[1]))
    rows = listing.decorate(runs.order_by("-pk"))
    frame = {"type": "websocket.send", "text": listing.rows_payload(rows)} if rows else None
    return frame, {run.pk: run.last_seq if run.is_active else None for run in rows}


class RowFeed:
    """A list group's watchers in this process; the hub (live/fanout.py) subscribes it like a run topic."""

    def __init__(self, hub, group):
        self.hub = hub
        self.group = group
        self.watchers = set()
        self.subscribed = asyncio.Event()
        self.pending = set()
        self.wake = asyncio.Event()
        self.renders = 0  # how many frames this feed made (the bench and the tests read it)
        self.active = {}  # run id -> seq its row was read at, for the rows still active
        self.last_wake = time.monotonic()
        self.tasks = [asyncio.ensure_future(self._run()), asyncio.ensure_future(self._idle())]

    def stop(self):
        for task in self.tasks:
            task.cancel()

    def track(self, active):
        """Rows a watcher was sent on connect: the idle check covers them too."""
        for pk, seq in active.items():
            self.active[pk] = max(seq, self.active.get(pk, 0))

    def put(self, message):
        if isinstance(message.get("run"), int):
            self.pending.add(message["run"])
            self.last_wake = time.monotonic()
            self.wake.set()

    async def _run(self):
        while True:
            await self.wake.wait()
            self.wake.clear()
            ids, self.pending = sorted(self.pending), set()
            try:
                frame, seen = await wsdb.run(render_rows, self.group, ids)
                self.renders += 1
                for pk, seq in seen.items():
                    if seq is None:
                        self.active.pop(pk, None)
                    else:
                        self.active[pk] = seq
                if frame is not None:
                    framed = wire.frame([frame["text"]])
                    for watcher in list(self.watchers):
                        await watcher.live(frame, framed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Rendering rows %s for %s failed", ids, self.group)
            await asyncio.sleep(ROW_INTERVAL)

    async def _idle(self):
        while True:
            await asyncio.sleep(IDLE_CHECK_SECONDS / 2)
            if not self.watchers or not self.active or time.monotonic() - self.last_wake < IDLE_CHECK_SECONDS:
                continue
            self.last_wake = time.monotonic()
            try:
                moved = await wsdb.run(moved_since, dict(self.active))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Idle check of %s failed", self.group)
                continue
            if moved:
                self.pending.update(moved)
                self.wake.set()
