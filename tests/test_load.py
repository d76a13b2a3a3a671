"""Load: 10 concurrent runs on 10 workers, 300 WebSocket watchers spread over 2 daphne processes, in rounds.

Every watcher connects (none refused), receives exactly seq 1..N of its run and STREAM_END; daphne's and the
workers' memory stays flat from round to round; and once the watchers are gone no Redis subscription is left.
bench/load.py runs this same scenario longer (RUNWATCH_LOAD_ROUNDS, _RUNS, _WATCHERS) and prints the figures.
"""

import asyncio
import json
import os
import time

import pytest
from django.conf import settings
from websockets.asyncio.client import connect

from accounts.models import Quota
from runs import events
from runs.control import launch_run
from runs.models import Run
from tests.cluster import Cluster, rss_mb, token_for, ws_url
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = int(os.environ.get("RUNWATCH_LOAD_ROUNDS", "2"))
RUNS = int(os.environ.get("RUNWATCH_LOAD_RUNS", "10"))
WATCHERS = int(os.environ.get("RUNWATCH_LOAD_WATCHERS", "300"))

# About 80 events in a few seconds of millisecond fits: 10 of these on 2 cores, while 300 sockets are fed.
LOAD_SPEC = {
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 400, "n_features": 8, "seed": 3},
    "task": "classification",
    "models": [{"estimator": "RandomForestClassifier", "params": {"n_estimators": [1], "max_depth": [4, 8, 12]}}],
    "cv": {"kind": "stratified_kfold", "folds": 10, "shuffle": True, "seed": 3},
    "metric": "accuracy",
}


# Handshakes in flight at once, over both daphne processes. People do not all press Enter in the same
# millisecond; and daphne refuses a handshake not accepted within 5 s (its websocket_connect_timeout), which
# 300 at once, on two cores shared with ten busy work horses, would exceed.
IN_FLIGHT = 20


class Seen:
    def __init__(self, run_id, server):
        self.run_id, self.server = run_id, server
        self.connected, self.seqs, self.end, self.error, self.handshake = False, [], None, None, None


async def watch(seen, token, in_flight):
    try:
        async with in_flight:
            started = time.monotonic()
            ws = await connect(ws_url(seen.server, seen.run_id, token=token, after=0), open_timeout=60,
                               max_queue=None)
            seen.handshake = time.monotonic() - started
        seen.connected = True
        async with ws:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "STREAM_END":
                    seen.end = message
                    return
                seen.seqs.append(message["seq"])
    except Exception as e:  # refused, dropped or timed out: all count against the promise
        seen.error = f"{type(e).__name__}: {e} (cause: {e.__cause__!r})"


def one_round(cluster, owner, token):
    Quota.objects.update_or_create(user=owner, defaults={"running": RUNS, "queued": RUNS})  # all of them at once
    runs = [launch_run(owner, spec=LOAD_SPEC, name=f"Load {i}") for i in range(RUNS)]
    # Watchers spread evenly over the runs and over the daphne processes.
    seen = [Seen(runs[i % RUNS].pk, cluster.daphnes[i % len(cluster.daphnes)]) for i in range(WATCHERS)]

    async def all_of_them():
        in_flight = asyncio.Semaphore(IN_FLIGHT)
        await asyncio.wait_for(asyncio.gather(*(watch(s, token, in_flight) for s in seen)), timeout=300)

    started = time.monotonic()
    asyncio.run(all_of_them())
    seconds = time.monotonic() - started
    last = dict(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("pk", "last_seq"))
    statuses = set(Run.objects.filter(pk__in=last).values_list("status", flat=True))
    refused = [s.error for s in seen if not s.connected]
    broken = [(s.run_id, s.error, len(s.seqs)) for s in seen if s.connected and s.seqs != list(range(1, last[s.run_id] + 1))]
    unended = [s.error for s in seen if s.connected and s.end is None]
    return {"runs": runs, "seconds": seconds, "statuses": statuses, "refused": refused, "broken": broken,
            "unended": unended, "frames": sum(len(s.seqs) for s in seen), "connections": sum(s.connected for s in seen),
            "slowest_handshake": round(max((s.handshake for s in seen if s.handshake), default=0), 2)}


def memory(cluster):
    return {"daphne": [round(rss_mb(p.pid)) for p in cluster.daphnes],
            "workers": [round(rss_mb(p.pid)) for p in cluster.workers.values()]}


def subscriptions(redis_client, runs):
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    channels = [f"{prefix}__group__{events.group_name(run.pk)}" for run in runs]
    counted = sum(n for _, n in redis_client.pubsub_numsub(*channels))
    return counted, redis_client.pubsub_channels(f"{prefix}*")


@pytest.mark.system
def test_it_serves_300_watchers_of_10_runs_on_2_daphnes_with_nothing_lost(owner, redis_client):
    cluster = Cluster(daphnes=2, workers=RUNS)
    try:
        token = token_for(owner)
        figures, runs = [], []
        for number in range(1, ROUNDS + 1):
            result = one_round(cluster, owner, token)
            runs += result["runs"]
            assert result["refused"] == [], f"round {number}: {len(result['refused'])} refused: {result['refused'][:3]}"
            assert result["broken"] == [], f"round {number}: streams with lost or repeated seqs: {result['broken'][:3]}"
            assert result["unended"] == [], f"round {number}: no STREAM_END: {result['unended'][:3]}"
            assert result["statuses"] == {Run.Status.COMPLETED}
            figures.append({"round": number, "seconds": round(result["seconds"], 1),
                            "connections": result["connections"], "frames": result["frames"],
                            "slowest_handshake": result["slowest_handshake"], **memory(cluster)})
            print(f"load round {figures[-1]}", flush=True)
        # Memory: after the first round (warm: imports, caches, the hub) it stays flat. A generous bound, for a
        # busy machine: a leak per watcher or per event would grow by far more over the rounds.
        first, final = figures[0], figures[-1]
        for kind in ("daphne", "workers"):
            for before, after in zip(first[kind], final[kind]):
                assert after <= before * 1.5 + 40, f"{kind} memory grew from {before} MB to {after} MB: {figures}"
        # Every watcher is gone: no run's group has a subscriber, and no channel with our prefix is left.
        wait_for(lambda: subscriptions(redis_client, runs) == (0, []), timeout=30,
                 message=f"no subscription left (now {subscriptions(redis_client, runs)})")
    finally:
        cluster.stop()
