"""live.wsdb.shared: calls with the same key that wait for a database thread together run once."""

import asyncio
import threading

from live import wsdb


def occupy_every_thread():
    """Block every database thread until the returned event is set, so later calls wait in the queue."""
    release, busy = threading.Event(), threading.Semaphore(0)

    def hold():
        busy.release()
        release.wait(timeout=60)

    futures = [wsdb.executor().submit(hold) for _ in range(wsdb.THREADS)]
    for _ in futures:
        assert busy.acquire(timeout=60)
    return release


def test_it_runs_waiting_calls_with_the_same_key_once():
    calls = []

    def read(value):
        calls.append(value)
        return [value]

    async def scenario():
        release = occupy_every_thread()
        try:
            crowd = [asyncio.ensure_future(wsdb.shared(("run", 1), read, "a")) for _ in range(20)]
            other = asyncio.ensure_future(wsdb.shared(("run", 2), read, "b"))
            await asyncio.sleep(0)
        finally:
            release.set()
        results = await asyncio.gather(*crowd, other)
        assert results == [["a"]] * 20 + [["b"]]
        assert sorted(calls) == ["a", "b"]  # one read per key, not one per caller

    asyncio.run(scenario())


def test_it_never_joins_a_call_that_already_started():
    started, go, calls = threading.Event(), threading.Event(), []

    def read():
        calls.append(1)
        started.set()
        go.wait(timeout=60)
        return len(calls)

    async def scenario():
        first = asyncio.ensure_future(wsdb.shared("key", read))
        assert await asyncio.to_thread(started.wait, 60)
        # The first read may have begun before this caller registered for live events: it needs its own.
        second = asyncio.ensure_future(wsdb.shared("key", read))
        await asyncio.sleep(0)
        go.set()
        await asyncio.gather(first, second)
        assert len(calls) == 2

    asyncio.run(scenario())


def test_it_keeps_the_call_for_the_others_when_one_caller_goes_away():
    def read():
        return "rows"

    async def scenario():
        release = occupy_every_thread()
        try:
            leaving = asyncio.ensure_future(wsdb.shared("key", read))
            staying = asyncio.ensure_future(wsdb.shared("key", read))
            await asyncio.sleep(0)
            leaving.cancel()  # a handshake cancelled mid-connect
            await asyncio.sleep(0)
        finally:
            release.set()
        assert await staying == "rows"

    asyncio.run(scenario())
