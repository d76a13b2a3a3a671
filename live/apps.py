from django.apps import AppConfig


class LiveConfig(AppConfig):
    """The live path: publish-side fan-out, the WebSocket consumers, the socket writer and the fragments the
    run page, htmx polling and the stream all render from an event's own data."""

    name = "live"
