"""Writing the same frames to many WebSocket connections, the way a broadcast server does.

Through ASGI, every frame to every watcher is a `send` call: daphne's handle_reply, autobahn's sendMessage
(which frames the payload and formats a debug-log line for it), then twisted's write, which buffers the bytes
and registers the socket with the event loop for one write on a later loop turn (a selector change each way).
At 500 watchers that per-watcher path was most of daphne's event loop (py-spy, in
docs/decisions/0003-frames-once-written-to-the-socket.md).

A server-to-client WebSocket frame is not masked, so its bytes are the same for every connection. The hub
frames a batch once (autobahn's PreparedMessage, the library's own broadcast helper) into one byte string,
and each watcher writes it to its socket in one call: straight to the socket when nothing is waiting in
twisted's buffer (what asyncio's transports do), otherwise appended to that buffer, so bytes never overtake
each other. Order with frames sent through ASGI (replay, STREAM_END) holds because daphne's send path is
synchronous down to the same transport.

This relies on daphne handing each application `partial(server.handle_reply, protocol)` as `send`, and on
autobahn's and twisted's TCP classes, through runs/library_internals.py (version-pinned, with its test). Anything
else (another ASGI server, TLS, compression negotiated, a connection not open) gets `None` from `socket_for`
or `False` from `write`, and the caller sends through ASGI as before. The daphne process logs once which way
it writes, so a change in those libraries shows up.
"""

import logging

from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol

from runs import library_internals

log = logging.getLogger(__name__)

_announced = set()


def frame(texts):
    """The WebSocket text frames of `texts`, back to back, as one byte string written to every watcher."""
    return b"".join(PreparedMessage(text.encode(), False, False, True).payloadHybi for text in texts)


class Frames(list):
    """Texts to send in this order, framed once however many watchers send them (a crowd that connects at
    once shares one replay read: live/wsdb.shared)."""

    _wire = None

    def wire(self):
        if self._wire is None:
            self._wire = frame(self)
        return self._wire


def socket_for(send):
    """The daphne WebSocket protocol behind an ASGI `send`, or None where frames must go through ASGI."""
    protocol = library_internals.daphne_protocol(send)
    if protocol is not None:
        _announce("direct", "Live frames are written straight to daphne's WebSocket connections")
        return protocol
    _announce("asgi", "Live frames go through ASGI send (this server is not daphne as live.wire knows it)")
    return None


def write(protocol, data):
    """Write framed bytes to an open connection. False (nothing written) when the caller must use ASGI."""
    if protocol.state != WebSocketProtocol.STATE_OPEN or library_internals.extensions_in_use(protocol):
        return False
    if library_internals.autobahn_queued(protocol):  # autobahn's own queue comes first
        protocol.sendData(data)
        return True
    rest = library_internals.write_now(protocol.transport, data)
    if rest:
        protocol.transport.write(rest)
    return True


def _announce(way, message):
    if way not in _announced:
        _announced.add(way)
        log.info(message)
