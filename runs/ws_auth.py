"""Token authentication for WebSockets, for API clients that have no session cookie.

Browsers cannot set headers on a WebSocket, so the DRF token travels in one of two places:

    ws://host/ws/runs/42/?token=<key>                       query string (simple; may end up in access logs)
    Sec-WebSocket-Protocol: token.<key>[, runwatch.v1]      subprotocol (kept out of URLs and logs)

With the subprotocol form the server must echo one offered protocol back or browsers drop the connection.
It echoes a plain protocol the client also offered ("runwatch.v1") if any, so the key is not sent back,
and `token.<key>` otherwise. The choice goes in scope["runwatch_subprotocol"]; consumers accept with it.

A session user (AuthMiddlewareStack, which runs first) wins; a token is looked at only for an anonymous
scope. A missing or bad token leaves the user anonymous, and the consumer closes with 4401.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from rest_framework.authtoken.models import Token

TOKEN_PREFIX = "token."


def token_from_scope(scope):
    """(key or None, the subprotocol to accept with or None)."""
    protocols = list(scope.get("subprotocols") or [])
    offered = next((p[len(TOKEN_PREFIX):] for p in protocols if p.startswith(TOKEN_PREFIX)), None)
    plain = next((p for p in protocols if not p.startswith(TOKEN_PREFIX)), None)
    subprotocol = plain or (TOKEN_PREFIX + offered if offered is not None else None)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    key = offered or (query.get("token") or [None])[0]
    return key or None, subprotocol


@database_sync_to_async
def user_for_token(key):
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AnonymousUser()
    return token.user


class TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            key, subprotocol = token_from_scope(scope)
            scope = dict(scope, runwatch_subprotocol=subprotocol)
            user = scope.get("user")
            if key and (user is None or not user.is_authenticated):
                scope["user"] = await user_for_token(key)
        return await self.inner(scope, receive, send)
