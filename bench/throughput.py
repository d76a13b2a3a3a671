"""Throughput: one run emitting events as fast as it can, every event persisted and delivered live, against MLflow.

Runwatch side, once per database (SQLite and PostgreSQL), each with its own real daphne (config.asgi):
- an emitter process works as a work horse does: a running run, a DbReporter (group commit: one transaction and
  one channel-layer message per write batch) published by the worker's ThreadedPublisher; it reports N events
  (log lines, or fold metrics with one metric each), closes the reporter and completes the run;
- a live watcher (this process, a `websockets` client on /ws/runs/<id>/) connected before the first event
  reads until STREAM_END and checks that it got seq 1..last exactly once, with every reported event in order
  (it parses the messages after STREAM_END, so its own JSON decoding takes no CPU from the stack it measures).
- events/s = N / (receipt of the last event - the first report). The emitter also counts the stored rows.
MLflow side: bench/mlflow_peer.py in MLflow's own virtualenv (created here, never a project dependency), against
its own local tracking server (`mlflow server`, SQLite backend store), with `log_metric` per value and
`log_batch` of 1000 values; events/s = values / seconds of the synchronous calls, every value read back.
All sides run in the same rounds, interleaved (A, B, C, ... then reversed), so machine load hits them alike.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw REDIS_URL=redis://127.0.0.1:6379/10 python bench/throughput.py
    python bench/throughput.py --rounds 3 --events 20000 --kind log metrics

The PostgreSQL side uses DATABASE_URL (or --pg-url); SQLite is .runwatch/bench-throughput.sqlite3.
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after the tree an emitter child puts first (emit)
STATE = ROOT / ".runwatch"

from bench import deployed  # noqa: E402
from bench.processes import daphne_ready, http_ok, start  # noqa: E402

MLFLOW_VENV = STATE / "bench-mlflow-venv"
SQLITE_URL = f"sqlite:///{STATE / 'bench-throughput.sqlite3'}"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1,
                        help="rounds of every side run first and not counted: with a fresh daphne and cold caches "
                             "the first round was at times far slower (18,148 against 32,021 events/s)")
    parser.add_argument("--events", type=int, default=20000, help="events per Runwatch round and per log_batch round")
    parser.add_argument("--metric-events", type=int, default=300, help="values per MLflow log_metric round")
    parser.add_argument("--kind", choices=["log", "metrics"], nargs="+", default=["log", "metrics"])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], nargs="+", default=None,
                        help="default: both, or SQLite alone when no PostgreSQL is given (said in the report)")
    parser.add_argument("--pg-url", default=None, help="default: DATABASE_URL when it is PostgreSQL")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--port", type=int, default=8694, help="daphne (SQLite), +1 daphne (PostgreSQL), +2 MLflow")
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="another checkout (e.g. the previous commit): its reporter runs as extra sides, interleaved")
    deployed.add_argument(parser)
    parser.add_argument("--emit", action="store_true", help=argparse.SUPPRESS)  # the emitter child
    parser.add_argument("--tree", type=Path, default=ROOT, help=argparse.SUPPRESS)
    return parser.parse_args()


# --- The emitter (a child process with DATABASE_URL set: one per round, as a work horse is one per run) -----


def fold_facts(i):
    return {"branch": "", "variant": 0, "description": "SGDClassifier()", "fold": i, "metrics": {"loss": 1.0 / i},
            "fit_time": 0.001, "primary_metric": "loss", "primary": 1.0 / i, "running_mean": 1.0 / i,
            "finished": i, "total": 10_000_000, "eta_seconds": 1.0, "best_score": 1.0}


def emit(args):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(args.tree))
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from engine.spec import total_fits, validate_spec
    from runs import events
    from runs.worker import execution
    from runs.models import FoldMetric, LogEntry, Run, RunEvent
    from runs.reporter import DbReporter

    owner, _ = User.objects.get_or_create(username="bench-throughput")
    token, _ = Token.objects.get_or_create(user=owner)
    spec = validate_spec({
        "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification",
        "models": [{"estimator": "LogisticRegression", "params": {}}],
        "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1}, "metric": "accuracy",
    })
    run = Run.objects.create(owner=owner, name="bench throughput", spec=spec, runner=spec["runner"],
                             total_fits=total_fits(spec), status=Run.Status.RUNNING, started_at=timezone.now())
    events.use_publisher(execution.publisher())
    gc.freeze()  # as a work horse does before its job (runs/worker/process.py)
    print(json.dumps({"run": run.pk, "token": token.key}), flush=True)
    sys.stdin.readline()  # the watcher is connected

    kind, n = args.kind[0], args.events
    started_wall, started, cpu_started = time.time(), time.perf_counter(), time.process_time()
    reporter = DbReporter(run)
    writes, write = [], reporter._write  # the write batches' sizes, to show how group commit batched them
    reporter._write = lambda items, fields: (writes.append(len(items)), write(items, fields))[1]
    if kind == "log":
        for i in range(n):
            reporter.log("info", f"throughput line {i}: the quick brown fox jumps over the lazy dog")
    else:
        for i in range(1, n + 1):
            reporter.fold_done(**fold_facts(i))
    reporter.close()
    persisted, persist_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    run.refresh_from_db()
    run.mark_completed({})
    execution.publisher().flush(timeout=60)
    rows = (LogEntry if kind == "log" else FoldMetric).objects.filter(run=run).count()
    print(json.dumps({"started": started_wall, "persisted_seconds": persisted, "rows": rows,
                      "events": RunEvent.objects.filter(run=run).count(), "last_seq": Run.objects.get(pk=run.pk).last_seq,
                      "cpu": time.process_time(), "persist_cpu": persist_cpu, "writes": len(writes),
                      "largest_write": max(writes, default=0)}), flush=True)


# --- The sides, as seen from this process ------------------------------------------------------------------


def child_env(database_url):
    return dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings")


async def runwatch_round(kind, db_url, port, tree, events_count):
    from websockets.asyncio.client import connect

    # The emitter runs this file's emit() with the reporter of `tree` (this checkout, or --baseline-tree).
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--emit", "--kind", kind, "--events", str(events_count), "--tree", str(tree), cwd=tree,
        env=child_env(db_url), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    hello = json.loads(await child.stdout.readline())
    url = f"ws://127.0.0.1:{port}/ws/runs/{hello['run']}/?token={hello['token']}"
    # The watcher shares the 2 cores with what it measures, so during the stream it only keeps each text and
    # when it came; parsing and checking them is done after STREAM_END, off the clock (for every side alike).
    received, ended = [], False
    async with connect(url, compression=None, max_size=None, open_timeout=60, ping_interval=None) as ws:
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        async for text in ws:
            if '"STREAM_END"' in text and json.loads(text)["type"] == "STREAM_END":
                ended = True
                break
            received.append((text, time.time()))
    seqs, wanted, last_at = [], [], None
    want_type = "JOB_LOG" if kind == "log" else "JOB_METRICS"
    for text, at in received:
        message = json.loads(text)
        seqs.append(message["seq"])
        if message["type"] == want_type:
            wanted.append(message["data"]["message"] if kind == "log" else message["data"]["fold"])
            last_at = at
    done = json.loads(await child.stdout.readline())
    await child.wait()
    expected = ([f"throughput line {i}: the quick brown fox jumps over the lazy dog" for i in range(events_count)]
                if kind == "log" else list(range(1, events_count + 1)))
    in_order = (seqs == list(range(1, done["last_seq"] + 1)) and done["events"] == done["last_seq"]
                and wanted == expected and ended)
    # Lost: a reported event that did not reach the watcher, or whose row was not stored.
    lost = (events_count - len(set(wanted) & set(expected))) + (events_count - done["rows"])
    return {"rate": events_count / (last_at - done["started"]), "persist_rate": events_count / done["persisted_seconds"],
            "lost": lost, "ok": in_order and lost == 0, "cpu": done["cpu"],
            "writes": f"{done.get('writes')} writes (largest {done.get('largest_write')})"}


def mlflow_round(mode, uri, events_count):
    out = subprocess.run([str(MLFLOW_VENV / "bin" / "python"), str(ROOT / "bench" / "mlflow_peer.py"), "--uri", uri,
                          "--mode", mode, "--events", str(events_count)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    lost = result["events"] - result["stored"]
    return {"rate": result["events"] / result["seconds"], "lost": lost, "ok": lost == 0}


# --- Setup: databases, daphnes, the MLflow venv and server --------------------------------------------------


def ensure_mlflow_venv():
    python = MLFLOW_VENV / "bin" / "python"
    if not (python.exists() and subprocess.call([str(python), "-c", "import mlflow"], stderr=subprocess.DEVNULL) == 0):
        print(f"Creating MLflow's own virtualenv at {MLFLOW_VENV} (once; pip install mlflow) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "mlflow"], check=True)
    return subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True,
                          text=True, check=True).stdout.strip()


def start_daphne(db_url, port, name):
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=child_env(db_url),
                   check=True)
    return start([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                 name, lambda: daphne_ready(port), env=child_env(db_url))


def start_mlflow(port):
    store = STATE / "bench-mlflow"
    store.mkdir(exist_ok=True)
    argv = [str(MLFLOW_VENV / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--default-artifact-root", str(store / "artifacts"),
            "--workers", "1"]
    return start(argv, "mlflow", lambda: http_ok(f"http://127.0.0.1:{port}/health"))


def versions(pg_url, mlflow_version):
    import channels
    import daphne
    import django

    line = (f"python {platform.python_version()}, django {django.get_version()}, channels {channels.__version__}, "
            f"daphne {daphne.__version__}, sqlite {sqlite3.sqlite_version}")
    if pg_url:
        import psycopg

        with psycopg.connect(pg_url.replace("postgres://", "postgresql://", 1)) as conn:
            line += f", postgresql {conn.execute('show server_version').fetchone()[0]}"
    return line + (f", mlflow {mlflow_version} (own venv, SQLite store)" if mlflow_version else "")


def main():
    args = parse_args()
    if args.emit:
        return emit(args)  # with the settings its parent chose, in the environment it inherits
    args.settings_line = deployed.use(args.debug)
    STATE.mkdir(exist_ok=True)
    pg_url = args.pg_url or (os.environ.get("DATABASE_URL") if os.environ.get("DATABASE_URL", "").startswith("postgres") else None)
    args.skipped = None
    if args.db is None:
        # `make bench` on a machine without PostgreSQL (the embedded defaults): measure what can be measured, and
        # say in the report what was not, rather than fail the whole benchmark.
        args.db = ["sqlite", "postgresql"] if pg_url else ["sqlite"]
        if not pg_url:
            args.skipped = ("PostgreSQL side not measured: no DATABASE_URL=postgres://... (or --pg-url) was given. "
                            "The target asks for both databases.")
            print(args.skipped, flush=True)
    dbs = [(db, SQLITE_URL if db == "sqlite" else pg_url) for db in args.db]
    if any(url is None for _, url in dbs):
        sys.exit("The PostgreSQL side needs DATABASE_URL=postgres://... (or --pg-url); or pass --db sqlite.")
    mlflow_version = None if args.no_mlflow else ensure_mlflow_venv()
    processes, load_before = [], os.getloadavg()
    try:
        ports = {}
        for k, (db, url) in enumerate(dbs):
            ports[db] = args.port + (0 if db == "sqlite" else 1)
            processes.append(start_daphne(url, ports[db], f"throughput-daphne-{db}"))
        mlflow_uri = f"http://127.0.0.1:{args.port + 2}"
        if not args.no_mlflow:
            processes.append(start_mlflow(args.port + 2))
        trees = [("", ROOT)] + ([(" (baseline)", args.baseline_tree.resolve())] if args.baseline_tree else [])
        sides = [(f"runwatch {db} {kind}{label}", "runwatch", (kind, url, ports[db], tree))
                 for kind in args.kind for db, url in dbs for label, tree in trees]
        if not args.no_mlflow:
            sides += [("mlflow log_batch(1000)", "mlflow", ("log_batch", mlflow_uri, args.events)),
                      ("mlflow log_metric", "mlflow", ("log_metric", mlflow_uri, args.metric_events))]
        results, complete = {name: [] for name, _, _ in sides}, True
        for r in range(-args.warmup, args.rounds):
            for name, what, params in (sides if r % 2 == 0 else sides[::-1]):
                if what == "runwatch":
                    result = asyncio.run(runwatch_round(*params, args.events))
                else:
                    result = mlflow_round(*params)
                complete = complete and result["ok"]  # a warm-up round must lose nothing either
                if r >= 0:
                    results[name].append(result)
                label = f"round {r + 1}" if r >= 0 else "warm-up"
                print(f"  {label:8} {name:39} {result['rate']:9,.0f} events/s  lost {result['lost']}"
                      f"  {result.get('writes', '')}{'' if result['ok'] else '  NOT COMPLETE OR OUT OF ORDER'}",
                      flush=True)
        report(args, results, load_before, os.getloadavg(), versions(pg_url if "postgresql" in args.db else None,
                                                                       mlflow_version))
        if not complete:
            sys.exit("Some round lost events or delivered them out of order.")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def report(args, results, load_before, load_after, version_line):
    batch = results.get("mlflow log_batch(1000)")
    print()
    print(f"Throughput: one run, {args.events:,} events per round as fast as it can, persisted and delivered to a live "
          f"watcher; {args.rounds} rounds, interleaved; ratio = events/s over MLflow log_batch(1000) of the same round")
    print(f"{'side':39} {'events/s':>9} {'round rates':>21} {'x log_batch':>11} {'persist/s':>9} {'lost':>5}  complete")
    for name, rounds in results.items():
        rates = [r["rate"] for r in rounds]
        ratio = (f"{statistics.median(r['rate'] / b['rate'] for r, b in zip(rounds, batch)):.2f}" if batch else "-")
        persist = (f"{statistics.median(r['persist_rate'] for r in rounds):9,.0f}" if "persist_rate" in rounds[0]
                   else f"{'-':>9}")
        print(f"{name:39} {statistics.median(rates):9,.0f} {min(rates):9,.0f}-{max(rates):<9,.0f}  {ratio:>11} "
              f"{persist} {sum(r['lost'] for r in rounds):5}  {'yes' if all(r['ok'] for r in rounds) else 'NO'}")
    print(f"Load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in load_after)} after; {os.cpu_count()} CPUs")
    print(f"Versions: {version_line}")
    print(args.settings_line)
    print("Targets (issue 8): >= 10,000 events/s on PostgreSQL and on SQLite, 0 lost; >= 3x MLflow log_batch")
    if args.skipped:
        print(args.skipped)


if __name__ == "__main__":
    main()
