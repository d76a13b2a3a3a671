"""Live latency, worker -> WebSocket client, against the floor measured in the same run.

Runwatch: a real daphne (config.asgi), N `websockets` watchers on /ws/runs/<id>/ (or the fragment stream),
and a publisher that stores and publishes events exactly as a worker does: a DbReporter on a running run
(published by the worker's ThreadedPublisher), reporting log lines or fold metrics at a fixed rate.
Latency = receipt time - the event's stored `ts`; the `from-call` rows time the same frames from the reporter
call that made each event (the whole path: the writer waking, the store, the publish).
Floor: bench/floor_relay.py (Redis pub/sub -> `websockets`, no Django, no database), fed by a publisher that
PUBLISHes JSON carrying a timestamp at the same rate. Latency = receipt time - that timestamp.
Rounds alternate Runwatch and floor (A, B, A, B...), so drift in machine load hits both alike.

Run it from the project root (Redis must be up; the database is migrated for you):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw REDIS_URL=redis://127.0.0.1:6379/10 python bench/latency.py
    python bench/latency.py --watchers 1 100 500 --stream json fragments --kind log metrics mix --no-db

--kind: what the publisher reports (log lines, fold metrics through DbReporter.fold_done, or alternating);
--no-db adds a third side, the same daphne fed through runs.events.publish without storing the event.

Without DATABASE_URL it uses SQLite at .runwatch/bench-latency.sqlite3 (never the `make run` database).
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / '.runwatch' / 'bench-latency.sqlite3'}")

from websockets.asyncio.client import connect

from bench import deployed
from bench.processes import daphne_ready, port_open, start

CURSOR_LAST = re.compile(r'data-last="(\d+)"')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--stream", choices=["json", "fragments"], nargs="+", default=["json"])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side, per watcher count")
    parser.add_argument("--events", type=int, default=100, help="measured events per round")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--kind", choices=["log", "metrics", "mix"], nargs="+", default=["log"],
                        help="what the publisher reports: log lines, fold metrics, or both alternating")
    parser.add_argument("--no-db", action="store_true", help="also Runwatch minus the database write")
    parser.add_argument("--port", type=int, default=8690, help="daphne; the floor relay takes port + 1")
    deployed.add_argument(parser)
    return parser.parse_args()


LINE = "bench line {}: the quick brown fox jumps over the lazy dog"
SCORES = {"accuracy": 0.91, "f1_macro": 0.89, "roc_auc": 0.97}


def is_metrics(kind, i):
    return kind == "metrics" or (kind == "mix" and i % 2 == 0)


def fold_facts(i):
    """A fold result as the engine reports it (DbReporter.fold_done's arguments)."""
    return {"branch": "", "variant": 0, "description": "RandomForestClassifier(n_estimators=1)", "fold": i,
            "metrics": SCORES, "fit_time": 0.01, "primary_metric": "accuracy", "primary": 0.91,
            "running_mean": 0.91, "finished": i, "total": 1_000_000, "eta_seconds": 12.0, "best_score": 0.91}


def event_for(kind, i):
    """(type, data) of the i-th event, built by runs.events as the reporter builds it."""
    from runs import events

    if is_metrics(kind, i):
        f = fold_facts(i)
        return events.metrics(branch=f["branch"], variant=f["variant"], variant_description=f["description"],
                              fold=i, fit_time=f["fit_time"], metrics=f["metrics"], primary_metric="accuracy",
                              primary=f["primary"], running_mean=f["running_mean"], finished_fits=i,
                              total_fits=f["total"], eta_seconds=f["eta_seconds"], best_score=f["best_score"],
                              elapsed_seconds=1.0, message="")
    return events.log_line("info", LINE.format(i))


# --- The sides: each makes a stream, publishes its i-th event, and turns a received frame into (seq, ts)


class Runwatch:
    name = "runwatch"
    called = None  # after a round: seq -> when the reporter was called for it (the "from-call" figures)

    def __init__(self, port, token, owner, stream, kind):
        self.port, self.token, self.owner, self.stream, self.kind = port, token, owner, stream, kind
        from runs import events
        from runs.worker import execution

        # As a worker publishes: one long-lived publisher thread (runs.worker.execution.execute installs the same).
        events.use_publisher(execution.publisher())

    def start(self):
        from django.utils import timezone

        from engine.spec import total_fits, validate_spec
        from runs.models import Run
        from runs.reporter import DbReporter

        spec = validate_spec({
            "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification",
            "models": [{"estimator": "LogisticRegression", "params": {}}],
            "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1}, "metric": "accuracy",
        })
        self.run = Run.objects.create(owner=self.owner, name="bench latency", spec=spec, runner=spec["runner"],
                                      total_fits=total_fits(spec), status=Run.Status.RUNNING,
                                      started_at=timezone.now())
        self.reporter = DbReporter(self.run)
        self.calls = []
        self.created = {}  # seq -> stored ts, read after the round (fragment frames carry only the cursor)
        path = "fragments/?after=0&" if self.stream == "fragments" else "?"
        return f"ws://127.0.0.1:{self.port}/ws/runs/{self.run.pk}/{path}token={self.token}"

    def publish(self, i):
        self.calls.append(time.time())
        if is_metrics(self.kind, i):
            self.reporter.fold_done(**fold_facts(i))
        else:
            self.reporter.log("info", LINE.format(i))

    def finish(self):
        from runs.models import RunEvent

        self.reporter.close()
        self.created = {seq: ts.timestamp() for seq, ts in
                        RunEvent.objects.filter(run=self.run).values_list("seq", "created")}
        # Every call stores exactly one event, in call order: the k-th seq is the k-th call.
        seqs = sorted(self.created)
        self.called = dict(zip(seqs, self.calls)) if len(seqs) == len(self.calls) else None

    def parse(self, text):
        if self.stream == "fragments":
            found = CURSOR_LAST.findall(text)
            if not found:
                return None
            seq = int(found[-1])
            return seq, self.created.get(seq)
        message = json.loads(text)
        return message.get("seq"), datetime.fromisoformat(message["ts"]).timestamp() if "ts" in message else None


class RunwatchNoDb(Runwatch):
    """The same daphne and watchers, published through the same channel layer, minus the database write:
    the difference to `runwatch` is what storing the event (insert + commit) adds."""

    name = "no-db"

    def publish(self, i):
        from runs import events

        type, data = event_for(self.kind, i)
        message = {"seq": i, "type": type, "ts": datetime.now(UTC).isoformat(), "run": self.run.pk, "data": data}
        self.created[i] = time.time()
        events.publish(self.run.pk, [message])

    def finish(self):
        self.reporter.close()


class Floor:
    name = "floor"

    def __init__(self, port, redis_url, channel, kind):
        import redis

        self.port, self.channel, self.kind = port, channel, kind
        self.redis = redis.Redis.from_url(redis_url)

    def start(self):
        return f"ws://127.0.0.1:{self.port}/"

    def publish(self, i):
        type, data = event_for(self.kind, i)
        message = {"seq": i, "type": type, "ts": time.time(), "run": 0, "data": data}
        self.redis.publish(self.channel, json.dumps(message))

    def finish(self):
        pass

    def parse(self, text):
        message = json.loads(text)
        return message["seq"], message["ts"]


# --- One round: N watchers connect, warm-up events until every watcher has one, then the measured events


async def watch(url, frames, connected):
    async with connect(url, compression=None, max_size=None, open_timeout=120, ping_interval=None) as ws:
        connected.append(1)
        async for text in ws:
            frames.append((time.time(), text))


def publish_loop(side, rate, count, sinks, deadline):
    """Warm-up events until every watcher has received a frame past its initial ones, then `count` more.
    Returns the last warm-up number: measured events are the ones after it."""
    interval, i = 1.0 / rate, 0
    following = time.perf_counter()
    while not all(len(s) > 1 for s in sinks) and time.monotonic() < deadline:
        i += 1
        side.publish(i)
        following += interval
        time.sleep(max(0.0, following - time.perf_counter()))
    warm = i
    for _ in range(count):
        i += 1
        side.publish(i)
        following += interval
        time.sleep(max(0.0, following - time.perf_counter()))
    return warm


async def one_round(side, n, args):
    url = await asyncio.to_thread(side.start)
    sinks, connected = [[] for _ in range(n)], []
    tasks = [asyncio.create_task(watch(url, sinks[k], connected)) for k in range(n)]
    deadline = time.monotonic() + 120
    while len(connected) < n and time.monotonic() < deadline:
        if any(t.done() for t in tasks):
            raise RuntimeError(f"a watcher failed: {next(t for t in tasks if t.done()).exception()!r}")
        await asyncio.sleep(0.05)
    warm = await asyncio.to_thread(publish_loop, side, args.rate, args.events, sinks, time.monotonic() + 60)
    last = warm + args.events
    # Every measured event delivered, or 30 s of nothing more arriving: the rest is lost.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(s and _last_seq(side, s) >= last for s in sinks):
            break
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(side.finish)
    latencies, from_call, lost = [], [], 0
    called = getattr(side, "called", None) or {}
    for frames in sinks:
        seen = set()
        for received, text in frames:
            parsed = side.parse(text)
            if parsed and parsed[0] is not None and warm < parsed[0] <= last and parsed[1] is not None:
                latencies.append((received - parsed[1]) * 1000)
                if parsed[0] in called:
                    from_call.append((received - called[parsed[0]]) * 1000)
                seen.add(parsed[0])
        # The fragment stream may fold several events into one frame; its cursor says how far it got.
        lost += (last - max(seen, default=warm)) if getattr(side, "stream", "json") == "fragments" \
            else args.events - len(seen)
    return latencies, lost, len(connected), from_call


def _last_seq(side, frames):
    parsed = side.parse(frames[-1][1])
    return parsed[0] if parsed and parsed[0] is not None else 0


# --- Setup, processes, report


def setup_django():
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    call_command("migrate", verbosity=0, interactive=False)
    owner, _ = User.objects.get_or_create(username="bench-latency")
    token, _ = Token.objects.get_or_create(user=owner)
    return owner, token.key


def versions(redis_url):
    import channels
    import daphne
    import django
    import redis
    import websockets

    server = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    return (f"python {sys.version.split()[0]}, django {django.get_version()}, channels {channels.__version__}, "
            f"daphne {daphne.__version__}, websockets {websockets.__version__}, redis server {server}")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] if values else float("nan")


async def bench(args, owner, token, redis_url):
    results = {}
    for stream, kind in [(s, k) for s in args.stream for k in args.kind]:
        sides = [Runwatch(args.port, token, owner, stream, kind),
                 Floor(args.port + 1, redis_url, "bench-floor-relay", kind)]
        if args.no_db:
            sides.insert(1, RunwatchNoDb(args.port, token, owner, stream, kind))
        stream = f"{stream}/{kind}"
        for n in args.watchers:
            for r in range(args.rounds):
                for side in (sides if r % 2 == 0 else sides[::-1]):
                    lat, lost, conn, from_call = await one_round(side, n, args)
                    for name, values in ((side.name, lat), ("from-call", from_call)):
                        if not values:
                            continue
                        entry = results.setdefault((stream, n, name), {"all": [], "medians": [], "lost": 0, "conn": []})
                        entry["all"] += values
                        entry["medians"].append(statistics.median(values))
                        entry["lost"] += lost
                        entry["conn"].append(conn)
                        print(f"  {stream:17} N={n:<4} round {r + 1} {name:9} p50 {pct(values, 50):7.2f} ms  "
                              f"p99 {pct(values, 99):7.2f} ms  {conn}/{n} connected, {lost} lost", flush=True)
    return results


def commit_cost(rate, samples=100):
    """Median ms of a one-row INSERT that commits by itself (as the reporter's one statement does) on the
    benchmark's database: the durable write every stored event waits for, the part of `runwatch` minus `no-db`
    no code of ours can remove. Twice: back to back, and at the rounds' pace (one per 1/rate s), where the
    database and this process wait idle in between, as they do when a run reports 20 events a second: on
    these VMs a commit after an idle gap costs several times a back-to-back one (waking both processes)."""
    from django.db import connection

    from runs.models import Run

    with connection.cursor() as cursor:
        # A plain table: PostgreSQL's temporary tables skip the write-ahead log, so their commits cost nothing.
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_commit (n integer)")
    medians = []
    for gap in (0.0, 1.0 / rate):
        times = []
        for i in range(samples):
            start = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_commit (n) VALUES (%s)", [i])
            times.append((time.perf_counter() - start) * 1000)
            time.sleep(gap)
        medians.append(statistics.median(times))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_commit")
    Run.objects.exists()  # the connection is left as the rounds found it
    return tuple(medians)


def report(args, results, load_before, load_after, version_line, commits=()):
    print()
    print(f"Latency, worker -> WebSocket client; {args.events} events/round at {args.rate:g}/s, "
          f"{args.rounds} rounds per side, interleaved; ratios are to the floor of the same run")
    print(f"{'stream/kind':17} {'N':>4} {'side':9}  {'p50 ms':>7} {'p99 ms':>7}  {'p50 x':>6} {'p99 x':>6}  "
          f"{'round medians ms':>17}  {'connected':>9}  lost")
    for stream in [f"{s}/{k}" for s in args.stream for k in args.kind]:
        for n in args.watchers:
            floor = results[(stream, n, "floor")]
            f50, f99 = pct(floor["all"], 50), pct(floor["all"], 99)
            for name in ("runwatch", "from-call", "no-db", "floor"):
                if (stream, n, name) not in results:
                    continue
                e = results[(stream, n, name)]
                p50, p99 = pct(e["all"], 50), pct(e["all"], 99)
                spread = f"{min(e['medians']):.2f}-{max(e['medians']):.2f}"
                print(f"{stream:17} {n:>4} {name:9}  {p50:>7.2f} {p99:>7.2f}  {p50 / f50:>6.2f} {p99 / f99:>6.2f}  "
                      f"{spread:>17}  {min(e['conn']):>5}/{n:<3}  {e['lost']}")
    print(f"Load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs")
    print(f"Versions: {version_line}")
    if commits:
        print("Database commit alone (a one-row INSERT committing by itself, median of 100, before and after the "
              "rounds), back to back / at the rounds' pace: "
              + ", ".join(f"{quick:.2f} / {paced:.2f} ms" for quick, paced in commits))
    print(f"Database: {os.environ['DATABASE_URL'].split('@')[-1]}. connected = fewest watchers connected in a "
          "round; lost = measured events never received, summed over rounds and watchers. runwatch is timed from "
          "the event's stored ts, from-call (the same frames) from the reporter call that made it, as no-db and "
          "the floor are timed from their publish call.")


def main():
    args = parse_args()
    settings_line = deployed.use(args.debug)
    (ROOT / ".runwatch").mkdir(exist_ok=True)
    owner, token = setup_django()
    from django.conf import settings

    redis_url = settings.REDIS_URL
    load_before = os.getloadavg()
    daphne = start([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(args.port),
                    "config.asgi:application"], "daphne", lambda: daphne_ready(args.port),
                   timeout=60)
    floor = start([sys.executable, str(ROOT / "bench" / "floor_relay.py"), "--port", str(args.port + 1),
                   "--redis", redis_url, "--channel", "bench-floor-relay"], "floor",
                  lambda: port_open(args.port + 1), timeout=60)
    try:
        commits = [commit_cost(args.rate)]
        results = asyncio.run(bench(args, owner, token, redis_url))
        commits.append(commit_cost(args.rate))
    finally:
        for process in (daphne, floor):
            process.terminate()
            process.wait(10)
    report(args, results, load_before, os.getloadavg(), versions(redis_url), commits)
    print(settings_line)


if __name__ == "__main__":
    main()
