"""The client's address: one rule for the login throttle, the API's throttles and the logs.

`X-Forwarded-For` is trusted only as far as the configured number of proxies in front of Runwatch
(RUNWATCH_TRUSTED_PROXIES). Each trusted proxy appends the address it received the request from, so with N
proxies the client is the N-th address from the right; anything to its left was written by the client and is
ignored. With no proxy configured (the default) the header is ignored altogether: otherwise any client could
name a fresh address on every request and never be counted twice (a login throttle bypass).
"""

import ipaddress

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings


def client_ip(meta):
    """The client's address from a request's META (or a scope-like dict holding REMOTE_ADDR)."""
    peer = meta.get("REMOTE_ADDR") or ""
    proxies = settings.TRUSTED_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return peer
    addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
    if not addresses:
        return peer
    candidate = addresses[-min(proxies, len(addresses))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer  # not an address: a proxy would not write that, so the client did


def request_ip(request):
    """For django-axes (AXES_CLIENT_IP_CALLABLE); also takes DRF's Request, which proxies META."""
    return client_ip(request.META)


class ClientAddressMiddleware:
    """Puts the client's address in REMOTE_ADDR before anything reads it (DRF's throttles, axes, the logs),
    so every part of the app counts the same client; the proxy's own address stays in RUNWATCH_PEER_ADDR."""

    # Both, so that under daphne no request pays a thread hop for a dict update.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if settings.TRUSTED_PROXIES > 0:
            request.META["RUNWATCH_PEER_ADDR"] = request.META.get("REMOTE_ADDR", "")
            request.META["REMOTE_ADDR"] = client_ip(request.META)
        return self.get_response(request)  # a coroutine under ASGI, returned for the caller to await
