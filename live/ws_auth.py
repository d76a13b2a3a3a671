"""Token authentication for WebSockets, for API clients that have no session cookie.

Browsers cannot set headers on a WebSocket, so the DRF token travels in one of two places:

    ws://host/ws/runs/42/?token=<key>                       query string (simple; may end up in access logs)
    Sec-WebSocket-Protocol: token.<key>[, runwatch.v1]      subprotocol (kept out of URLs and logs)

With the subprotocol form the server must echo one offered protocol back or browsers drop the connection.
It echoes a plain protocol the client also offered ("runwatch.v1") if any, so the key is not sent back,
and `token.<key>` otherwise. The choice goes in scope["runwatch_subprotocol"]; consumers accept with it.

WebsocketAuthMiddleware finds the user of a WebSocket from the session cookie or, for an anonymous one, the
token, in ONE call on a live.wsdb thread (channels' AuthMiddlewareStack makes two calls on the process's one
shared database thread, where every connect queues behind every other). A missing or bad session or token
leaves the user anonymous, and the consumer closes with 4401.
"""

from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from rest_framework.authtoken.models import Token

from . import wsdb

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


def session_key_from_scope(scope):
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            return parse_cookie(value.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
    return None


def resolve_user(session_key, token_key):
    """The session's user if it has a valid one (Django's own checks, session hash included), else the
    token's active user, else anonymous."""
    user = AnonymousUser()
    if session_key:
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user = auth.get_user(SimpleNamespace(session=store))
    if not user.is_authenticated and token_key:
        token = Token.objects.select_related("user").filter(key=token_key).first()
        if token is not None and token.user.is_active:
            user = token.user
    return user


class WebsocketAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            key, subprotocol = token_from_scope(scope)
            session_key = session_key_from_scope(scope)
            user = AnonymousUser()
            if session_key or key:
                user = await wsdb.run(resolve_user, session_key, key)
            scope = dict(scope, runwatch_subprotocol=subprotocol, user=user)
        return await self.inner(scope, receive, send)
