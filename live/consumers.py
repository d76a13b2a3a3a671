"""The run event stream over WebSocket, in two forms on the same data and the same seqs.

    /ws/runs/<id>/?after=<seq>             JSON: one stored message {"seq","type","ts","run","data"} per frame
    /ws/runs/<id>/fragments/?after=<seq>   HTML: hx-swap-oob fragments for the run page (htmx ws extension)

On connect: register with this process's hub (live/fanout.py), which subscribes to the run's events, then in
one database call check access and read everything after `after`, accept, replay, then stream live.
Registering before reading means an event published meanwhile is held in the backlog and dropped as a
duplicate (seq <= last sent) rather than lost. Live events arrive from the hub as frames made once for all
watchers; a watcher only writes them. A watcher that is behind (a seq skipped, or still replaying) catches
up from the database on its own task, never holding up the others. After a terminal event the stream sends
STREAM_END and closes (1000). A run that does not exist or that the user may not see closes 4404 alike.

The consumer does not use a channel-layer channel of its own: the hub holds one per process. So Redis
carries each event to the process once, and a watcher that goes away (at any moment, even mid-handshake)
only leaves the hub's in-process registry; the hub drops the run's subscription when nobody watches it.
"""

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.utils import await_many_dispatch
from django.utils import timezone

from accounts import access
from config.query_params import whole_number

from runs import events
from . import fanout, fragments, wire, wsdb
from runs.models import Run, events_after

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404  # also for a run the user may not see: the two are not told apart
REPLAY_CHUNK = 1000


class RunEventsConsumer(AsyncWebsocketConsumer):
    """The JSON form. RunFragmentsConsumer changes only how messages become frames."""

    fragments = False
    run_id = None
    last_sent = 0
    ended = False
    busy = True  # replaying or catching up: live batches wait in the backlog
    stale = None

    async def __call__(self, scope, receive, send):
        # AsyncConsumer.__call__ would open a channel-layer channel (a Redis subscription) per watcher;
        # the hub holds one per process instead.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self.socket = wire.socket_for(send)  # daphne's connection, for writing live frames directly
        self.backlog = []
        self._catch_up = None
        try:
            await await_many_dispatch([receive, *await self.more_sources()], self.dispatch)
        except StopConsumer:
            pass
        finally:
            self.ended = True
            fanout.leave(self)  # a plain call: even a cancelled handshake leaves nothing subscribed
            if self._catch_up is not None:
                self._catch_up.cancel()

    async def dispatch(self, message):
        # Only client messages come here, and none touches the database on this thread (all database work
        # goes through live.wsdb), so there is no aclose_old_connections() thread hop per message.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def more_sources(self):
        """Receivers to dispatch besides the client's: none here; a share link's socket (sharing.consumers)
        also listens on a channel-layer channel, for its revocation."""
        return []

    def watcher(self):
        """Who watches (checked by accounts.access once the run is loaded), or None for 4401: the signed-in
        user. sharing.consumers: a share link's grant."""
        self.run_id = self.scope["url_route"]["kwargs"]["run_id"]
        user = self.scope.get("user")
        return user if user is not None and user.is_authenticated else None

    async def connect(self):
        user = self.watcher()
        if user is None:
            return await self.refuse(CLOSE_UNAUTHENTICATED)
        await fanout.join(self)
        after = self.after_param()
        # One read for every watcher of the run connecting with the same cursor meanwhile (a crowd
        # connecting at once); the access check is per watcher, on the run that read loaded.
        run, first = await wsdb.shared((type(self), self.run_id, after), self.load_initial, after)
        if run is None or not access.can_view(user, run):
            fanout.leave(self)
            return await self.refuse(CLOSE_NOT_FOUND)
        await self.accept(subprotocol=self.scope.get("runwatch_subprotocol"))
        frames, self.last_sent, more, end_status = first
        await self.write(frames)
        if more:
            await self.fill_from_db()
        elif end_status is not None:
            await self.end(end_status)
        await self.drain()

    async def websocket_disconnect(self, message):
        # The base class would hop to a thread to close database connections this thread never opened.
        raise StopConsumer()

    async def refuse(self, code):
        # Accept first: a close before accept is an HTTP 403 and the client never sees the code.
        await self.accept(subprotocol=self.scope.get("runwatch_subprotocol"))
        await self.close(code=code)

    def after_param(self):
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            return whole_number(query.get("after", [""])[0])
        except ValueError:
            return None

    async def receive(self, text_data=None, bytes_data=None):
        """Clients have nothing to say except an optional ping; anything else is ignored, never fatal."""
        try:
            message = json.loads(text_data) if text_data else None
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send(text_data=json.dumps({"type": "pong", "last_seq": self.last_sent}))

    # --- From the hub: no database, no encoding -----------------------------------------------------------

    async def live(self, batch, html):
        if self.ended:
            return
        if self.busy:
            self.backlog.append((batch, html))
            return
        if batch.last <= self.last_sent:
            return  # already sent by the replay or a fill
        start = batch.after(self.last_sent)
        if batch.seqs[start] != self.last_sent + 1 or (self.fragments and start):
            # Behind: the database has it all, in order, including this batch.
            self.busy = True
            self._catch_up = asyncio.ensure_future(self.catch_up())
            return
        if self.socket is None or not wire.write(
                self.socket, batch.html_wire(html) if self.fragments else batch.json_wire(start)):
            for frame in html if self.fragments else batch.json_frames()[start:]:
                await self.base_send(frame)
        self.last_sent = batch.last
        if batch.terminal is not None and batch.terminal >= start:
            await self.end(batch.messages[batch.terminal]["data"].get("status"))

    async def idle(self, state):
        if self.ended or self.busy:
            return
        if self.fragments and state["stale"] != bool(self.stale):
            self.stale = state["stale"]
            await self.send(text_data=state["stale_html"])
        if state["terminal"] and state["last_seq"] <= self.last_sent:
            await self.end(state["status"])

    # --- Catching up from the database (this watcher alone) ----------------------------------------------

    async def catch_up(self):
        try:
            await self.fill_from_db()
            await self.drain()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Catching up run %s failed", self.run_id)

    async def fill_from_db(self):
        while not self.ended:
            frames, last, more, end_status = await wsdb.run(self.load_after, self.last_sent)
            await self.write(frames)
            self.last_sent = max(self.last_sent, last)
            if end_status is not None:
                return await self.end(end_status)
            if not more:
                return

    async def drain(self):
        """Send what the hub delivered meanwhile, then take live batches directly again."""
        while self.backlog and not self.ended:
            batch, html = self.backlog.pop(0)
            if batch.last <= self.last_sent:
                continue
            start = batch.after(self.last_sent)
            if batch.seqs[start] != self.last_sent + 1 or (self.fragments and (start or html is None)):
                # A gap, or fragments for only part of a batch: read them (and the rest) from the database.
                self.backlog = [(b, h) for b, h in self.backlog if b.last > batch.last]
                await self.fill_from_db()
                continue
            self.busy = False
            await self.live(batch, html)
            self.busy = True
        self.backlog = []
        self.busy = False

    async def write(self, texts):
        if not texts:
            return
        if self.socket is not None and isinstance(texts, wire.Frames) and wire.write(self.socket, texts.wire()):
            return
        for text in texts:
            await self.send(text_data=text)

    async def end(self, status):
        if self.ended:
            return
        self.ended = True
        fanout.leave(self)
        await self.send(text_data=self.stream_end(status))
        await self.close(code=1000)

    def stream_end(self, status):
        return json.dumps({
            "type": events.STREAM_END,
            "run": self.run_id,
            "ts": timezone.now().isoformat(),
            "data": {"status": status, "last_seq": self.last_sent},
        })

    # --- Database (on a live.wsdb thread) ----------------------------------------------------------------

    def load_initial(self, after):
        """The run (for the access check, made by the caller before anything is sent) and the first replay
        chunk, in one call: (run or None, (frames, last seq, more?, end status)). Shared by the watchers
        that connect with the same cursor at once (wsdb.shared), so it depends on nothing but its key."""
        run = Run.objects.filter(pk=self.run_id).first()
        if run is None:
            return None, None
        return run, self.load_after(after or 0, run, initial=True)

    def load_after(self, after, run=None, initial=False):
        run = run or Run.objects.filter(pk=self.run_id).first()
        messages = events_after(self.run_id, after, limit=REPLAY_CHUNK)
        last = messages[-1]["seq"] if messages else after
        more = len(messages) == REPLAY_CHUNK
        terminal = next((m for m in messages if events.is_terminal_message(m)), None)
        status = terminal["data"].get("status") if terminal is not None else None
        # A run that ended before this read (and whose end the client has) ends the stream too.
        if terminal is None and run is not None and run.is_terminal and not more and run.last_seq <= last:
            status = run.status
        return wire.Frames(self.frames(messages, after, initial)), last, more, status

    def frames(self, messages, after, initial):
        return [events.to_json(m) for m in messages]


class RunFragmentsConsumer(RunEventsConsumer):
    """The HTML form for the run page: each batch becomes hx-swap-oob fragments (live/fragments.py)."""

    fragments = True

    def load_initial(self, after):
        if after is not None:
            return super().load_initial(after)
        run = Run.objects.filter(pk=self.run_id).first()
        if run is None:
            return None, None
        # No cursor: the client has nothing, so send the whole current state.
        state = wire.Frames([fragments.full_state(run)])
        return run, (state, run.last_seq, False, run.status if run.is_terminal else None)

    def frames(self, messages, after, initial):
        if messages:
            return [fragments.render_messages(self.run_id, messages)]
        # Tell the page it is up to date even when nothing was missed.
        return [fragments.cursor_html(None, after, False)] if initial else []

    def stream_end(self, status):
        # The page stops reconnecting and polling once a cursor says "terminal".
        return fragments.cursor_html(None, self.last_sent, True)
