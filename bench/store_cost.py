"""What storing one event costs, piece by piece, on the benchmark's database: the part of a live event's latency
that comes before the publish (bench/latency.py's `runwatch` minus `no-db`).

Sides, timed in the same rounds (each sample a random order of all sides), back to back and at the latency
rounds' pace (one per 1/rate s, the database and this process idle in between, as for a run reporting 20 events
a second):
- round trip: `SELECT 1`, the least any statement costs;
- commit: a one-row INSERT that commits by itself, the least a durable write costs;
- reporter, log line / fold metric: the real DbReporter writing one event in the caller's thread
  (`background=False`, the same write its writer thread does: on PostgreSQL one statement that claims the seq,
  writes the run's fields and the rows, and commits), published to nothing, so only the store is timed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw python bench/store_cost.py
    python bench/store_cost.py --samples 200 --rate 20          # SQLite under .runwatch/ by default

It migrates the database it is given and deletes the run it wrote to at the end.
"""

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench import deployed  # noqa: E402


def sides():
    from django.contrib.auth.models import User
    from django.db import connection

    from runs import events
    from runs.models import Run
    from runs.reporter import DbReporter
    from tests.helpers import DroppingPublisher

    events.use_publisher(DroppingPublisher())  # nothing is published, so no Redis is needed either
    owner, _ = User.objects.get_or_create(username="bench-store-cost")
    run = Run.objects.create(owner=owner, name="store cost", spec={}).mark_running("bench")
    reporter = DbReporter(run, background=False)
    with connection.cursor() as cursor:
        # A plain table: PostgreSQL's temporary tables skip the write-ahead log, so their commits cost nothing.
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_store_cost (n integer)")
    counter = iter(range(10**9))

    def select():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def insert():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_store_cost (n) VALUES (%s)", [next(counter)])

    def fold():
        n = next(counter)
        reporter.fold_done(branch="default", variant=1, description="", fold=n % 5 + 1, metrics={"accuracy": 0.9},
                           fit_time=0.01, primary_metric="accuracy", primary=0.9, running_mean=0.9, finished=n,
                           total=10**9, eta_seconds=1.0, best_score=0.9)

    def done():
        reporter.close()
        run.delete()  # its events go with it
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_store_cost")

    return {
        "round trip (SELECT 1)": select,
        "commit (one-row INSERT)": insert,
        "reporter, log line": lambda: reporter.log("info", f"line {next(counter)}"),
        "reporter, fold metric": fold,
    }, done


def measure(samples, rate):
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    work, done = sides()
    for call in work.values():  # connections and statement caches warm
        call()
    times = {(gap, name): [] for gap in (0.0, 1.0 / rate) for name in work}
    try:
        for gap in (0.0, 1.0 / rate):
            for _ in range(samples):
                for name in random.sample(list(work), len(work)):
                    time.sleep(gap)
                    start = time.perf_counter()
                    work[name]()
                    times[(gap, name)].append((time.perf_counter() - start) * 1000)
    finally:
        done()
    return work, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=150)
    parser.add_argument("--rate", type=float, default=20.0, help="events/s of the paced samples (bench/latency.py)")
    deployed.add_argument(parser)
    args = parser.parse_args()
    settings_line = deployed.use(args.debug)
    load_before = os.getloadavg()
    work, times = measure(args.samples, args.rate)
    from django.db import connection

    print()
    print(f"Storing one event, {args.samples} samples per side, sides in random order within each sample; "
          f"ratio = p50 over the commit's at the same pace")
    print(f"{'side':26} {'back to back p50 ms':>20} {'x commit':>9} {'at pace p50 ms':>15} {'x commit':>9} "
          f"{'at pace p90 ms':>15}")
    for name in work:
        row = f"{name:26}"
        for gap in (0.0, 1.0 / args.rate):
            p50 = statistics.median(times[(gap, name)])
            base = statistics.median(times[(gap, "commit (one-row INSERT)")])
            row += f" {p50:>20.3f} {p50 / base:>9.2f}" if gap == 0 else f" {p50:>15.3f} {p50 / base:>9.2f}"
        paced = sorted(times[(1.0 / args.rate, name)])
        row += f" {paced[int(len(paced) * 0.9)]:>15.3f}"
        print(row)
    load_after = os.getloadavg()
    print(f"Load average (1 min): {load_before[0]:.2f} before, {load_after[0]:.2f} after; {os.cpu_count()} CPUs")
    print(settings_line)
    where = connection.settings_dict["HOST"] or connection.settings_dict["NAME"]
    print(f"Database: {connection.vendor} ({where}); python {platform.python_version()}")


if __name__ == "__main__":
    main()
