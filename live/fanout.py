"""Fan-out of live run events inside one daphne process: what a broadcast server does.

One Hub per event loop (one per daphne process) holds ONE channel-layer channel. For each run that has
watchers in this process it adds that channel to the run's group, so Redis carries each write batch to the
process once, whatever the number of watchers. The hub turns a batch into frames once (JSON encoded once per
event, the page's fragments rendered once per batch) and hands the same frames to every watcher, which only
writes them to its socket: no database query, no thread hop, no encoding per watcher.

Watchers register in-process (join/leave are plain calls, safe from a cancelled task), and one task per hub
brings the Redis subscriptions in line with them: a run nobody here watches any more is unsubscribed, even
when its last watcher vanished mid-handshake. If Redis is down the task retries; watchers meanwhile get
their events from the database through the idle check.

Per run, a Topic delivers batches in order. A batch that skips seqs (the layer dropped a message) is
completed from the database once for all watchers, and a run that stays silent is checked once per
IDLE_CHECK_SECONDS for events whose publish was lost and for its end, again once for all watchers.

The same hub and channel serve the runs list: a list socket joins its user's list group (the owner's, or
the staff group) instead of a run, and a RowFeed (live/listfeed.py) stands where a Topic would.
"""

import asyncio
import bisect
import logging
import time

from channels.layers import get_channel_layer

from runs import events
from . import fragments, wire, wsdb
from .listfeed import RowFeed
from runs.models import Run, events_after

log = logging.getLogger(__name__)

# Seconds without a live event after which the database is checked for events the layer dropped.
IDLE_CHECK_SECONDS = 3.0
# How long a connect waits for the run's subscription before it reads the database anyway (Redis down).
SUBSCRIBE_WAIT = 2.0
RETRY_SECONDS = 1.0
FILL_LIMIT = 1000
# Batches of up to this many messages render their fragments on the event loop itself (see html_frames).
INLINE_RENDER_MAX = 8


def _raise_if_cancelled():
    # Redis client code may swallow a CancelledError during cleanup; a loop that carried on would keep its
    # event loop from closing (asyncio.run waits for every cancelled task).
    if asyncio.current_task().cancelling():
        raise asyncio.CancelledError()


class Batch:
    """Stored messages in seq order, with their frames made once and shared by every watcher."""

    def __init__(self, run_id, messages):
        self.run_id = run_id
        self.messages = messages
        self.seqs = [m["seq"] for m in messages]
        self.first, self.last = self.seqs[0], self.seqs[-1]
        self.terminal = next((i for i, m in enumerate(messages) if events.is_terminal_message(m)), None)
        self._json = None
        self._html = None
        self._wire = {}

    def after(self, seq):
        """Index of the first message with a seq above `seq`."""
        return bisect.bisect_right(self.seqs, seq)

    def json_frames(self):
        if self._json is None:
            self._json = [{"type": "websocket.send", "text": events.to_json(m)} for m in self.messages]
        return self._json

    def json_wire(self, start=0):
        """The JSON frames from message `start` on, framed for the socket once (live/wire.py)."""
        if start not in self._wire:
            self._wire[start] = wire.frame(frame["text"] for frame in self.json_frames()[start:])
        return self._wire[start]

    def html_wire(self, html):
        if "html" not in self._wire:
            self._wire["html"] = wire.frame(frame["text"] for frame in html)
        return self._wire["html"]

    async def html_frames(self):
        # One render per batch per process, from the messages alone (no database). A small batch (a quiet run:
        # well under a millisecond) renders right here; a thread hop would cost more than the render and the
        # render holds the GIL either way. A burst renders on a plain thread, so the loop keeps writing between
        # the interpreter's switches.
        if self._html is None:
            def render():
                return [{"type": "websocket.send", "text": text}
                        for text in fragments.render_batch(self.run_id, self.messages)]

            if len(self.messages) <= INLINE_RENDER_MAX:
                frames = render()  # raises before anything is cached: a failed render is not kept
                self._html = asyncio.get_running_loop().create_future()
                self._html.set_result(frames)
            else:
                self._html = asyncio.ensure_future(asyncio.to_thread(render))
        return await self._html


def load_state(run_id):
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return None
    return {"last_seq": run.last_seq, "terminal": run.is_terminal, "status": run.status, "run": run,
            "stale": fragments.stale_seconds(run) is not None, "stale_html": fragments.stale_html(run)}


def valid(messages):
    return [m for m in messages if isinstance(m.get("seq"), int)]


class Topic:
    def __init__(self, hub, run_id):
        self.hub = hub
        self.run_id = run_id
        self.group = events.group_name(run_id)
        self.watchers = set()
        self.subscribed = asyncio.Event()
        self.last_seq = None  # the highest seq this process delivered for the run
        self.last_batch_at = time.monotonic()
        self.queue = asyncio.Queue()
        self.tasks = [asyncio.ensure_future(self._deliver()), asyncio.ensure_future(self._idle())]

    def stop(self):
        for task in self.tasks:
            task.cancel()

    def put(self, messages):
        messages = valid(messages)
        if messages:
            self.last_batch_at = time.monotonic()
            self.queue.put_nowait((self._deliver_one, messages))

    async def _deliver(self):
        # One task per run delivers batches and idle checks in the order they came: watchers never see a
        # run's events out of order, and a slow render of one run holds up no other run.
        while True:
            step, arg = await self.queue.get()
            try:
                await step(arg)
            except Exception:
                log.exception("Delivering events of run %s failed", self.run_id)
            _raise_if_cancelled()

    async def _idle_state(self, state):
        for watcher in list(self.watchers):
            await watcher.idle(state)

    async def _deliver_one(self, messages):
        if self.last_seq is not None and messages[0]["seq"] > self.last_seq + 1:
            # The layer lost something in between: read it once here rather than once per watcher.
            missing = await wsdb.run(events_after, self.run_id, self.last_seq,
                                     limit=min(messages[0]["seq"] - self.last_seq - 1, FILL_LIMIT))
            messages = [m for m in missing if m["seq"] < messages[0]["seq"]] + messages
        batch = Batch(self.run_id, messages)
        self.last_seq = max(self.last_seq or 0, batch.last)
        html = None
        if any(w.fragments for w in self.watchers):
            html = await batch.html_frames()
        for watcher in list(self.watchers):
            try:
                await watcher.live(batch, html)
            except Exception:
                log.exception("Sending to a watcher of run %s failed", self.run_id)

    async def _idle(self):
        while True:
            await asyncio.sleep(IDLE_CHECK_SECONDS / 2)
            if time.monotonic() - self.last_batch_at < IDLE_CHECK_SECONDS or not self.watchers:
                continue
            self.last_batch_at = time.monotonic()
            try:
                await self._check()
            except Exception:
                log.exception("Idle check failed for run %s", self.run_id)
            _raise_if_cancelled()

    async def _check(self):
        state = await wsdb.run(load_state, self.run_id)
        if state is None:
            return
        behind = [w.last_sent for w in self.watchers if not w.busy and w.last_sent < state["last_seq"]]
        if behind:
            found = await wsdb.run(events_after, self.run_id, min(behind), limit=FILL_LIMIT)
            self.put(found)
        self.queue.put_nowait((self._idle_state, state))


class Hub:
    def __init__(self, loop):
        self.loop = loop
        self.layer = get_channel_layer()
        self.channel = None
        self.topics = {}
        self._dirty = asyncio.Event()
        self._reader = None
        self._sync = asyncio.ensure_future(self._sync_loop())

    # --- Watchers (plain calls: nothing here can be interrupted halfway) ---------------------------------

    def join(self, watcher):
        key = _key(watcher)
        topic = self.topics.get(key)
        if topic is None:
            # A run page watches its run's topic; a runs list, its user's list group (live/listfeed.py).
            topic = self.topics[key] = RowFeed(self, key) if isinstance(key, str) else Topic(self, key)
        topic.watchers.add(watcher)
        self._dirty.set()
        return topic

    def leave(self, watcher):
        topic = self.topics.get(_key(watcher))
        if topic is not None and watcher in topic.watchers:
            topic.watchers.discard(watcher)
            self._dirty.set()

    def subscriptions(self):
        """The runs whose groups this process is subscribed to (list groups not included)."""
        return sorted(key for key, topic in self.topics.items() if isinstance(key, int) and topic.subscribed.is_set())

    # --- Redis ------------------------------------------------------------------------------------------

    async def _sync_loop(self):
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._sync_once()
                _raise_if_cancelled()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("Could not update run subscriptions (%s); retrying in %ss", e, RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)
                self._dirty.set()

    async def _sync_once(self):
        if self.channel is None and any(t.watchers for t in self.topics.values()):
            self.channel = await self.layer.new_channel(prefix="runwatch-hub.")
            self._reader = asyncio.ensure_future(self._read(self.channel))
        for run_id, topic in list(self.topics.items()):
            if topic.watchers and not topic.subscribed.is_set():
                await self.layer.group_add(topic.group, self.channel)
                topic.subscribed.set()
            if not topic.watchers:
                if topic.subscribed.is_set():
                    await self.layer.group_discard(topic.group, self.channel)
                    topic.subscribed.clear()
                if topic.watchers:  # someone joined while we unsubscribed
                    self._dirty.set()
                else:
                    topic.stop()
                    del self.topics[run_id]
        if not self.topics and self._reader is not None:
            # Nobody watches anything here: give the hub's own channel back too.
            self._reader.cancel()
            self._reader = self.channel = None

    async def _read(self, channel):
        while True:
            message = await self.layer.receive(channel)
            if message.get("type") == events.ROW_LAYER_TYPE:
                feed = self.topics.get(message.get("group"))
                if feed is not None and feed.watchers:
                    feed.put(message)
                continue
            batch = events.layer_events(message)
            run_id = message.get("run") or (batch[0].get("run") if batch else None)
            topic = self.topics.get(run_id)
            if topic is not None and topic.watchers:
                topic.put(batch)


def _key(watcher):
    return getattr(watcher, "feed_group", None) or watcher.run_id


_hubs = {}


def hub():
    """This event loop's hub (daphne has one loop; each test coroutine run has its own)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        for old in [l for l in _hubs if l.is_closed()]:
            del _hubs[old]
        found = _hubs[loop] = Hub(loop)
    return found


async def join(watcher):
    """Register the watcher and wait (boundedly) until its run's events reach this process."""
    topic = hub().join(watcher)
    if not topic.subscribed.is_set():
        try:
            await asyncio.wait_for(topic.subscribed.wait(), SUBSCRIBE_WAIT)
        except asyncio.TimeoutError:
            log.warning("%s: no subscription yet (is Redis down?); the database fills in", topic.group)
    return topic


def leave(watcher):
    found = _hubs.get(asyncio.get_running_loop())
    if found is not None:
        found.leave(watcher)
