"""One adjustment to daphne's HTTP layer, applied when config.asgi is imported (daphne imports it at start).

Twisted's http.Request, which daphne's WebRequest extends, parses every multipart/form-data POST body itself
before daphne hands the request to Django, and when that parse fails it answers 400 with an empty body and
closes the connection. Django never sees the request, so the client learns nothing. Daphne never uses what
Twisted parsed (Django and DRF parse the body again), so turning Twisted's parsing off costs nothing and
lets a malformed upload reach DRF, which answers a JSON error saying what is wrong.
"""

from daphne.http_protocol import WebRequest

_original_init = WebRequest.__init__


def _init_without_form_parsing(self, *args, **kwargs):
    kwargs.setdefault("parsePOSTFormSubmission", False)  # Twisted's own switch for exactly this
    _original_init(self, *args, **kwargs)


if not getattr(WebRequest, "_runwatch_form_parsing_off", False):
    WebRequest.__init__ = _init_without_form_parsing
    WebRequest._runwatch_form_parsing_off = True
