"""The latency floor: a bare relay of one Redis pub/sub channel to every connected `websockets` client.
No Django, no database, no channel layer: what any Python service needs at least to do what Runwatch's live
stream does. bench/latency.py starts it as its own process, as daphne is.

    python bench/floor_relay.py --port 8691 --redis redis://127.0.0.1:6379/10 --channel bench-floor
"""

import argparse
import asyncio

import redis.asyncio as aioredis
from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def handler(connection):
    CLIENTS.add(connection)
    try:
        await connection.wait_closed()
    finally:
        CLIENTS.discard(connection)


async def relay(url, channel):
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    async for message in pubsub.listen():
        if message["type"] == "message":
            # One text frame, written to every client, as Runwatch's hub does.
            broadcast(CLIENTS, message["data"].decode())


async def main(args):
    # No compression: daphne does not negotiate permessage-deflate, so the floor must not either.
    async with serve(handler, "127.0.0.1", args.port, compression=None, max_size=None):
        print("ready", flush=True)
        await relay(args.redis, args.channel)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--channel", required=True)
    asyncio.run(main(parser.parse_args()))
