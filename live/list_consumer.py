"""The runs list's socket: /ws/runs/list/?ids=<active rows of the page>&after=<newest run id it shows>.

Joins its user's list group in the process's hub (live/listfeed.py explains the feed and the frames), then
reads and sends the current rows, then writes what the feed hands it. Frames the feed delivered before the
first one was sent wait in a backlog; a row's seq lets the page ignore any older than what it holds. Closes
4401 for an anonymous user (like the run stream) and 4400 for ids that are not run ids.
"""

from urllib.parse import parse_qs

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.utils import await_many_dispatch

from config.query_params import whole_number

from . import fanout, listfeed, wire, wsdb
from runs import listing

CLOSE_UNAUTHENTICATED = 4401
CLOSE_BAD_REQUEST = 4400


class RunListConsumer(AsyncWebsocketConsumer):
    """One list page's socket. Like the run stream it opens no channel-layer channel of its own."""

    run_id = None
    fragments = False
    ready = False
    ended = False

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self.socket = wire.socket_for(send)
        self.backlog = []
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            self.ended = True
            fanout.leave(self)

    async def dispatch(self, message):
        # Client messages only; none touches the database on this thread (see RunEventsConsumer.dispatch).
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is not None:
            await handler(message)

    async def websocket_disconnect(self, message):
        raise StopConsumer()

    async def receive(self, text_data=None, bytes_data=None):
        pass  # nothing to say; never fatal

    async def refuse(self, code):
        await self.accept()
        await self.close(code=code)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse(CLOSE_UNAUTHENTICATED)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            ids = listing.parse_ids((query.get("ids") or [""])[0])
            after = whole_number(query["after"][0]) if query.get("after", [""])[0] else None
        except ValueError:
            return await self.refuse(CLOSE_BAD_REQUEST)
        self.feed_group = listfeed.group_for(user)
        feed = await fanout.join(self)  # join first, then read: a change in between is in the backlog
        first, active = await wsdb.run(listfeed.initial_frame, user, ids, after)
        feed.track(active)
        await self.accept(subprotocol=self.scope.get("runwatch_subprotocol"))
        await self.base_send(first)
        self.ready = True
        for frame in self.backlog:
            await self.base_send(frame)
        self.backlog = []

    async def live(self, frame, framed=None):
        """From the feed: the same frame for every watcher of the group (and its bytes, framed once for the
        socket: live/wire.py); the watcher only writes it."""
        if self.ended:
            return
        if not self.ready:
            self.backlog.append(frame)
            return
        if framed is None or self.socket is None or not wire.write(self.socket, framed):
            await self.base_send(frame)
