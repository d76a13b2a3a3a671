"""The share links' rate limit: DRF's cache-based throttle (the API's own, on the shared Redis cache), counting
*misses* per client address. A client that sent RUNWATCH_SHARE_MISS_RATE (default 30/min) unknown, revoked or
expired tokens is refused with 429 on every share URL, a right token included, so the limit is no oracle
either. Brute force is hopeless anyway (256-bit tokens); this keeps it from being cheap to try.
"""

from types import SimpleNamespace

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from config.client_ip import client_ip

from .models import ShareLink


class ShareMissThrottle(SimpleRateThrottle):
    scope = "share_miss"

    def get_rate(self):
        return settings.RUNWATCH.get("SHARE_MISS_RATE", "30/min")

    def get_cache_key(self, request, view=None):
        # REMOTE_ADDR is the client's already (ClientAddressMiddleware; scope_request for a socket).
        return self.cache_format % {"scope": self.scope, "ident": request.META.get("REMOTE_ADDR", "")}

    def _history(self, request):
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return self.history

    def blocked(self, request):
        """Whether this client is over its misses; it is not counted."""
        return len(self._history(request)) >= self.num_requests

    def miss(self, request):
        self._history(request)
        self.throttle_success()  # records the miss


def scope_request(scope):
    """A request-like object for a WebSocket scope, with the client's address as the HTTP side sees it."""
    meta = {"REMOTE_ADDR": (scope.get("client") or ("",))[0]}
    for name, value in scope.get("headers") or []:
        if name == b"x-forwarded-for":
            meta["HTTP_X_FORWARDED_FOR"] = value.decode("latin-1")
    return SimpleNamespace(META={"REMOTE_ADDR": client_ip(meta)})


def lookup(request, token):
    """(link or None, throttled?): the share link for `token` unless this client is over its misses."""
    throttle = ShareMissThrottle()
    if throttle.blocked(request):
        return None, True
    link = ShareLink.find(token)
    if link is None:
        throttle.miss(request)
    return link, False
