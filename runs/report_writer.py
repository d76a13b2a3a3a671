"""The writer behind DbReporter (runs.reporter): one thread stores what the engine reported, in the order it
was reported, with group commit:
- when the writer is idle, whatever is reported is written at once (a lone log line reaches a watcher as fast
  as a metric; there is no fixed wait);
- while a write is in flight, what is reported meanwhile queues up and goes in the next write, as one
  transaction and one channel-layer message (at most MAX_BATCH items each). So the batches grow exactly when
  the engine reports faster than the database takes it, and only then. Once a whole MAX_BATCH waits behind
  the write in flight, the engine waits for room: the backlog stays bounded and the writer is not starved of
  the GIL (a burst would otherwise reach watchers in one lump after the engine is done);
- progress is coalesced to one event per PROGRESS_MIN_INTERVAL: a progress that is not yet due when a later
  event is written is dropped, because writing it after that event would break the order and writing it
  every time would break the rate. The newest progress is written once due, and always at close().
Nothing but progress is ever dropped. The Run's progress fields are written with each batch, so they are
current even when a progress event was dropped.

If a write fails (events.RunClosed once someone else ended the run, or a database error), the writer stops
and the engine gets the error at its next report or should_stop().
"""

import threading
import time
from contextlib import nullcontext

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import events, rows
from .models import FoldDiagnostic, FoldMetric, LogEntry, Run, RunEvent, RunStep

# The most items one write takes: bounds a transaction and a channel-layer message during a burst.
MAX_BATCH = 2000
# Column order of the rows _store inserts.
EVENT_FIELDS = ("run", "seq", "type", "data", "created")
LOG_FIELDS = ("run", "seq", "created", "level", "message", "step", "fold", "branch", "variant")
METRIC_FIELDS = ("run", "seq", "branch", "variant", "variant_description", "fold", "epoch", "metric", "value",
                 "fit_time", "seconds", "reused")
DIAGNOSTIC_FIELDS = ("run", "seq", "branch", "variant", "fold", "data")


class Item:
    __slots__ = ("kind", "type", "data", "metrics", "step", "diagnostics")

    def __init__(self, kind, type, data, metrics=None, step=None, diagnostics=None):
        self.kind = kind  # "event", "log" (its data is also its LogEntry row) or "progress"
        self.type = type
        self.data = data
        self.metrics = metrics
        self.step = step
        self.diagnostics = diagnostics  # a fold's FoldDiagnostic data, stored with its event's seq


class BatchWriter:
    """What DbReporter's reports become: queued by the engine thread (_emit, _set_fields), written by the
    writer thread (_writer). A subclass sets its own state, then calls this __init__, which starts the thread."""

    def __init__(self, run, progress_interval=None, background=True):
        """`background=False` writes each report at once, in the caller's thread and transaction: the same
        rows and events as the writer thread, for callers that own a transaction (tests, a shell)."""
        self.run_id = run.pk
        self.owner_id = run.owner_id  # the runs lists of the owner and of staff hear of each batch too
        self._background = background
        self.interval = settings.RUNWATCH["PROGRESS_MIN_INTERVAL"] if progress_interval is None else progress_interval
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        # The engine waits on this (same lock) only while a whole write's worth is already queued (_emit).
        self._room = threading.Condition(lock)
        self._pending = []
        self._progress_at = None  # the index of the one progress in _pending, if any
        self._waiting = False  # the writer waits on _cond: only then does a report notify it
        self._fields = {}
        self._fields_due = False
        self._progress_written = float("-inf")
        self._closing = False
        self._error = None
        self._seen = (None, float("-inf"))  # (the run's status, when) as the writer last wrote it
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._writer, name=f"reporter-{run.pk}", daemon=True)
            self._thread.start()

    # --- Lifecycle ---------------------------------------------------------------------------------------

    def close(self, discard=False):
        """Write everything still queued (the latest progress included) and stop the writer. Raises the
        writer's error, if it had one. With `discard`, drop what is queued instead (the run has ended)."""
        with self._cond:
            if discard:
                self._pending, self._fields, self._progress_at = [], {}, None
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        else:
            self._write_now()
        self._raise_if_failed()

    # --- Internals ---------------------------------------------------------------------------------------

    def _raise_if_failed(self):
        if self._error is not None:
            raise self._error

    def _set_fields(self, **fields):
        with self._cond:
            self._raise_if_failed()
            self._fields.update(fields)
            self._fields_due = True
            self._cond.notify()
        if self._thread is None:
            self._write_now()

    def _emit(self, item, fields=None):
        with self._cond:
            self._raise_if_failed()
            if self._closing:
                raise RuntimeError("The reporter is closed")
            while len(self._pending) >= MAX_BATCH and self._thread is not None:
                # A full write already waits behind the one in flight: queueing more gains nothing (a write
                # takes MAX_BATCH at most), lets the engine hold the GIL while the writer starves (a burst
                # then reaches watchers in one lump at the end), and grows without bound. Wait for room.
                self._room.wait(1.0)
                self._raise_if_failed()
                if not self._thread.is_alive():
                    break
            if item.kind == "progress":
                if self._progress_at is not None:
                    del self._pending[self._progress_at]  # superseded: at most one progress waits
                self._progress_at = len(self._pending)
            self._pending.append(item)
            if fields:
                self._fields.update(fields)
            # An idle writer waits on the condition; a busy one finds this when its write returns. The lock
            # is held only for O(1) work on both sides, so the engine never waits out the writer's batching.
            if self._waiting:
                self._cond.notify()
        if self._thread is None:
            self._write_now()

    def _write_now(self):
        items, fields = self._take(time.monotonic(), final=True)
        if items or fields:
            self._write(items, fields)

    def _progress_due(self, now):
        return now - self._progress_written >= self.interval

    def _ready(self, now):
        """Is there something to write now? Anything but a progress that is not yet due."""
        pending = self._pending
        return (self._fields_due or len(pending) > 1 or (len(pending) == 1 and self._progress_at is None)
                or (self._progress_at is not None and self._progress_due(now)))

    def _timeout(self, now):
        # Only a waiting progress has a deadline; everything else is written as soon as the writer is free.
        if self._progress_at is not None:
            return max(self._progress_written + self.interval - now, 0.001)
        return None

    def _take(self, now, final):
        """The next write's items and fields. O(1) but for the slice: it runs under the lock the engine takes
        for every report. `_pending` holds at most one progress (at `_progress_at`; _emit drops the older)."""
        pending, at = self._pending, self._progress_at
        if len(pending) <= MAX_BATCH:
            taken, rest = pending, []
        else:
            taken, rest = pending[:MAX_BATCH], pending[MAX_BATCH:]
        kept, self._progress_at = [], None
        if at is not None and at >= len(taken):
            self._progress_at = at - len(taken)  # it waits in the rest
        elif at is not None:
            if final or self._progress_due(now):
                self._progress_written = now
            else:
                item = taken.pop(at)
                if at == len(taken):  # it was the last: the newest news, written once it is due
                    kept, self._progress_at = [item], 0
                # else: not due, and later events are about to be written: dropped
        fields, self._fields, self._fields_due = self._fields, {}, False
        self._pending = kept + rest if kept else rest
        return taken, fields

    def _writer(self):
        try:
            while True:
                with self._cond:
                    while not self._closing and not self._ready(time.monotonic()):
                        self._waiting = True
                        self._cond.wait(self._timeout(time.monotonic()))
                        self._waiting = False
                    items, fields = self._take(time.monotonic(), final=self._closing)
                    self._room.notify()
                    last = self._closing and not self._pending
                if items or fields:
                    try:
                        self._write(items, fields)
                    except Exception as e:
                        with self._cond:
                            self._error = e
                            self._room.notify()
                            self._pending, self._fields, self._progress_at = [], {}, None
                        return
                if last:
                    return
        finally:
            connection.close()  # this thread's own connection

    def _write(self, items, fields):
        now = timezone.now()
        fields = {**fields, "updated_at": now}
        closed = f"Run {self.run_id} has ended; nothing more is written for it."
        steps = [item.step for item in items if item.step]
        if rows.one_statement(len(items)):
            # PostgreSQL, a small batch (the writer keeps up): one statement claims the seqs, writes the run's
            # fields and inserts every row (seqs relative to the batch until the statement adds the run's): one
            # round trip, and outside a transaction its own commit. A step's row needs a statement of its own,
            # so those batches (a handful per run) take a transaction.
            tables = self._rows(items, 1, now.isoformat(), _as_is)
            with transaction.atomic() if steps else nullcontext():
                claimed = rows.claim_and_insert(Run, self.run_id, len(items), fields, Run.TERMINAL, tables)
                if claimed is None:
                    raise events.RunClosed(closed)
                self._written(items, claimed[0], now, steps)
        else:
            with transaction.atomic():
                # One statement claims the seqs and writes the run's fields; it refuses a run that has ended.
                claimed = rows.claim(Run, self.run_id, len(items), fields, Run.TERMINAL)
                if claimed is None:
                    raise events.RunClosed(closed)
                for table in self._rows(items, claimed[0], rows.adapt_datetime(now), rows.adapt_json):
                    rows.insert_rows(*table)
                self._written(items, claimed[0], now, steps)
        self._seen = (claimed[1], time.monotonic())  # should_stop() reads this instead of asking again

    def _rows(self, items, first, created, adapt_json):
        """What runs.models.append_events stores, for a whole write batch at a time: [(model, fields, rows)]
        for the events (seqs from `first`) and their LogEntry, FoldMetric and FoldDiagnostic rows. Each value
        is adapted once, as the statement takes it (runs.rows); the batch shares one `created` (the write's)."""
        run_id = self.run_id
        stored, logs, metrics, diagnosed = [], [], [], []
        for seq, item in enumerate(items, first):
            data = item.data
            stored.append((run_id, seq, item.type, adapt_json(data), created))
            if item.kind == "log":
                logs.append((run_id, seq, created, data["level"], data["message"], data["step"], data["fold"],
                             data["branch"], data["variant"]))
            elif item.metrics:
                metrics.extend((run_id, seq, *row) for row in item.metrics)
                if item.diagnostics:
                    branch, variant, fold, values = item.diagnostics
                    diagnosed.append((run_id, seq, branch, variant, fold, adapt_json(values)))
        return [(RunEvent, EVENT_FIELDS, stored), (LogEntry, LOG_FIELDS, logs), (FoldMetric, METRIC_FIELDS, metrics),
                (FoldDiagnostic, DIAGNOSTIC_FIELDS, diagnosed)]

    def _messages(self, items, first, now):
        ts, run_id = now.isoformat(), self.run_id
        return [{"seq": seq, "type": item.type, "ts": ts, "run": run_id, "data": item.data}
                for seq, item in enumerate(items, first)]

    def _written(self, items, first, now, steps):
        """The steps' rows, and one publish of the batch after commit (at once when there is no transaction)."""
        for name, row in steps:
            RunStep.objects.filter(run_id=self.run_id, name=name).update(**row)
        if items:
            messages = self._messages(items, first, now)
            transaction.on_commit(lambda: self._publish(messages))

    def _publish(self, messages):
        events.publish(self.run_id, messages, owner_id=self.owner_id)


def _as_is(value):
    return value
