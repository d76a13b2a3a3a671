"""Every place Runwatch relies on a library past its documented API, in one module, each for a measured gain.

Each function below names the library version it was checked against and why the public API is not enough.
CHECKED holds those versions; tests/test_library_internals.py fails the suite when an installed version leaves
its series, and exercises each function against the real library objects, so an upgrade that renames or
reshapes what these rely on fails there, not in production. On an upgrade: read the library's change log for
the names used here, run that test, then move CHECKED on.

The imports of twisted and autobahn are deferred (_TCP, _autobahn_protocol): runs is imported by the
worker, which never writes to a WebSocket and should not pay their start-up (about 35 ms).
"""

import functools
from functools import partial

from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor
from django.db.backends.utils import CursorWrapper

# Distribution name -> the minor series the functions below were checked against.
CHECKED = {
    "Twisted": "26.10",
    "autobahn": "26.11",
    "daphne": "4.2",
    "channels_redis": "4.3",
    "Django": "5.2",
    "psycopg": "3.3",
}


_TCP = None  # twisted.internet.tcp.Connection, once a write has looked it up


def _twisted_tcp():
    global _TCP
    from twisted.internet import tcp
    _TCP = tcp.Connection
    return _TCP


@functools.cache
def _autobahn_protocol():
    from autobahn.websocket.protocol import WebSocketProtocol
    return WebSocketProtocol


# --- daphne 4.2.3 (live/wire.py) ---

def daphne_protocol(send):
    """The autobahn WebSocket protocol behind an ASGI `send`, or None.

    daphne 4.2.3 (server.py, create_application) hands each application `partial(self.handle_reply, protocol)`.
    ASGI has no way to reach the connection; writing a batch framed once straight to each socket took the
    transport at 500 watchers from 1.9x the floor to about 1x (docs/decisions/0003)."""
    protocol = send.args[0] if isinstance(send, partial) and len(send.args) == 1 else None
    if isinstance(protocol, _autobahn_protocol()) and getattr(send.func, "__name__", None) == "handle_reply":
        return protocol
    return None


# --- autobahn 26.11.1 (live/wire.py) ---

def extensions_in_use(protocol):
    """Did the handshake negotiate an extension (permessage-deflate: autobahn 26.11.1 appends the protocol's
    _perMessageCompress to this list, its only extension)? Then frames are not the same bytes for every
    connection. autobahn documents no attribute for it; this one at least is not underscored."""
    return bool(protocol.websocket_extensions_in_use)


def autobahn_queued(protocol):
    """Bytes waiting in autobahn's own queue (chopped or synchronous sends, autobahn 26.11.1 `send_queue`), which
    must go out before anything written to the transport. sendData (public) appends behind them."""
    return bool(protocol.send_queue)


# --- twisted 26.10.0 (live/wire.py) ---

def write_now(transport, data):
    """Write `data` straight to a twisted TCP connection's socket when nothing waits in its buffers; return what
    was not written (b"" for all of it), which the caller hands to transport.write (public) behind it.

    transport.write buffers the bytes and registers the socket with the event loop for a later turn: an epoll_ctl
    each way, per frame per socket, 13% of daphne's loop at 500 watchers (docs/decisions/0003). Twisted's public
    interface has no "write now"; this uses abstract.FileDescriptor's buffer attributes and
    tcp.Connection.writeSomeData as of twisted 26.10.0. Anything but a plain TCP connection (TLS) is left to
    transport.write whole. Called per watcher per batch, so the check is inline."""
    if not (isinstance(transport, _TCP or _twisted_tcp()) and transport.connected and not transport.disconnecting
            and not transport._writeDisconnected and not transport._tempDataBuffer
            and transport.offset >= len(transport.dataBuffer)):
        return data
    sent = transport.writeSomeData(data)
    if not isinstance(sent, int):  # the connection is lost: the buffered write finds that out
        return data
    return b"" if sent == len(data) else data[sent:]


# --- channels_redis 4.3.0 (runs/publisher.py) ---

def group_channel(prefix, group):
    """The Redis pub/sub channel of a group, as RedisPubSubLoopLayer._get_group_channel_name names it
    (channels_redis 4.3.0). The worker publishes with redis-py's blocking client, not the layer's asyncio one
    (a third of what reporting cost the worker's CPU on short fits, docs/decisions/0004), and the layer has no
    public way to name the channel outside a running loop."""
    return f"{prefix}__group__{group}"


# --- Django 5.2 and psycopg 3.3 (runs/rows.py) ---

def copy(cursor, statement):
    """psycopg's COPY on the raw cursor under a Django cursor (CursorWrapper.cursor, Django 5.2). Django has no
    COPY API; COPY took a behind writer from 24,500 to 35,600 log lines/s (docs/decisions/0004)."""
    return cursor.cursor.copy(statement)


def prepared_cursor(connection):
    """A Django cursor whose statements PostgreSQL parses and plans once per connection: psycopg's server-side
    binding cursor (public psycopg), prepared at its first execution (prepare_threshold, public psycopg).

    Django 5.2's documented OPTIONS["server_side_binding"] switches every cursor of the connection, and so every
    ORM query, to server-side binding, which the ORM does not generate prepareable SQL for (Django's own note,
    ticket #20516). Only this cursor may prepare: Django's other cursors are psycopg ClientCursors, which never
    do whatever prepare_threshold says. The gain: planning was 0.30 of the write's 0.65 ms (docs/decisions/0007).

    Django 5.2 internals: what connection.cursor() does before creating its cursor (BaseDatabaseWrapper
    close_if_health_check_failed, ensure_connection, validate_thread_sharing, queries_logged, make_cursor), and
    the debug wrapper's debug_sql."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    raw.prepare_threshold = 0  # prepare at the first execution; psycopg keeps up to prepared_max per connection
    cursor = ServerBindingCursor(raw)
    return PreparedDebugWrapper(cursor, connection) if connection.queries_logged else connection.make_cursor(cursor)


class PreparedDebugWrapper(CursorDebugWrapper):
    """DEBUG's query log of a prepared_cursor: the statement as written, with its parameters. Django reads a
    statement back from psycopg's client-side binding, which a server-bound cursor does not keep."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)  # past the debug wrappers' own logging
