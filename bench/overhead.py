"""What reporting costs: a real cross-validation run through the engine, instrumented with the real DbReporter
(database writes, events published to Redis), against plain scikit-learn on the same data, model and folds.

Run it from the project root:

    python bench/overhead.py                     # embedded defaults: SQLite under .runwatch/, and the
                                                 #   private Redis of `make run` (127.0.0.1:6389) up
    python scripts/private_redis.py --port 6389 -- python bench/overhead.py     # starts that Redis for you
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw REDIS_URL=redis://127.0.0.1:6379/3 python bench/overhead.py

Options: --reps N (default 5), --samples, --features, --trees, --folds; --short-fit sets 400 rows, 8 features,
1 tree, 20 folds (fits of a few milliseconds, so the reporter's per-event cost is what the ratio shows).

It creates a throwaway database (the test database of DATABASE_URL, or .runwatch/bench.sqlite3) and drops it
at the end. Repetitions alternate which side goes first, so drift in machine load hits both sides alike.
The figures, medians over the repetitions:
- cross-validation: the engine's cross_validate step vs `sklearn.model_selection.cross_validate` with the
  same scorers (accuracy, f1_macro, roc_auc). The target is at most 1.03. Shown as wall time and as CPU
  time of the whole process (the reporter's writer and publisher threads included); on a busy machine the
  CPU figure is the steadier one, the wall figure the one a user feels.
- whole run: `runs.worker.execution.execute(run)` (status changes, data loading and validation, refit, export)
  vs plain loading + cross_validate + refit on all data + joblib.dump.
The instrumented run's fold scores are checked to equal the plain ones, so both did the same work.
- floors: the plain cross-validation plus one durable commit and one PUBLISH per fold, from a side thread
  (as the reporter's writer) and inline in the fitting thread (see `floor`): the least a reporter that
  stores and publishes each fold as it ends can cost on this workload, measured in the same repetitions.
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

from bench import deployed  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--trees", type=int, default=10)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--short-fit", action="store_true",
                        help="the short-fit workload, where per-event cost shows: 400 rows, 8 features, 1 tree, 20 folds")
    deployed.add_argument(parser)
    args = parser.parse_args()
    if args.short_fit:
        args.samples, args.features, args.trees, args.folds = 400, 8, 1, 20
    return args


def bench_spec(args):
    return {
        "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": args.samples,
                    "n_features": args.features, "seed": 7},
        "task": "classification",
        "models": [{"estimator": "RandomForestClassifier", "params": {"n_estimators": [args.trees], "max_depth": [12]}}],
        "cv": {"kind": "stratified_kfold", "folds": args.folds, "shuffle": True, "seed": 7},
        "metric": "accuracy",
        "seed": 7,
    }


def plain(spec):
    """What a person would write with scikit-learn alone. Returns (cross_validate seconds, whole seconds)."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import Pipeline

    from engine import datasets

    started = time.perf_counter()
    data = datasets.load(spec["dataset"])
    params = {k: v[0] for k, v in spec["models"][0]["params"].items()}
    model = Pipeline([("model", RandomForestClassifier(**params, random_state=spec["seed"]))])
    folds = StratifiedKFold(n_splits=spec["cv"]["folds"], shuffle=True, random_state=spec["cv"]["seed"])
    cv_started, cpu_started = time.perf_counter(), time.process_time()
    scores = cross_validate(model, data.X, data.y, cv=folds, scoring=["accuracy", "f1_macro", "roc_auc"])
    cv = (time.perf_counter() - cv_started, time.process_time() - cpu_started)
    model.fit(data.X, data.y)
    with tempfile.TemporaryDirectory() as tmp:
        joblib.dump(model, Path(tmp) / "model.joblib", compress=3)
    return cv, time.perf_counter() - started, scores["test_accuracy"]


def floor(spec, inline=False):
    """The plain cross-validation plus the least a reporter that stores and publishes each fold as it ends must
    do: after each fold, one durable commit (an INSERT of what the fold reported) and one Redis PUBLISH, in a
    thread of its own woken as the reporter's writer is, or `inline` in the fitting thread (which then waits
    for both round trips). Returns cross_validate (wall, CPU). What it costs over plain is the floor the
    instrumented run is up against. From a side thread each round trip also pays for taking the GIL back from
    the fitting thread (measured here: about 75 µs of CPU for a round trip alone, 200 µs beside scikit-learn)."""
    import json
    import threading

    import redis
    from django.conf import settings
    from django.db import connection
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import Pipeline

    from engine import datasets

    data = datasets.load(spec["dataset"])
    params = {k: v[0] for k, v in spec["models"][0]["params"].items()}
    model = Pipeline([("model", RandomForestClassifier(**params, random_state=spec["seed"]))])
    folds = StratifiedKFold(n_splits=spec["cv"]["folds"], shuffle=True, random_state=spec["cv"]["seed"])
    cond, pending, state = threading.Condition(), [], {"done": False}

    def tick(estimator, X, y):  # a scorer: called once per fold, after the fit
        if inline:
            store(json.dumps([time.time()]))
            return 0.0
        with cond:
            pending.append(time.time())
            cond.notify()
        return 0.0

    client = redis.Redis.from_url(settings.REDIS_URL)

    def store(batch):
        with connection.cursor() as cursor:  # autocommit: the INSERT is its own durable commit
            cursor.execute("INSERT INTO bench_floor (payload) VALUES (%s)", [batch])
        client.publish("runwatch-bench-floor", batch)

    def side():
        try:
            while True:
                with cond:
                    while not pending and not state["done"]:
                        cond.wait()
                    if not pending:
                        return
                    batch = json.dumps(pending)
                    pending.clear()
                store(batch)
        finally:
            connection.close()

    cv_started, cpu_started = time.perf_counter(), time.process_time()
    thread = threading.Thread(target=side)
    thread.start()
    cross_validate(model, data.X, data.y, cv=folds, scoring={"accuracy": "accuracy", "f1_macro": "f1_macro",
                                                             "roc_auc": "roc_auc", "tick": tick})
    with cond:
        state["done"] = True
        cond.notify()
    thread.join()
    return time.perf_counter() - cv_started, time.process_time() - cpu_started


def instrumented(owner, spec):
    """The engine through runs.worker.execution, as a work horse runs it (minus the queue)."""
    from django.db import transaction

    from engine.spec import total_fits, validate_spec
    from runs import events
    from runs.worker import execution
    from engine.steps import steps_for
    from runs.models import FoldMetric, Run, RunStep, append_event

    spec = validate_spec(spec)
    with transaction.atomic():
        run = Run.objects.create(owner=owner, name="bench", spec=spec, runner=spec["runner"],
                                 total_fits=total_fits(spec), seed=spec["seed"])
        RunStep.objects.bulk_create(RunStep(run=run, name=n, label=l, order=i) for i, (n, l) in enumerate(steps_for(spec)))
        append_event(run, events.JOB_STATUS, {"status": Run.Status.QUEUED, "previous": None})
    started = time.perf_counter()
    outcome = execution.execute(run)
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    if run.status != Run.Status.COMPLETED:
        sys.exit(f"The instrumented run ended {run.status}: {run.error_message}")
    values = list(FoldMetric.objects.filter(run=run, metric="accuracy").order_by("fold").values_list("value", flat=True))
    timings = outcome["timings"]
    return (timings["cross_validate"], timings["cross_validate_cpu"]), seconds, values, run.last_seq


def check_redis():
    import redis
    from django.conf import settings

    try:
        redis.Redis.from_url(settings.REDIS_URL).ping()
    except redis.ConnectionError:
        sys.exit(
            f"No Redis at {settings.REDIS_URL}. Start the private one with\n"
            "  python scripts/private_redis.py --port 6389 -- python bench/overhead.py\nor set REDIS_URL."
        )


def main():
    args = parse_args()
    settings_line = deployed.use(args.debug)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test.utils import setup_databases, teardown_databases

    check_redis()
    from django.db import connections

    db = connections["default"].settings_dict
    sqlite = db["ENGINE"].endswith("sqlite3")
    db["TEST"]["NAME"] = str(settings.STATE_DIR / "bench.sqlite3") if sqlite else f"{db['NAME']}_bench"
    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="runwatch-bench-"))
    old = setup_databases(verbosity=0, interactive=False)
    try:
        owner = User.objects.create_user("bench")
        spec = bench_spec(args)
        print(f"Workload: synthetic {args.samples}x{args.features}, RandomForest({args.trees} trees, depth 12), "
              f"{args.folds} stratified folds; database {db['ENGINE'].rsplit('.', 1)[-1]}, Redis {settings.REDIS_URL}")
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_floor (payload text)")
        plain(spec), floor(spec), floor(spec, inline=True), instrumented(owner, spec)  # warm-up
        rows, floors = [], []
        for rep in range(args.reps):
            if rep % 2 == 0:
                p_cv, p_all, p_scores = plain(spec)
                f_cv, i_cv = floor(spec), floor(spec, inline=True)
                e_cv, e_all, e_scores, n_events = instrumented(owner, spec)
            else:
                e_cv, e_all, e_scores, n_events = instrumented(owner, spec)
                i_cv, f_cv = floor(spec, inline=True), floor(spec)
                p_cv, p_all, p_scores = plain(spec)
            assert [round(v, 12) for v in e_scores] == [round(v, 12) for v in p_scores], "different results"
            rows.append((p_cv[0], e_cv[0], p_cv[1], e_cv[1], p_all, e_all))
            floors.append([(cv[0] / p_cv[0], cv[1] / p_cv[1]) for cv in (f_cv, i_cv)])
            print(f"  rep {rep + 1}: cross-validation {p_cv[0]:.3f} s plain, {e_cv[0]:.3f} s engine "
                  f"({e_cv[0] / p_cv[0]:.3f}x wall, {e_cv[1] / p_cv[1]:.3f}x CPU; floors {f_cv[1] / p_cv[1]:.3f}x "
                  f"and {i_cv[1] / p_cv[1]:.3f}x CPU); whole run {p_all:.3f} s plain, {e_all:.3f} s engine "
                  f"({e_all / p_all:.3f}x); {n_events} events")
        med = [statistics.median(column) for column in zip(*rows)]
        ratio = [statistics.median(r[i + 1] / r[i] for r in rows) for i in (0, 2, 4)]
        print(f"Cross-validation, wall: plain {med[0]:.3f} s, instrumented {med[1]:.3f} s -> ratio "
              f"{med[1] / med[0]:.3f}x (median of per-rep ratios {ratio[0]:.3f}x; target <= 1.03)")
        print(f"Cross-validation, CPU:  plain {med[2]:.3f} s, instrumented {med[3]:.3f} s -> ratio "
              f"{med[3] / med[2]:.3f}x (median of per-rep ratios {ratio[1]:.3f}x)")
        for k, where in enumerate(("from a side thread", "inline, in the fitting thread")):
            print(f"Floor, a commit + a PUBLISH per fold {where}: {statistics.median(f[k][1] for f in floors):.3f}x "
                  f"CPU, {statistics.median(f[k][0] for f in floors):.3f}x wall (medians of per-rep ratios to plain)")
        print(f"Whole run, wall:        plain {med[4]:.3f} s, instrumented {med[5]:.3f} s -> ratio "
              f"{med[5] / med[4]:.3f}x (median of per-rep ratios {ratio[2]:.3f}x)")
        print(settings_line)
    finally:
        from django.db import connections

        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
