"""DbReporter: what the engine reports becomes ordered events and rows; progress is coalesced, logs batched,
nothing else dropped, and nothing is written once the run has ended.

The reporter writes from its own thread (its own database connection), so these tests commit for real.
"""

import threading
import time

import pytest
from django.conf import settings

from runs import events
from runs.control import launch_run
from runs.models import FoldMetric, LogEntry, Run, RunEvent, RunStep
from runs.reporter import DbReporter
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(owner, iris_spec):
    run = launch_run(owner, spec=iris_spec)  # no worker runs here: the job just waits in the queue
    return run.mark_running("test")


def stored(run, *types):
    qs = RunEvent.objects.filter(run=run).order_by("seq")
    return [e for e in qs if not types or e.type in types]


def progress(reporter, n, total=1000):
    reporter.progress(f"Fitting {n}", progress=n / total, finished=n, total=total, eta_seconds=1.0)


def test_it_coalesces_progress_to_the_interval_and_keeps_the_latest(run):
    reporter = DbReporter(run)
    interval = settings.RUNWATCH["PROGRESS_MIN_INTERVAL"]
    started, n = time.monotonic(), 0
    while time.monotonic() - started < 0.6:
        n += 1
        progress(reporter, n)
    reporter.close()
    elapsed = time.monotonic() - started
    written = [e.data["finished_fits"] for e in stored(run, events.JOB_PROGRESS)]
    assert n > 100  # far more than were written
    assert 2 <= len(written) <= elapsed / interval + 2
    assert written == sorted(written) and written[-1] == n  # in order, and the last one always arrives
    run.refresh_from_db()
    assert run.finished_fits == n and run.message == f"Fitting {n}"


def test_it_coalesces_progress_between_other_events_too(run):
    # Fast fits: every progress sits between fold events, so many progress items share one write batch.
    reporter = DbReporter(run)
    interval = settings.RUNWATCH["PROGRESS_MIN_INTERVAL"]
    started, n = time.monotonic(), 0
    while time.monotonic() - started < 0.6:
        n += 1
        reporter.fold(n % 5 + 1, 5, branch="default", variant=1)
        progress(reporter, n)
    reporter.close()
    elapsed = time.monotonic() - started
    assert len(stored(run, events.FOLD_PROGRESS)) == n  # nothing but progress is dropped
    written = [e.data["finished_fits"] for e in stored(run, events.JOB_PROGRESS)]
    assert 2 <= len(written) <= elapsed / interval + 2
    assert written == sorted(written) and written[-1] == n


def test_it_writes_a_pending_progress_once_due_without_another_event(run):
    reporter = DbReporter(run, progress_interval=0.3)
    progress(reporter, 1)
    progress(reporter, 2)  # not due yet: the writer sends it when the interval is over
    written = lambda: [e.data["finished_fits"] for e in stored(run, events.JOB_PROGRESS)]  # noqa: E731
    # Without another event and before close(): the trailing progress must reach the database on its own.
    wait_for(lambda: written() and written()[-1] == 2, timeout=30, message="the trailing progress")
    assert written() in ([2], [1, 2])  # the newest only; the first may have gone out at once
    reporter.close()
    assert written() in ([2], [1, 2])  # and close() writes it no second time


def test_it_keeps_the_order_of_everything_but_dropped_progress(run):
    reporter = DbReporter(run)
    emitted = []
    reporter.step("cross_validate", "running")
    emitted.append((events.STEP_PROGRESS, "cross_validate"))
    for fold in range(1, 31):
        reporter.fold(fold, 30, branch="default", variant=1)
        emitted.append((events.FOLD_PROGRESS, fold))
        progress(reporter, fold)
        reporter.log("info", f"line {fold}", fold=fold)
        emitted.append((events.JOB_LOG, f"line {fold}"))
        reporter.fold_done(
            branch="default", variant=1, description="LogisticRegression(C=1)", fold=fold,
            metrics={"accuracy": fold / 100, "f1_macro": None}, fit_time=0.01, primary_metric="accuracy",
            primary=fold / 100, running_mean=fold / 200, finished=fold, total=30, eta_seconds=1.0, best_score=fold / 200,
        )
        emitted.append((events.JOB_METRICS, fold))
    reporter.step("cross_validate", "completed")
    emitted.append((events.STEP_PROGRESS, "cross_validate"))
    reporter.close()

    everything = stored(run)
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
    keys = {events.STEP_PROGRESS: "step", events.FOLD_PROGRESS: "fold", events.JOB_LOG: "message",
            events.JOB_METRICS: "fold"}
    kept = [(e.type, e.data[keys[e.type]]) for e in everything if e.type in keys]
    assert kept == emitted  # nothing dropped, nothing reordered

    # Progress is only ever dropped, never moved: each one sits after the fold it describes began.
    for event in stored(run, events.JOB_PROGRESS):
        before = [e for e in everything if e.seq < event.seq and e.type == events.FOLD_PROGRESS]
        assert before[-1].data["fold"] == event.data["finished_fits"]

    # Rows share the seq of their event, and the run's fields are current.
    assert list(LogEntry.objects.filter(run=run).values_list("seq", flat=True)) == [
        e.seq for e in everything if e.type == events.JOB_LOG
    ]
    assert LogEntry.objects.get(run=run, fold=7).message == "line 7"
    metric_events = {e.data["fold"]: e.seq for e in everything if e.type == events.JOB_METRICS}
    assert FoldMetric.objects.filter(run=run).count() == 60
    for m in FoldMetric.objects.filter(run=run):
        assert m.seq == metric_events[m.fold]
    assert FoldMetric.objects.get(run=run, fold=3, metric="f1_macro").value is None
    run.refresh_from_db()
    assert (run.finished_fits, run.current_fold, run.total_folds, run.best_score) == (30, 30, 30, 0.15)
    step = RunStep.objects.get(run=run, name="cross_validate")
    assert step.status == "completed" and step.started_at <= step.finished_at


class HeldReporter(DbReporter):
    """Its first write waits until the test lets it go: what is reported meanwhile is a write in flight."""

    def __init__(self, run):
        self.release = threading.Event()
        self.writes = []
        super().__init__(run)

    def _write(self, items, fields):
        self.writes.append(len(items))
        if len(self.writes) == 1:
            assert self.release.wait(10)
        super()._write(items, fields)


def test_it_writes_at_once_when_idle_and_batches_only_behind_a_write_in_flight(run):
    reporter = HeldReporter(run)
    reporter.log("debug", "line 0")
    wait_for(lambda: reporter.writes, timeout=5, message="the first line written alone, at once")
    for i in range(1, 120):
        reporter.log("debug", f"line {i}")
    reporter.release.set()
    reporter.close()
    # Group commit: the lone line went alone; the 119 reported behind it went in one write.
    assert reporter.writes == [1, 119]
    logs = stored(run, events.JOB_LOG)
    assert [e.data["message"] for e in logs] == [f"line {i}" for i in range(120)]
    assert len({e.created for e in logs}) == 2
    assert LogEntry.objects.filter(run=run).count() == 120


def test_it_publishes_one_layer_message_per_write_batch(run):
    sent, owners = [], set()

    class Recording:
        def send(self, run_id, messages, owner_id=None):
            sent.append([m["seq"] for m in messages])
            owners.add(owner_id)

        def flush(self, timeout=5.0):
            return True

    previous = events.use_publisher(Recording())
    try:
        reporter = HeldReporter(run)
        reporter.log("debug", "first")
        wait_for(lambda: reporter.writes, timeout=5, message="the first write")
        for i in range(50):
            reporter.log("debug", f"line {i}")
        reporter.release.set()
        reporter.close()
    finally:
        events.use_publisher(previous)
    first = stored(run)[-51].seq
    assert sent == [[first], list(range(first + 1, first + 51))]
    assert owners == {run.owner_id}  # so the owner's and the staff's runs lists hear of each batch


def test_it_flushes_a_quiet_log_line_after_a_moment(run):
    reporter = DbReporter(run)
    reporter.log("info", "alone", branch="default", variant=2)
    entry = wait_for(lambda: LogEntry.objects.filter(run=run).first(), timeout=5, message="the log line")
    assert (entry.message, entry.level, entry.variant, entry.branch) == ("alone", "info", 2, "default")
    reporter.close()


def test_it_records_warnings_once_and_run_facts(run):
    reporter = DbReporter(run)
    reporter.warn("The target looks continuous")
    reporter.warn("The target looks continuous")
    reporter.record(data_hash="ab" * 32, library_versions={"scikit-learn": "1.0"}, early_stopped=True, stopped_epoch=4)
    reporter.close()
    run.refresh_from_db()
    assert run.warnings == ["The target looks continuous"]
    assert run.progress_record()["warnings"] == ["The target looks continuous"]
    assert (run.data_hash, run.early_stopped, run.stopped_epoch) == ("ab" * 32, True, 4)
    assert [e.data["level"] for e in stored(run, events.JOB_LOG)] == ["warning"]


def test_it_says_stop_once_the_run_is_cancelling(run):
    reporter = DbReporter(run)
    assert reporter.should_stop() is False
    run.mark_cancelling()
    wait_for(reporter.should_stop, timeout=2, message="should_stop to notice")
    reporter.log("info", "still allowed while cancelling")
    reporter.close()
    assert stored(run, events.JOB_LOG)[-1].data["message"] == "still allowed while cancelling"


def test_it_writes_nothing_once_the_run_has_ended(run, outsider):
    reporter = DbReporter(run)
    run.mark_cancelling()
    run.mark_stopped()
    before = Run.objects.get(pk=run.pk).last_seq
    reporter.fold(1, 3, branch="default", variant=1)
    with pytest.raises(events.RunClosed):
        reporter.close()
    assert Run.objects.get(pk=run.pk).last_seq == before
    assert not stored(run, events.FOLD_PROGRESS)
    # The engine learns it at its next report or check, and stops.
    with pytest.raises(events.RunClosed):
        reporter.log("info", "too late")
    with pytest.raises(events.RunClosed):
        reporter.should_stop()
    assert not run.visible_to(outsider)


@pytest.mark.parametrize("count", [3, 450])  # a small and a big batch (runs.rows)
def test_it_stores_payloads_that_read_back_as_reported(run, count):
    # The writer hands the driver JSON text it encoded itself (runs.rows.adapt_json): the stored payload must
    # be the reported one, a JSON object the database can query, with awkward strings and floats intact.
    sent = []

    class Recording:
        def send(self, run_id, messages, owner_id=None):
            sent.extend(messages)

        def flush(self, timeout=5.0):
            return True

    awkward = 'a/b "q" \\ tab\t new\nline é ☃ \u2028 </script>'
    floats = [1e-05, 1 / 3, 0.1, 1.5e9, -0.0, 123456789.125, 2.5e-300]
    previous = events.use_publisher(Recording())
    try:
        reporter = HeldReporter(run)
        reporter.log("info", "first")
        wait_for(lambda: reporter.writes, timeout=5, message="the first write")
        for i in range(count):
            reporter.log("warning", f"{awkward} {i}", fold=i, branch="b/1", variant=i)
        reporter.fold_done(
            branch="b/1", variant=2, description=awkward, fold=9, metrics={f"m{k}": v for k, v in enumerate(floats)},
            fit_time=floats[1], primary_metric="m0", primary=floats[0], running_mean=None, finished=1, total=2,
            eta_seconds=floats[3], best_score=floats[2],
        )
        reporter.release.set()
        reporter.close()
    finally:
        events.use_publisher(previous)
    assert reporter.writes == [1, count + 1]
    logs = stored(run, events.JOB_LOG)
    assert [e.data for e in logs[1:]] == [
        {"level": "warning", "message": f"{awkward} {i}", "step": "", "fold": i, "branch": "b/1", "variant": i}
        for i in range(count)
    ]
    metrics = stored(run, events.JOB_METRICS)[0].data
    assert metrics["variant_description"] == awkward and metrics["metrics"] == {f"m{k}": v for k, v in enumerate(floats)}
    assert (metrics["fit_time"], metrics["primary"], metrics["eta_seconds"]) == (floats[1], floats[0], floats[3])
    assert {m["seq"]: m["data"] for m in sent} == {e.seq: e.data for e in stored(run) if e.seq >= logs[0].seq}
    # An object with keys, not a JSON string: lookups into it work.
    assert RunEvent.objects.filter(run=run, data__fold=count - 1, data__branch="b/1").count() == 1
    assert RunEvent.objects.filter(run=run, data__metrics__m1=floats[1]).count() == 1
    assert LogEntry.objects.get(run=run, fold=count - 1).message == f"{awkward} {count - 1}"


@pytest.mark.parametrize("prepared", [True, False])
def test_it_stores_events_with_a_prepared_statement_unless_told_not_to(run, prepared, monkeypatch):
    # PostgreSQL plans a prepared statement once per connection instead of once per write (runs.rows), and a
    # pooler that cannot carry prepared statements gets RUNWATCH_PREPARED_WRITES=0. SQLite has no such
    # statement: its writes take runs.rows.insert_rows.
    from django.db import connection

    from runs import rows

    monkeypatch.setitem(settings.RUNWATCH, "PREPARED_WRITES", prepared)
    reporter = DbReporter(run, background=False)
    for n in range(3):
        reporter.log("info", f"line {n}")
    reporter.close()
    assert list(LogEntry.objects.filter(run=run).values_list("message", flat=True).order_by("seq")) == [
        "line 0", "line 1", "line 2"]
    if connection.vendor != "postgresql":
        assert not rows.one_statement(1)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'WITH claimed AS%%'")
        statements = [row[0] for row in cursor.fetchall()]
    assert len(statements) == (1 if prepared else 0), statements


def test_it_writes_a_small_batch_in_one_statement_on_postgresql_one_per_table_on_sqlite(run):
    # PostgreSQL: the claim, the run's fields and every row in one statement (runs.rows.claim_and_insert), its
    # own commit; SQLite: the claim and one statement per table, in a transaction. Columns that are all NULL
    # in a batch (a metric without a value, a log line without a fold) must still take their column's type.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from runs import rows

    reporter = DbReporter(run, background=False)
    with CaptureQueriesContext(connection) as queries:
        reporter.fold_done(branch="b", variant=1, description="d", fold=1, metrics={"auc": None, "acc": 0.5},
                           fit_time=0.25, primary_metric="acc", primary=0.5, running_mean=0.5, finished=1, total=4,
                           eta_seconds=None, best_score=None)
    with CaptureQueriesContext(connection) as log_queries:
        reporter.log("info", "no fold")
    reporter.close()
    sql = [q["sql"] for q in queries.captured_queries + log_queries.captured_queries]
    if rows.one_statement(1):
        assert len(sql) == 2 and all(s.startswith("WITH claimed AS (UPDATE") for s in sql), sql
    else:
        sql = [s for s in sql if s not in ("BEGIN IMMEDIATE", "COMMIT")]
        assert len(sql) == 6 and sum("INSERT INTO" in s for s in sql) == 4, sql  # executemany: "N times: INSERT"
    metrics = {m.metric: (m.value, m.fit_time, m.seq) for m in FoldMetric.objects.filter(run=run)}
    event = stored(run, events.JOB_METRICS)[0]
    assert metrics == {"auc": (None, 0.25, event.seq), "acc": (0.5, 0.25, event.seq)}
    line = LogEntry.objects.get(run=run, message="no fold")
    assert (line.fold, line.variant, line.seq) == (None, None, event.seq + 1) == (None, None, stored(run)[-1].seq)
    run.refresh_from_db()
    assert (run.finished_fits, run.last_seq) == (1, event.seq + 1)


def test_it_holds_the_engine_once_a_whole_write_waits_and_keeps_order_across_writes(run, monkeypatch):
    # A burst bigger than one write (MAX_BATCH): once a whole write's worth waits behind the write in
    # flight, the engine waits for room (bounded memory, and the writer gets the GIL); the writes keep the
    # report order, and a progress inside the burst is dropped (not due) or written in its place, never moved.
    monkeypatch.setattr("runs.report_writer.MAX_BATCH", 40)
    reporter = HeldReporter(run)
    reporter.interval = 3600  # no progress is due after the first
    progress(reporter, 1)
    wait_for(lambda: reporter.writes, timeout=5, message="the first write, held")
    reported = []

    def engine():
        for i in range(100):
            reporter.log("info", f"line {i}")
            reported.append(i)
            if i == 70:
                progress(reporter, 2)

    thread = threading.Thread(target=engine)
    thread.start()
    wait_for(lambda: len(reported) == 40, timeout=5, message="a whole write queued")
    thread.join(timeout=0.3)
    assert thread.is_alive() and len(reported) == 40 and len(reporter._pending) == 40  # held: no room
    reporter.release.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    progress(reporter, 3)
    reporter.close()
    assert max(reporter.writes) == 40 and sum(reporter.writes) == len(stored(run, events.JOB_LOG, events.JOB_PROGRESS))
    kept = [(e.type, e.data["message"] if e.type == events.JOB_LOG else e.data["finished_fits"])
            for e in stored(run, events.JOB_LOG, events.JOB_PROGRESS)]
    lines = [(events.JOB_LOG, f"line {i}") for i in range(100)]
    assert kept in ([(events.JOB_PROGRESS, 1)] + lines + [(events.JOB_PROGRESS, 3)],
                    [(events.JOB_PROGRESS, 1)] + lines[:71] + [(events.JOB_PROGRESS, 2)] + lines[71:]
                    + [(events.JOB_PROGRESS, 3)])
    everything = stored(run)
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
