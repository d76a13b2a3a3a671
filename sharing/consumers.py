"""The run stream through a share link: /ws/share/<token>/ (JSON) and /ws/share/<token>/fragments/ (HTML),
the same consumers as /ws/runs/<id>/ with a share link's grant as the watcher (accounts.access).

Unlike the run consumers, which take every live event from the process's hub, each of these sockets also
listens on a channel-layer channel of its own, joined to its link's group before the link is looked up, so a
revoke committed at any moment after that closes it (4404, as a link that never existed). Share watchers are
few, so the extra subscription each is cheap.
"""

from channels.layers import get_channel_layer

from live import consumers, wsdb

from . import throttle
from .models import group_name, token_hash

CLOSE_TOO_MANY = 4429  # over the share links' miss limit (sharing.throttle)


class ShareMixin:
    grant = None
    link_group = None

    async def more_sources(self):
        self.share_layer = get_channel_layer()
        self.share_channel = await self.share_layer.new_channel()
        return [lambda: self.share_layer.receive(self.share_channel)]

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.link_group is not None:
                await self.share_layer.group_discard(self.link_group, self.share_channel)

    def watcher(self):
        return self.grant

    async def connect(self):
        token = self.scope["url_route"]["kwargs"]["token"]
        request = throttle.scope_request(self.scope)
        if await wsdb.run(throttle.ShareMissThrottle().blocked, request):
            return await self.refuse(CLOSE_TOO_MANY)  # before joining any group, for a guesser
        self.link_group = group_name(token_hash(token))
        await self.share_layer.group_add(self.link_group, self.share_channel)
        link, throttled = await wsdb.run(throttle.lookup, request, token)
        if link is None:
            return await self.refuse(CLOSE_TOO_MANY if throttled else consumers.CLOSE_NOT_FOUND)
        if link.is_comparison:  # no stream: a shared comparison's page polls (results.compare_views)
            return await self.refuse(consumers.CLOSE_NOT_FOUND)
        await wsdb.run(link.touch)
        self.grant, self.run_id = link.grant(), link.run_id
        await super().connect()

    async def share_revoked(self, message):
        if self.ended:
            return
        self.ended = True
        consumers.fanout.leave(self)
        await self.close(code=consumers.CLOSE_NOT_FOUND)


class SharedRunEventsConsumer(ShareMixin, consumers.RunEventsConsumer):
    pass


class SharedRunFragmentsConsumer(ShareMixin, consumers.RunFragmentsConsumer):
    pass
