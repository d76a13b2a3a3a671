"""Pages at scale: the run page of a run with 100,000 log lines and the run list of a user with 10,000 runs,
each against the same page at small scale (100 lines, 10 runs) in the same rounds, interleaved (big, small,
small, big, ...). Pages are served by Django's test client (the full middleware stack, no network), logged in
as the owner; the figures are the server time per page and its query count, which must not grow with size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw REDIS_URL=redis://127.0.0.1:6379/10 python bench/pages.py

The data goes into a throwaway test database (<name>_pages, or .runwatch/bench-pages.sqlite3), made fast with
the reporter's own bulk inserts (runs.rows).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args()


def make_run(owner, spec, lines, name):
    from django.db import transaction
    from django.utils import timezone

    from runs import rows
    from runs.models import LogEntry, Run, RunEvent

    with transaction.atomic():
        run = Run.objects.create(owner=owner, name=name, spec=spec, runner=spec["runner"], total_fits=3,
                                 status=Run.Status.COMPLETED, started_at=timezone.now(), finished_at=timezone.now(),
                                 last_seq=lines)
        created = rows.adapt_datetime(timezone.now())
        for first in range(1, lines + 1, 5000):
            seqs = range(first, min(first + 5000, lines + 1))
            data = [{"level": "info", "message": f"line {s}: the quick brown fox", "step": "cross_validate",
                     "fold": 1, "branch": "", "variant": 1} for s in seqs]
            rows.insert_rows(RunEvent, ("run", "seq", "type", "data", "created"),
                             [(run.pk, s, "JOB_LOG", rows.adapt_json(d), created) for s, d in zip(seqs, data)])
            rows.insert_rows(LogEntry, ("run", "seq", "created", "level", "message", "step", "fold", "branch", "variant"),
                             [(run.pk, s, created, "info", d["message"], d["step"], 1, "", 1) for s, d in zip(seqs, data)])
    return run


def make_runs(owner, spec, count):
    from django.utils import timezone

    from runs.models import Run

    now = timezone.now()
    Run.objects.bulk_create(
        [Run(owner=owner, name=f"run {i}", spec=spec, runner=spec["runner"], total_fits=3,
             status=Run.Status.COMPLETED, started_at=now, finished_at=now) for i in range(count)], batch_size=2000)


def timed_get(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        body = response.content
        seconds = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code)
    return seconds * 1000, len(queries), len(body)


def main():
    args = parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connections
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases
    from django.urls import reverse

    from engine.spec import validate_spec

    db = connections["default"].settings_dict
    sqlite = db["ENGINE"].endswith("sqlite3")
    db["TEST"]["NAME"] = str(settings.STATE_DIR / "bench-pages.sqlite3") if sqlite else f"{db['NAME']}_pages"
    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="runwatch-pages-"))
    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    old = setup_databases(verbosity=0, interactive=False)
    try:
        spec = validate_spec({
            "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification",
            "models": [{"estimator": "LogisticRegression", "params": {}}],
            "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1}, "metric": "accuracy",
        })
        many, few = User.objects.create_user("many"), User.objects.create_user("few")
        started = time.perf_counter()
        big, small = make_run(many, spec, args.lines, "big"), make_run(few, spec, 100, "small")
        make_runs(many, spec, args.runs - 1)
        make_runs(few, spec, 9)
        print(f"Data: a run of {args.lines:,} log lines and {args.runs:,} runs, made in "
              f"{time.perf_counter() - started:.0f} s; database {db['ENGINE'].rsplit('.', 1)[-1]}", flush=True)
        clients = {}
        for user in (many, few):
            clients[user.username] = Client()
            clients[user.username].force_login(user)
        pages = [
            (f"run page, {args.lines:,} lines", "many", reverse("live:detail", args=[big.pk])),
            ("run page, 100 lines", "few", reverse("live:detail", args=[small.pk])),
            (f"run list, {args.runs:,} runs", "many", reverse("runs:list")),
            ("run list, 10 runs", "few", reverse("runs:list")),
        ]
        for _, who, url in pages:
            timed_get(clients[who], url)  # warm-up: templates, caches
        results = {name: [] for name, _, _ in pages}
        for r in range(args.rounds):
            for name, who, url in (pages if r % 2 == 0 else pages[::-1]):
                results[name].append(timed_get(clients[who], url))
        print()
        print(f"Pages at scale: server time per page (Django test client, {args.rounds} rounds interleaved); "
              "ratio = big over small of the same round")
        print(f"{'page':28} {'median ms':>9} {'spread ms':>15} {'queries':>7} {'KB':>6} {'x small':>8}")
        for i, (name, _, _) in enumerate(pages):
            ms = [t for t, _, _ in results[name]]
            base = pages[i + 1][0] if i % 2 == 0 else None
            ratio = (f"{statistics.median(a[0] / b[0] for a, b in zip(results[name], results[base])):.2f}"
                     if base else "1.00")
            queries = sorted({q for _, q, _ in results[name]})
            print(f"{name:28} {statistics.median(ms):9.1f} {min(ms):7.1f}-{max(ms):<7.1f} "
                  f"{'/'.join(map(str, queries)):>7} {results[name][0][2] / 1024:6.0f} {ratio:>8}")
        print(f"Load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
