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
autobahn's and twisted's TCP classes. Anything else (another ASGI server, TLS, compression negotiated, a
connection not open) gets `None` from `socket_for` or `False` from `write`, and the caller sends through ASGI
as before. The daphne process logs once which way it writes, so a change in those libraries shows up.
"""

import logging
from functools import partial

from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol

log = logging.getLogger(__name__)

try:  # twisted's plain TCP connection: the only transport whose socket is written directly
    from twisted.internet.tcp import Connection as _TcpConnection
except ImportError:  # pragma: no cover - daphne depends on twisted
    _TcpConnection = None

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
    protocol = send.args[0] if isinstance(send, partial) and len(send.args) == 1 else None
    if isinstance(protocol, WebSocketProtocol) and getattr(send.func, "__name__", None) == "handle_reply":
        _announce("direct", "Live frames are written straight to daphne's WebSocket connections")
        return protocol
    _announce("asgi", "Live frames go through ASGI send (this server is not daphne as live.wire knows it)")
    return None


def write(protocol, data):
    """Write framed bytes to an open connection. False (nothing written) when the caller must use ASGI."""
    if protocol.state != WebSocketProtocol.STATE_OPEN or protocol._perMessageCompress is not None:
        return False
    if protocol.send_queue:  # autobahn's own queue (chopped or synchronous sends) comes first
        protocol.sendData(data)
        return True
    transport = protocol.transport
    if _TcpConnection is not None and isinstance(transport, _TcpConnection) and _idle(transport):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int):  # otherwise the connection is lost: the buffered write below finds that out
            if sent == len(data):
                return True
            data = data[sent:]
    transport.write(data)
    return True


def _idle(transport):
    # Nothing of an earlier write still waits in twisted's buffers (abstract.FileDescriptor's attributes).
    return (transport.connected and not transport.disconnecting and not transport._writeDisconnected
            and not transport._tempDataBuffer and transport.offset >= len(transport.dataBuffer))


def _announce(way, message):
    if way not in _announced:
        _announced.add(way)
        log.info(message)
