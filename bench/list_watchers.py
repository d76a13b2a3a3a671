"""What live rows cost the server: 100 runs-list watchers beside 100 run-page watchers, on the same events.

A real daphne (config.asgi); N `websockets` clients on the run page's fragment stream (/ws/runs/<id>/fragments/)
or on the runs list stream (/ws/runs/list/); a publisher that reports fold metrics through a DbReporter and
the worker's ThreadedPublisher, at a fixed rate, as a worker does. Per side it reports daphne's CPU time per
event (from /proc, so the whole process: hub, renders, socket writes), frames per watcher, and the latency
from an event's stored time to the frame that shows it (median, p95). The sides alternate rounds, so drift
in machine load hits both alike. The issue's target: the list costs no more per event than the run page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw REDIS_URL=redis://127.0.0.1:6379/10 python bench/list_watchers.py
    python bench/list_watchers.py --watchers 100 --events 100 --rate 20 --rounds 2

Helpers (Django setup, processes, the watcher) come from bench/latency.py.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import latency  # noqa: E402  (sets up sys.path, DJANGO_SETTINGS_MODULE and the database default)
from processes import http_ok, start  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=0, help="daphne's port (default: a free one)")
    return parser.parse_args()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def new_run(owner):
    from django.utils import timezone

    from engine.spec import total_fits, validate_spec
    from runs.models import Run

    spec = validate_spec({
        "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification",
        "models": [{"estimator": "LogisticRegression", "params": {}}],
        "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1}, "metric": "accuracy",
    })
    return Run.objects.create(owner=owner, name="bench list", spec=spec, runner=spec["runner"],
                              total_fits=total_fits(spec), status=Run.Status.RUNNING, started_at=timezone.now(),
                              current_step="cross_validate")


def last_seq(side, text):
    if side == "list":
        rows = json.loads(text).get("rows") or []
        return max((r["seq"] for r in rows), default=0)
    found = latency.CURSOR_LAST.findall(text)
    return int(found[-1]) if found else 0


async def one_round(side, args, owner, token, daphne_pid):
    from runs.models import RunEvent
    from runs.reporter import DbReporter

    run = await asyncio.to_thread(new_run, owner)
    base = f"ws://127.0.0.1:{args.port}"
    url = (f"{base}/ws/runs/list/?ids={run.pk}&token={token}" if side == "list"
           else f"{base}/ws/runs/{run.pk}/fragments/?after=0&token={token}")
    sinks, connected = [[] for _ in range(args.watchers)], []
    tasks = [asyncio.create_task(latency.watch(url, sinks[k], connected)) for k in range(args.watchers)]
    deadline = time.monotonic() + 120
    while (len(connected) < args.watchers or not all(sinks)) and time.monotonic() < deadline:
        if any(t.done() for t in tasks):
            raise RuntimeError(f"a watcher failed: {next(t for t in tasks if t.done()).exception()!r}")
        await asyncio.sleep(0.05)
    reporter = await asyncio.to_thread(DbReporter, run)
    cpu_before = cpu_seconds(daphne_pid)

    def publish():
        interval, following = 1.0 / args.rate, time.perf_counter()
        for i in range(1, args.events + 1):
            reporter.fold_done(**{**latency.fold_facts(i), "total": args.events})
            following += interval
            time.sleep(max(0.0, following - time.perf_counter()))
        reporter.close()
        return RunEvent.objects.filter(run=run).order_by("-seq").values_list("seq", flat=True).first()

    last = await asyncio.to_thread(publish)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(last_seq(side, s[-1][1]) >= last for s in sinks):
        await asyncio.sleep(0.05)
    cpu = cpu_seconds(daphne_pid) - cpu_before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    created = await asyncio.to_thread(lambda: {s: t.timestamp() for s, t in
                                               RunEvent.objects.filter(run=run).values_list("seq", "created")})
    latencies, frames = [], 0
    for sink in sinks:
        live = sink[1:]  # the first frame is the initial state
        frames += len(live)
        for received, text in live:
            seq = last_seq(side, text)
            if seq in created:
                latencies.append((received - created[seq]) * 1000)
    complete = sum(1 for s in sinks if last_seq(side, s[-1][1]) >= last)
    return {"cpu_ms_per_event": cpu * 1000 / args.events, "frames": frames / args.watchers,
            "latencies": latencies, "complete": complete}


async def bench(args, owner, token, daphne_pid):
    results = {"run page": [], "list": []}
    for _ in range(args.rounds):
        for side in ("run page", "list"):
            results[side].append(await one_round("list" if side == "list" else "page", args, owner, token, daphne_pid))
    return results


def main():
    args = parse_args()
    if not args.port:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    (BENCH.parent / ".runwatch").mkdir(exist_ok=True)
    owner, token = latency.setup_django()
    from runs import events
    from runs.worker import execution

    events.use_publisher(execution.publisher())  # as a worker publishes
    daphne = start([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(args.port),
                    "config.asgi:application"], "daphne-list", lambda: http_ok(f"http://127.0.0.1:{args.port}/login/"))
    try:
        results = asyncio.run(bench(args, owner, token, daphne.pid))
    finally:
        daphne.terminate()
        daphne.wait(10)
    print(f"{args.watchers} watchers, {args.events} fold-metric events at {args.rate:g}/s, {args.rounds} rounds; "
          f"daphne CPU per event (whole process), frames per watcher, latency stored -> received")
    print(f"{'stream':<10}{'CPU ms/event':>14}{'frames/watcher':>16}{'p50 ms':>9}{'p95 ms':>9}{'complete':>10}")
    cpu = {}
    for side, rounds in results.items():
        lat = [v for r in rounds for v in r["latencies"]]
        cpu[side] = statistics.median(r["cpu_ms_per_event"] for r in rounds)
        print(f"{side:<10}{cpu[side]:>14.2f}{statistics.median(r['frames'] for r in rounds):>16.1f}"
              f"{latency.pct(lat, 50):>9.1f}{latency.pct(lat, 95):>9.1f}"
              f"{min(r['complete'] for r in rounds):>7}/{args.watchers}")
    print(f"list / run page CPU per event: {cpu['list'] / cpu['run page']:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
