"""Every HTTP route and WebSocket route of the project, read from its URL configuration and ASGI router.

The security sweep walks these, so a route added anywhere (an app's urls.py, the DRF router, the admin, a
third-party include) is tried without anyone listing it. `concrete_url` fills a route's parameters from a
table the test keeps: a parameter the table does not know is an error that names the route, so the author
of a new route has to say whose object it takes.
"""

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.regex_helper import normalize


@dataclass
class Route:
    route: str  # the joined pattern text, as Django prints it ("runs/<int:run_id>/"); regex anchors removed
    levels: list  # the pattern objects from the root resolver down to the URLPattern
    callback: object


class UnknownParameter(AssertionError):
    pass


def http_routes(patterns=None, levels=()):
    for p in get_resolver().url_patterns if patterns is None else patterns:
        here = [*levels, p]
        if isinstance(p, URLResolver):
            yield from http_routes(p.url_patterns, here)
        elif isinstance(p, URLPattern):
            yield Route(_text(here), here, p.callback)


def websocket_routes(application):
    """The URLRouter routes inside the ASGI application's "websocket" branch, through its middleware."""
    app = application.application_mapping["websocket"]
    seen = set()
    while not hasattr(app, "routes"):
        if id(app) in seen:
            raise AssertionError("no URLRouter in the websocket stack")
        seen.add(id(app))
        app = getattr(app, "application", None) or getattr(app, "inner", None) or getattr(app, "app", None)
        if app is None:
            raise AssertionError("cannot see inside the websocket middleware to find its URLRouter")
    return list(_router_routes(app.routes))


def _router_routes(patterns, levels=()):
    for p in patterns:
        here = [*levels, p]
        inner = getattr(getattr(p, "callback", None), "routes", None) or getattr(p, "url_patterns", None)
        if isinstance(p, URLResolver) or inner:
            yield from _router_routes(inner, here)
        else:
            yield Route(_text(here), here, p.callback)


def _text(levels):
    return "".join(str(level.pattern).removeprefix("^").removesuffix("$") for level in levels)


def _forms(level):
    regex = level.pattern.regex.pattern
    # Each level's regex, without its anchor, in the forms Django's reverse() would produce; the richest form
    # (optional groups filled) is used, so optional parameters go through the table too.
    return max(normalize(regex[1:] if regex.startswith("^") else regex), key=lambda form: len(form[1]))


def parameters(route):
    return [name for level in route.levels for name in _forms(level)[1]]


def concrete_url(route, value_for):
    """The route's path with every parameter filled by value_for(route, name); raises UnknownParameter."""
    parts = []
    for level in route.levels:
        fmt, names = _forms(level)
        values = {}
        for name in names:
            value = value_for(route, name)
            converter = getattr(level.pattern, "converters", {}).get(name)
            values[name] = converter.to_url(value) if converter else str(value)
        parts.append(fmt % values)
    return "/" + "".join(parts)
