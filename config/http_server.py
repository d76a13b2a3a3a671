"""Two adjustments to daphne, applied when config.asgi is imported (daphne imports it at start).

1. Twisted's http.Request, which daphne's WebRequest extends, parses every multipart/form-data POST body itself
before daphne hands the request to Django, and when that parse fails it answers 400 with an empty body and
closes the connection. Django never sees the request, so the client learns nothing. Daphne never uses what
Twisted parsed (Django and DRF parse the body again), so turning Twisted's parsing off costs nothing and
lets a malformed upload reach DRF, which answers a JSON error saying what is wrong.

2. After STREAM_END the server closes a run's stream. autobahn (under daphne) then waits for the client's
close answer for only 1 s and, past that, aborts the TCP connection (RST): whatever daphne had not yet
written, and whatever the client had not yet read, is thrown away, so a slow reader of a long replay lost its
last events and STREAM_END, or even the handshake answer (found by tests/test_load.py: a few of 300 watchers
of a finished run saw the connection closed before the HTTP status line). The client gets
CLOSE_HANDSHAKE_SECONDS instead; a dead one holds its socket that long at most.
"""

from daphne.http_protocol import WebRequest
from daphne.ws_protocol import WebSocketFactory

CLOSE_HANDSHAKE_SECONDS = 30

_original_init = WebRequest.__init__


def _init_without_form_parsing(self, *args, **kwargs):
    kwargs.setdefault("parsePOSTFormSubmission", False)  # Twisted's own switch for exactly this
    _original_init(self, *args, **kwargs)


if not getattr(WebRequest, "_runwatch_form_parsing_off", False):
    WebRequest.__init__ = _init_without_form_parsing
    WebRequest._runwatch_form_parsing_off = True


_original_factory_init = WebSocketFactory.__init__


def _init_with_patient_close(self, *args, **kwargs):
    _original_factory_init(self, *args, **kwargs)
    # daphne's own setProtocolOptions call leaves this option alone.
    self.setProtocolOptions(closeHandshakeTimeout=CLOSE_HANDSHAKE_SECONDS)


if not getattr(WebSocketFactory, "_runwatch_patient_close", False):
    WebSocketFactory.__init__ = _init_with_patient_close
    WebSocketFactory._runwatch_patient_close = True
