"""DbReporter: the engine's reporter for a real run. Everything the engine reports becomes RunEvents (through
runs.events, so each gets the run's next seq, is refused once the run has ended, and is published after
commit), plus the rows a page reads: RunStep, FoldMetric, LogEntry and the Run's progress fields.

Reporting must cost the engine almost nothing, so the engine thread only queues what it reports here; the
writer thread of runs.report_writer stores it, in order, with group commit.
"""

import time

from django.utils import timezone

from . import events
from engine import Reporter
from engine.steps import STEPS
from .models import Run, RunStep
from .report_writer import BatchWriter, Item

# should_stop() reads the run's status at most this often; a cancel is seen within one fit anyway.
STOP_CHECK_SECONDS = 0.05
RECORD_FIELDS = {"data_hash", "library_versions", "early_stopped", "stopped_epoch", "latest_score"}


class DbReporter(BatchWriter, Reporter):
    def __init__(self, run, progress_interval=None, background=True):
        """`background=False` writes each report at once, in the caller's thread and transaction (BatchWriter)."""
        self._started = time.monotonic() - (timezone.now() - run.started_at).total_seconds() if run.started_at else None
        self._labels = dict(STEPS.get(run.runner, []))
        self._warnings = list(run.warnings or [])
        self._pruned = list(run.pruned or [])
        self._current_step = ""
        self._step_started = {}
        self._message = ""  # the latest progress message: a metrics event carries it, so it alone can redraw
        self._stop_checked = float("-inf")
        self._stop = False
        super().__init__(run, progress_interval, background)  # starts the writer: last

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
        self._emit(Item("event", *event, step=(name, row)), fields)

    def progress(self, message, *, progress, finished, total, eta_seconds=None, elapsed_seconds=None, **extra):
        event = events.progress(message, progress=progress, finished_fits=finished, total_fits=total,
                                eta_seconds=eta_seconds, elapsed_seconds=elapsed_seconds, **extra)
        fields = {"message": message[:300], "eta_seconds": eta_seconds, "eta_low": extra.get("eta_low"),
                  "eta_high": extra.get("eta_high")}
        self._message = message
        if total:
            fields.update(progress=progress, finished_fits=finished)
        self._emit(Item("progress", *event), fields)

    def log(self, level, message, *, step=None, fold=None, branch="", variant=None):
        step = self._current_step if step is None else step
        self._emit(Item("log", *events.log_line(level, message, step=step, fold=fold, branch=branch or "",
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
        self._emit(Item("event", *events.variant(index, total, description, branch)), fields)

    def fold(self, fold, total, *, branch, variant):
        self._emit(Item("event", *events.fold(fold, total, branch=branch, variant=variant)),
                   {"current_fold": fold, "total_folds": total})

    def in_flight(self, fits):
        self._emit(Item("event", *events.in_flight(fits)), {"in_flight": fits})

    def stop_decision(self, *, finished, total, pruned, **data):
        # The run's list of pruned rows and its fits to do change with the event, in the same write.
        self._pruned = self._pruned + list(pruned)
        fields = {"pruned": list(self._pruned), "total_fits": total, "finished_fits": finished,
                  "progress": finished / total if total else 0.0}
        self._emit(Item("event", *events.stop_rule(finished=finished, total=total, pruned=pruned, **data)), fields)

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
        self._emit(Item("event", *event, metrics=rows, diagnostics=diagnosed), fields)

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
