"""DbReporter: the engine's reporter for a real run. Everything the engine reports becomes RunEvents (through
runs.events, so each gets the run's next seq, is refused once the run has ended, and is published after
commit), plus the rows a page reads: RunStep, FoldMetric, LogEntry and the Run's progress fields.

Reporting must cost the engine almost nothing, so the engine thread only queues what it reports; one writer
thread stores it, in the order it was reported, with group commit:
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
While a run page watches (the publish counts it, runs/publisher.py), each small batch is announced to the
run's group just before its write (events.announce), so daphne renders the page's fragments while the batch
commits; the announcement carries the seqs the writer expects, and daphne uses its render only if the
committed batch is the same.
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
from engine import Reporter
from engine.steps import STEPS
from .models import FoldDiagnostic, FoldMetric, LogEntry, Run, RunEvent, RunStep

# The most items one write takes: bounds a transaction and a channel-layer message during a burst.
MAX_BATCH = 2000
# should_stop() reads the run's status at most this often; a cancel is seen within one fit anyway.
STOP_CHECK_SECONDS = 0.05
# Write batches up to this many events are announced before they commit (events.PENDING_TYPE) while a page
# watches. A bigger batch means the writer is behind the engine; its render would hold up the rest anyway.
ANNOUNCE_MAX = 16
# Column order of the rows _store inserts.
EVENT_FIELDS = ("run", "seq", "type", "data", "created")
LOG_FIELDS = ("run", "seq", "created", "level", "message", "step", "fold", "branch", "variant")
METRIC_FIELDS = ("run", "seq", "branch", "variant", "variant_description", "fold", "epoch", "metric", "value",
                 "fit_time", "seconds", "reused")
DIAGNOSTIC_FIELDS = ("run", "seq", "branch", "variant", "fold", "data")
RECORD_FIELDS = {"data_hash", "library_versions", "early_stopped", "stopped_epoch", "latest_score"}


class _Item:
    __slots__ = ("kind", "type", "data", "metrics", "step", "diagnostics")

    def __init__(self, kind, type, data, metrics=None, step=None, diagnostics=None):
        self.kind = kind  # "event", "log" (its data is also its LogEntry row) or "progress"
        self.type = type
        self.data = data
        self.metrics = metrics
        self.step = step
        self.diagnostics = diagnostics  # a fold's FoldDiagnostic data, stored with its event's seq


class DbReporter(Reporter):
    def __init__(self, run, progress_interval=None, background=True):
        """`background=False` writes each report at once, in the caller's thread and transaction: the same
        rows and events as the writer thread, for callers that own a transaction (tests, a shell)."""
        self.run_id = run.pk
        self.owner_id = run.owner_id  # the runs lists of the owner and of staff hear of each batch too
        self._background = background
        self._started = time.monotonic() - (timezone.now() - run.started_at).total_seconds() if run.started_at else None
        self.interval = settings.RUNWATCH["PROGRESS_MIN_INTERVAL"] if progress_interval is None else progress_interval
        self._labels = dict(STEPS.get(run.runner, []))
        self._warnings = list(run.warnings or [])
        self._pruned = list(run.pruned or [])
        self._current_step = ""
        self._step_started = {}
        self._message = ""  # the latest progress message: a metrics event carries it, so it alone can redraw
        self._cond = threading.Condition()
        # The engine waits on this (same lock) only while a whole write's worth is already queued (_emit).
        self._room = threading.Condition(self._cond._lock)
        self._pending = []
        self._progress_at = None  # the index of the one progress in _pending, if any
        self._waiting = False  # the writer waits on _cond: only then does a report notify it
        self._fields = {}
        self._fields_due = False
        self._progress_written = float("-inf")
        self._closing = False
        self._error = None
        self._stop_checked = float("-inf")
        self._seen = (None, float("-inf"))  # (the run's status, when) as the writer last wrote it
        # The writer's guess of the next write's first seq, and whether the last publish counted a fragment
        # watcher of the run: then the writer announces each small batch before it commits it (events.announce).
        self._next_seq = run.last_seq + 1
        self._announce = False
        self._stop = False
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._writer, name=f"reporter-{run.pk}", daemon=True)
            self._thread.start()

    # --- The reporter interface (engine thread) ----------------------------------------------------------

    def step(self, name, status, detail=""):
        now = timezone.now()
        row = {"status": status, "detail": detail}
        elapsed = None
        if status == RunStep.Status.RUNNING:
            row["started_at"] = now
            self._current_step = name
            self._step_started[name] = now
            elapsed = 0.0
        else:
            row["finished_at"] = now
            if name in self._step_started:
                elapsed = round((now - self._step_started[name]).total_seconds(), 3)
        fields = {"current_step": name} if status == RunStep.Status.RUNNING else {}
        event = events.step(name, self._labels.get(name, name), status, detail, elapsed_seconds=elapsed)
        self._emit(_Item("event", *event, step=(name, row)), fields)

    def progress(self, message, *, progress, finished, total, eta_seconds=None, elapsed_seconds=None, **extra):
        event = events.progress(message, progress=progress, finished_fits=finished, total_fits=total,
                                eta_seconds=eta_seconds, elapsed_seconds=elapsed_seconds, **extra)
        fields = {"message": message[:300], "eta_seconds": eta_seconds, "eta_low": extra.get("eta_low"),
                  "eta_high": extra.get("eta_high")}
        self._message = message
        if total:
            fields.update(progress=progress, finished_fits=finished)
        self._emit(_Item("progress", *event), fields)

    def log(self, level, message, *, step=None, fold=None, branch="", variant=None):
        step = self._current_step if step is None else step
        self._emit(_Item("log", *events.log_line(level, message, step=step, fold=fold, branch=branch or "",
                                                 variant=variant)))

    def warn(self, message):
        if message in self._warnings:
            return
        self._warnings.append(message)
        self._set_fields(warnings=list(self._warnings))
        self.log("warning", message)

    def variant(self, index, total, description, branch):
        fields = {"current_variant": index, "total_variants": total, "variant_description": description[:300],
                  "current_branch": branch[:100]}
        self._emit(_Item("event", *events.variant(index, total, description, branch)), fields)

    def fold(self, fold, total, *, branch, variant):
        self._emit(_Item("event", *events.fold(fold, total, branch=branch, variant=variant)),
                   {"current_fold": fold, "total_folds": total})

    def in_flight(self, fits):
        self._emit(_Item("event", *events.in_flight(fits)), {"in_flight": fits})

    def stop_decision(self, *, finished, total, pruned, **data):
        # The run's list of pruned rows and its fits to do change with the event, in the same write.
        self._pruned = self._pruned + list(pruned)
        fields = {"pruned": list(self._pruned), "total_fits": total, "finished_fits": finished,
                  "progress": finished / total if total else 0.0}
        self._emit(_Item("event", *events.stop_rule(finished=finished, total=total, pruned=pruned, **data)), fields)

    def fold_done(self, *, branch, variant, description, fold, metrics, fit_time, primary_metric, primary,
                  running_mean, finished, total, eta_seconds, best_score, diagnostics=None, reused=False,
                  eta_low=None, eta_high=None, seconds=None):
        event = events.metrics(
            branch=branch, variant=variant, variant_description=description, fold=fold, fit_time=fit_time,
            **({"seconds": seconds} if seconds is not None else {}),
            metrics=metrics, primary_metric=primary_metric, primary=primary, running_mean=running_mean,
            finished_fits=finished, total_fits=total, eta_seconds=eta_seconds, eta_low=eta_low, eta_high=eta_high,
            best_score=best_score, elapsed_seconds=self._elapsed(), message=self._message,
            **({"reused": True} if reused else {}),
        )
        self._metrics_done(event, metrics, {"fold": fold}, finished, total, eta_seconds, best_score, {},
                           diagnostics)

    def epoch_done(self, *, branch, variant, description, epoch, total_epochs, metrics, fit_time, primary_metric,
                   primary, best, finished, total, eta_seconds, best_score, eta_low=None, eta_high=None):
        event = events.metrics(
            branch=branch, variant=variant, variant_description=description, epoch=epoch, total_epochs=total_epochs,
            fit_time=fit_time, metrics=metrics, primary_metric=primary_metric, primary=primary, running_mean=best,
            best=best, finished_fits=finished, total_fits=total, eta_seconds=eta_seconds, eta_low=eta_low,
            eta_high=eta_high, best_score=best_score, elapsed_seconds=self._elapsed(), message=self._message,
        )
        self._metrics_done(event, metrics, {"epoch": epoch}, finished, total, eta_seconds, best_score,
                           {"latest_score": primary})

    def _elapsed(self):
        return None if self._started is None else round(time.monotonic() - self._started, 3)

    def _metrics_done(self, event, metrics, unit, finished, total, eta_seconds, best_score, fields,
                      diagnostics=None):
        data = event[1]
        # FoldMetric rows as the writer inserts them: METRIC_FIELDS order, values the driver takes as they are.
        fold, epoch = unit.get("fold"), unit.get("epoch")
        description = data["variant_description"][:300]
        reused = data.get("reused", False)
        rows = [(data["branch"], data["variant"], description, fold, epoch, name,
                 None if value is None else float(value), data["fit_time"], data.get("seconds"), reused)
                for name, value in metrics.items()]
        fields = {"finished_fits": finished, "eta_seconds": eta_seconds, "eta_low": data.get("eta_low"),
                  "eta_high": data.get("eta_high"), "best_score": best_score,
                  "progress": finished / total if total else 0.0, **fields}
        diagnosed = (data["branch"], data["variant"], fold, diagnostics) if diagnostics and fold else None
        self._emit(_Item("event", *event, metrics=rows, diagnostics=diagnosed), fields)

    def record(self, **facts):
        unknown = set(facts) - RECORD_FIELDS
        if unknown:
            raise ValueError(f"Not a fact a run records: {', '.join(sorted(unknown))}")
        self._set_fields(**facts)

    def should_stop(self):
        self._raise_if_failed()
        now = time.monotonic()
        if not self._stop and now - self._stop_checked >= STOP_CHECK_SECONDS:
            self._stop_checked = now
            status, seen = self._seen
            # The writer read the status under the run's lock with its last write: a query only when that
            # is older than the check interval (a quiet run), so a chatty run pays no extra query for this.
            if now - seen >= STOP_CHECK_SECONDS:
                status = Run.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
            self._stop = status is None or status == Run.Status.CANCELLING or status in Run.TERMINAL
        return self._stop

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
        if self._announce and items and len(items) <= ANNOUNCE_MAX:
            # A page watches: its daphne renders the batch while this commits it. A wrong guess of the seqs
            # (someone else appended meanwhile) only makes that render go unused.
            events.announce(self.run_id, self._messages(items, self._next_seq, now))
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
        self._next_seq = claimed[0] + len(items)

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
        self._announce = bool(events.publish(self.run_id, messages, owner_id=self.owner_id))


def _as_is(value):
    return value
