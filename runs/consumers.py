"""The run event stream over WebSocket, in two forms on the same data and the same seqs.

    /ws/runs/<id>/?after=<seq>             JSON: one stored message {"seq","type","ts","run","data"} per frame
    /ws/runs/<id>/fragments/?after=<seq>   HTML: hx-swap-oob fragments for the run page (htmx ws extension)

On connect: check access, join the group `run-<id>`, accept, then replay from the database everything after
`after`, then stream live. Joining before reading means an event published meanwhile arrives through the
group and is dropped as a duplicate (seq <= last sent) rather than lost. Delivery over the channel layer is
at-most-once, so a live event whose seq skips ahead fills the gap from the database, and an idle check
re-reads the database while the run is active, for trailing events whose publish was lost.
After a terminal event the stream sends STREAM_END and closes (1000).
"""

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone

from . import events, fragments
from .models import Run

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
# Seconds without a live event after which the database is checked for events the layer dropped.
IDLE_CHECK_SECONDS = 3.0
REPLAY_CHUNK = 1000


class RunEventsConsumer(AsyncWebsocketConsumer):
    """The JSON form. RunFragmentsConsumer changes only how a batch of messages is encoded."""

    run_id = None
    last_sent = 0
    ended = False
    _idle_task = None

    async def connect(self):
        self.run_id = self.scope["url_route"]["kwargs"]["run_id"]
        self.group = events.group_name(self.run_id)
        self.lock = asyncio.Lock()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse(CLOSE_UNAUTHENTICATED)
        access = await self.check_access(user)
        if access is not None:
            return await self.refuse(access)

        # Join first, then read: whatever is published from now on reaches us, and what was published
        # before is in the database.
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        await self.accept(subprotocol=self.scope.get("runwatch_subprotocol"))
        self.last_seen_at = time.monotonic()
        async with self.lock:
            await self.send_initial(self.after_param())
        if not self.ended:
            self._idle_task = asyncio.create_task(self.idle_loop())

    async def refuse(self, code):
        # Accept first: a close before accept is an HTTP 403 and the client never sees the code.
        await self.accept(subprotocol=self.scope.get("runwatch_subprotocol"))
        await self.close(code=code)

    def after_param(self):
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            return max(0, int(query.get("after", [""])[0]))
        except ValueError:
            return None

    async def disconnect(self, code):
        if self._idle_task:
            self._idle_task.cancel()
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Clients have nothing to say except an optional ping; anything else is ignored, never fatal."""
        try:
            message = json.loads(text_data) if text_data else None
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send(text_data=json.dumps({"type": "pong", "last_seq": self.last_sent}))

    # --- Group messages ----------------------------------------------------------------------------

    async def run_event(self, message):
        """A live event from the group (`run.event`)."""
        event = message.get("event") or {}
        seq = event.get("seq")
        if self.ended or not isinstance(seq, int):
            return
        async with self.lock:
            self.last_seen_at = time.monotonic()
            if seq <= self.last_sent:
                return  # Already sent by the replay or an earlier gap fill.
            if seq == self.last_sent + 1:
                await self.send_messages([event])
            else:
                # We missed some: the database has them, in order, including this one.
                await self.send_from_db(self.last_sent)

    # --- Sending -----------------------------------------------------------------------------------

    async def send_initial(self, after):
        self.last_sent = after or 0
        await self.send_from_db(self.last_sent)
        await self.end_if_finished()

    async def end_if_finished(self):
        """A run that ended before we connected (and whose end the client already has) ends the stream."""
        if self.ended:
            return
        state = await self.load_state()
        if state and state["terminal"] and state["last_seq"] <= self.last_sent:
            await self.end(state["run"].status)

    async def send_from_db(self, after):
        while not self.ended:
            batch = await self.load_events(after)
            if not batch:
                return
            await self.send_messages(batch)
            after = batch[-1]["seq"]
            if len(batch) < REPLAY_CHUNK:
                return

    async def send_messages(self, messages):
        for message in messages:
            await self.send(text_data=json.dumps(message))
        await self.sent(messages)

    async def sent(self, messages):
        self.last_sent = messages[-1]["seq"]
        terminal = next((m for m in messages if events.is_terminal_message(m)), None)
        if terminal is not None:
            await self.end(terminal["data"].get("status"))

    async def end(self, status):
        self.ended = True
        await self.send_stream_end(status)
        await self.close(code=1000)

    async def send_stream_end(self, status):
        end = {
            "type": events.STREAM_END,
            "run": self.run_id,
            "ts": timezone.now().isoformat(),
            "data": {"status": status, "last_seq": self.last_sent},
        }
        await self.send(text_data=json.dumps(end))

    async def idle_loop(self):
        """Re-read the database when nothing arrived for a while and the run is still active."""
        try:
            while not self.ended:
                await asyncio.sleep(IDLE_CHECK_SECONDS / 2)
                if time.monotonic() - self.last_seen_at < IDLE_CHECK_SECONDS:
                    continue
                async with self.lock:
                    self.last_seen_at = time.monotonic()
                    state = await self.load_state()
                    if state is None:
                        return
                    if state["last_seq"] > self.last_sent:
                        await self.send_from_db(self.last_sent)
                    if not self.ended:
                        await self.on_idle(state)
                        await self.end_if_finished()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("Idle check failed for run %s", self.run_id)

    async def on_idle(self, state):
        pass

    # --- Database ----------------------------------------------------------------------------------

    @database_sync_to_async
    def check_access(self, user):
        run = Run.objects.filter(pk=self.run_id).only("owner_id").first()
        if run is None:
            return CLOSE_NOT_FOUND
        if not run.visible_to(user):
            return CLOSE_FORBIDDEN
        return None

    @database_sync_to_async
    def load_events(self, after):
        return events.events_after(self.run_id, after, limit=REPLAY_CHUNK)

    @database_sync_to_async
    def load_state(self):
        run = Run.objects.filter(pk=self.run_id).first()
        if run is None:
            return None
        return {"last_seq": run.last_seq, "terminal": run.is_terminal, "run": run}


class RunFragmentsConsumer(RunEventsConsumer):
    """The HTML form for the run page: each batch becomes hx-swap-oob fragments (runs/fragments.py)."""

    stale = None

    async def send_initial(self, after):
        if after is None:
            # No cursor: the client has nothing, so send the whole current state.
            html, last_seq, terminal, status = await self.render_full_state()
            await self.send(text_data=html)
            self.last_sent = last_seq
            if terminal:
                await self.end(status)
            return
        self.last_sent = after
        await self.send_from_db(after)
        if not self.ended:
            # Tell the page it is up to date even when nothing was missed.
            await self.send(text_data=await self.render_cursor(False))
            await self.end_if_finished()

    async def send_messages(self, messages):
        await self.send(text_data=await self.render(messages))
        await self.sent(messages)

    async def send_stream_end(self, status):
        # The page stops reconnecting and polling once a cursor says "terminal".
        await self.send(text_data=await self.render_cursor(True))

    async def on_idle(self, state):
        stale = fragments.stale_seconds(state["run"]) is not None
        if stale != bool(self.stale):
            self.stale = stale
            await self.send(text_data=await self.render_stale(state["run"]))

    @database_sync_to_async
    def render(self, messages):
        return fragments.render_messages(self.run_id, messages)

    @database_sync_to_async
    def render_full_state(self):
        run = Run.objects.get(pk=self.run_id)
        return fragments.full_state(run), run.last_seq, run.is_terminal, run.status

    @database_sync_to_async
    def render_cursor(self, terminal):
        return fragments.cursor_html(None, self.last_sent, terminal)

    @database_sync_to_async
    def render_stale(self, run):
        return fragments.stale_html(run)
