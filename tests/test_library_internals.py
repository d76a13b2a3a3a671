"""runs/library_internals.py against the real libraries: the installed versions are the ones it was checked
against, and each internal it relies on still does what it says, so an upgrade that moves one fails here."""

import asyncio
import socket
from functools import partial
from importlib.metadata import version

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from channels_redis.pubsub import RedisPubSubChannelLayer
from daphne.server import Server
from django.db import connection
from twisted.internet import tcp
from twisted.internet.testing import MemoryReactor, StringTransport

from runs import library_internals, rows

HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


@pytest.mark.parametrize("name", sorted(library_internals.CHECKED))
def test_it_runs_the_library_versions_the_internals_were_checked_against(name):
    series = library_internals.CHECKED[name]
    assert version(name).startswith(series + "."), (
        f"{name} {version(name)} is installed; runs/library_internals.py was checked against {series}.x. "
        "Check each function there that names it, then move CHECKED on.")


def test_it_names_a_group_channel_as_the_pubsub_layer_does():
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:1"], prefix="rw-test")

    async def layer_name():  # the layer builds its per-loop layer inside a running loop
        return layer._get_layer()._get_group_channel_name("run-7")

    assert asyncio.run(layer_name()) == library_internals.group_channel("rw-test", "run-7")
    message = {"type": "run.events", "seq": 3}
    assert layer.deserialize(layer.serialize(message)) == message  # the public serializer the publisher uses


def test_it_finds_the_protocol_behind_daphnes_send():
    server = Server(application=None, endpoints=["tcp:port=0"])  # built, never run
    protocol = WebSocketServerProtocol()
    assert library_internals.daphne_protocol(partial(server.handle_reply, protocol)) is protocol
    assert library_internals.daphne_protocol(partial(server.handle_reply, object())) is None
    assert library_internals.daphne_protocol(lambda message: None) is None
    # daphne still hands each application exactly that send
    source = Server.create_application.__code__.co_names
    assert "partial" in source and "handle_reply" in source


def handshake(offer_deflate):
    factory = WebSocketServerFactory("ws://localhost")
    if offer_deflate:
        factory.setProtocolOptions(perMessageCompressionAccept=lambda offers: next(
            (PerMessageDeflateOfferAccept(o) for o in offers if isinstance(o, PerMessageDeflateOffer)), None))
    factory.protocol = WebSocketServerProtocol
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(HANDSHAKE + (b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if offer_deflate
                                       else b"") + b"\r\n")
    assert protocol.state == protocol.STATE_OPEN
    return protocol


def test_it_sees_compression_negotiated():
    plain, deflate = handshake(False), handshake(True)
    assert not library_internals.extensions_in_use(plain)
    assert library_internals.extensions_in_use(deflate)
    assert deflate._perMessageCompress is not None  # what the list stands for in autobahn


def test_it_sees_autobahns_own_queue():
    protocol = handshake(False)
    assert not library_internals.autobahn_queued(protocol)
    protocol.sendData(b"first", sync=True)  # written at once; the next one waits for a later loop turn
    protocol.sendData(b"second", sync=True)
    assert library_internals.autobahn_queued(protocol)


def test_it_writes_to_an_idle_tcp_socket_and_not_past_buffered_bytes():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport = tcp.Connection(ours, None, MemoryReactor())
    transport.connected = True
    try:
        assert library_internals.write_now(transport, b"first") == b""
        assert theirs.recv(100) == b"first"
        transport.write(b"waiting")  # buffered in twisted until the loop's next turn
        assert library_internals.write_now(transport, b"second") == b"second"
        assert library_internals.write_now(StringTransport(), b"tls") == b"tls"  # not a plain TCP connection
    finally:
        ours.close()
        theirs.close()


@pytest.mark.django_db
def test_it_prepares_only_its_own_cursor_and_copies_through_django():
    if connection.vendor != "postgresql":
        # SQLite (a fresh clone's default): the reporter never takes these paths, which are PostgreSQL's.
        assert not rows.one_statement(1)
        return
    with library_internals.prepared_cursor(connection) as cursor:
        cursor.execute("SELECT %s::int + 1", [41])
        assert cursor.fetchone() == (42,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["SELECT $1::int%"])
        assert cursor.fetchone() == (1,)
        cursor.execute("CREATE TEMPORARY TABLE copied (n int)")
        with library_internals.copy(cursor, "COPY copied (n) FROM STDIN") as copy:
            copy.write_row((5,))
        cursor.execute("SELECT n FROM copied")
        assert cursor.fetchall() == [(5,)]
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["SELECT n FROM%"])
        assert cursor.fetchone() == (0,)  # Django's own cursors bind on the client and never prepare
