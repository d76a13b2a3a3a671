"""Database work of the WebSocket path, on its own small pool of threads with persistent connections.

channels' database_sync_to_async runs every call of a process on ONE shared thread (asgiref's
thread_sensitive default) and, with CONN_MAX_AGE = 0, opens a new connection for each. Under a crowd of
connects, handshakes then queue behind each other's replays and daphne times them out. Here the calls run on
THREADS threads, each keeping its own connection (so at most THREADS connections per daphne process, reused,
checked before use), and a connect makes one or two calls, not one per query.

A crowd connecting to one run all want the same replay: `shared` lets them wait for one read (and one
encoding) instead of queueing one each behind the others, which is what timed handshakes out in a storm.
"""

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, connections

THREADS = int(os.environ.get("RUNWATCH_WS_DB_THREADS", "8"))

_executor = None
_lock = threading.Lock()
_opened = set()  # the connection wrappers of our threads, to close them at shutdown


def _call(fn, args, kwargs):
    # A connection that broke (the server restarted, a failed transaction) is replaced, not reused.
    if connection.connection is not None and (connection.errors_occurred or not connection.is_usable()):
        connection.close()
    try:
        return fn(*args, **kwargs)
    finally:
        for wrapper in connections.all(initialized_only=True):
            if wrapper not in _opened:
                with _lock:
                    _opened.add(wrapper)


def executor():
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="runwatch-ws-db")
        return _executor


async def run(fn, *args, **kwargs):
    """Run fn(*args, **kwargs) on a database thread of this process and return its result."""
    return await asyncio.get_running_loop().run_in_executor(executor(), _call, fn, args, kwargs)


class _Flight:
    def __init__(self):
        self.started = threading.Event()
        self.task = None


_flights = {}  # (event loop, key) -> the _Flight of a call not started yet (or running)


async def shared(key, fn, *args):
    """Like run(fn, *args), but joins an identical call (same key) that is still waiting for a thread.

    Only a call that has not started is joined: its read begins after this caller's await, so it sees at
    least what a read of the caller's own would (the consumers register for live events before reading,
    and rely on the read starting after that). A call already running is never joined; a new one starts.
    """
    loop = asyncio.get_running_loop()
    slot = (loop, key)
    flight = _flights.get(slot)
    if flight is None or flight.started.is_set():
        flight = _flights[slot] = _Flight()

        def work():
            flight.started.set()
            return fn(*args)

        def done(task):
            if _flights.get(slot) is flight:
                del _flights[slot]
            if not task.cancelled():
                task.exception()  # retrieved even when every caller went away meanwhile

        flight.task = asyncio.ensure_future(run(work))
        flight.task.add_done_callback(done)
    # A caller that goes away (its handshake cancelled) must not cancel the read for the others.
    return await asyncio.shield(flight.task)


def shutdown():
    """Stop the threads; their connections close with them (tests call this before the test database is
    dropped, which PostgreSQL refuses while connections are open)."""
    global _executor
    with _lock:
        pool, _executor = _executor, None
    if pool is not None:
        pool.shutdown(wait=True)
    with _lock:
        wrappers = list(_opened)
        _opened.clear()
    for wrapper in wrappers:
        # Closed from this thread: the owning threads are gone (or idle, when called in a test).
        wrapper.inc_thread_sharing()
        try:
            wrapper.close()
        finally:
            wrapper.dec_thread_sharing()
