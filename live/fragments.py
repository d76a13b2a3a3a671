"""Turning run state and run events into the HTML the run page shows.

The full page (views.detail), the htmx polling fallback (views.live) and the WebSocket fragment stream
(consumers.RunFragmentsConsumer) all render the same named partials of templates/runs/detail.html; the
stream and the poll add hx-swap-oob so htmx swaps each region in place.

Each region has two context builders: one from the Run (the page, a reconnect without a cursor) and one from
an event's data (live). A batch of events renders from the events alone, with no database read: every event
carries the state its regions show (runs/events.py), metrics rows and chart points are appended to what the
page holds, and the page trims what it keeps. So a batch renders once per process, whoever watches, and the
stream layer sends the same bytes to every watcher. The metrics panel's rows, points and figures are built in
live.metrics_panel.
"""

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from runs import events, formatting
from results import leaderboard
from runs.formatting import text
from .panel_text import in_flight_text, pruned_from_event, pruned_from_run
from .metrics_panel import CHART_POINTS, METRIC_ROWS, columns_for, metrics_from_event, metrics_from_run, metrics_stats
from runs.models import LogEntry, Run, RunStep
from runs.resume import can_resume

TEMPLATE = "runs/detail.html"
# Log lines the page holds at first; older ones come from "Load older".
LIVE_LOG_LINES = 200

STATUS_TYPES = events.STATUS_TYPES
STATUS_LABELS = dict(Run.Status.choices)


def partial(name, **context):
    return render_to_string(f"{TEMPLATE}#{name}", context)


# --- Region contexts: each from the run (page, full state) or from an event's data (live) ---------------


def state_from_run(run, waiting=None):
    """The badge, the waiting reason and the actions: what the status allows."""
    return state_context(run.pk, run.status, has_results=run.status == Run.Status.COMPLETED or run.partial,
                         waiting=waiting)


def state_context(run_id, status, has_results=False, waiting=None):
    label = STATUS_LABELS.get(status, status)
    return {
        "run_id": run_id,
        "status": status,
        "get_status_display": label,  # what the badge partial reads from a Run
        "can_stop": status in (Run.Status.QUEUED, Run.Status.RUNNING),
        "terminal": status in Run.TERMINAL,
        "has_results": has_results,
        "waiting": waiting if status == Run.Status.QUEUED else None,
    }


def outcome_from_run(run):
    summary = run.summary if isinstance(run.summary, dict) else {}
    best_variant = run.best_variant.get("description") if isinstance(run.best_variant, dict) else None
    return {
        "run_id": run.pk,
        "status": run.status,
        "message": run.error_message if run.status == Run.Status.FAILED else run.message,
        "traceback": run.traceback,
        "partial": run.partial,
        "metric_label": run.metric_label,
        "best_score": run.best_score if run.best_score is not None else summary.get("best_score"),
        "fits": formatting.fits(run.runner, run.status, run.finished_fits),
        "duration": run.duration,
        "best_variant": best_variant or summary.get("best_variant"),
        "has_model": bool(run.model_file),
        "can_resume": can_resume(run.status, run.runner, run.partial),
        "stop_summary": formatting.stop_rule_summary(summary),
    }


def outcome_from_event(run_id, data):
    summary = data.get("summary") or {}
    trained = summary.get("models_trained")
    runner = data.get("runner", "")
    fits = trained - 1 if runner == "cv" and trained else summary.get("epochs_completed", trained or 0)
    return {
        "run_id": run_id,
        "status": data["status"],
        "message": data.get("message", ""),
        "traceback": "",
        "partial": bool(data.get("partial")),
        "metric_label": leaderboard.metric_label(summary.get("metric", "")),
        "best_score": summary.get("best_score"),
        "fits": formatting.fits(runner, data["status"], fits),
        "duration": summary.get("duration_seconds"),
        "best_variant": summary.get("best_variant"),
        "has_model": bool(data.get("has_model")),
        "can_resume": can_resume(data["status"], runner, data.get("partial")),
        "stop_summary": formatting.stop_rule_summary(summary),
    }


def progress_text(percent, message, elapsed, eta, finished, total, *, ticking, running, eta_range=(None, None)):
    """The progress region, every value already text, as log_line's are. The estimate shows only while the run
    runs: not while it is cancelling, and not once it has ended. `eta_range`: its (low, high); shown as a range
    ("~2–4 min") only when it is wide (engine.runners.eta.is_sure), else as the one value ("~40 s")."""
    eta = eta if running else None
    low, high = formatting.wide_range(eta, *eta_range)
    return {
        "percent": str(percent),
        "message": message or "",
        "elapsed": text(elapsed),
        "elapsed_text": formatting.duration(elapsed),
        "ticking": ticking,
        "eta": text(eta),
        "eta_low": text(low),
        "eta_high": text(high),
        "eta_text": formatting.estimate(eta, low, high),
        "fits": f"{finished or 0} / {total}" if total else "",
    }


def progress_from_run(run):
    message = formatting.ended(run.status, run.finished_fits, run.total_fits) if run.is_terminal else run.message
    return progress_text(run.percent, message, run.duration.total_seconds() if run.duration else None,
                         run.eta_seconds, run.finished_fits, run.total_fits,
                         ticking=run.is_active and run.started_at is not None,
                         running=run.status == Run.Status.RUNNING, eta_range=(run.eta_low, run.eta_high))


def progress_from_event(message):
    """JOB_PROGRESS and JOB_METRICS both carry fits done, fits planned, ETA (with its range) and elapsed time."""
    data = message["data"]
    finished, total = data.get("finished_fits") or 0, data.get("total_fits") or 0
    # "running" as far as this event knows; the page's badge has the last word (run.js).
    return progress_text(formatting.percent(finished, total, data.get("progress")), data.get("message"),
                         data.get("elapsed_seconds"), data.get("eta_seconds"), finished, total,
                         ticking=True, running=True, eta_range=(data.get("eta_low"), data.get("eta_high")))


def position_from_run(run):
    """The fold and variant chips, and the fits in flight: shown only while the run works."""
    if not run.is_active:
        return {"fold": None, "variant": None, "in_flight": None}
    return {
        "fold": {"fold": run.current_fold, "total": run.total_folds, "branch": run.current_branch},
        "variant": {"index": run.current_variant, "total": run.total_variants,
                    "description": run.variant_description, "branch": run.current_branch},
        "in_flight": in_flight_text(run.in_flight or []),
    }


STEP_LABELS = dict(RunStep.Status.choices)


def step_from_run(step):
    return {"name": step.name, "label": step.label, "status": step.status,
            "status_label": STEP_LABELS.get(step.status, step.status), "detail": step.detail,
            "elapsed": step.duration.total_seconds() if step.duration is not None else None}


def step_from_event(data):
    status = data.get("status", "")
    return {"name": data["step"], "label": data.get("label") or data["step"], "status": status,
            "status_label": STEP_LABELS.get(status, status), "detail": data.get("detail", ""),
            "elapsed": data.get("elapsed_seconds")}


def training_from_run(run):
    if run.runner != "training":
        return None
    return {
        "epoch": run.stopped_epoch if run.early_stopped else None,
        "total_epochs": (run.spec.get("training") or {}).get("epochs"),
        "done": run.finished_fits,
        "total": run.total_fits,
        "best_score": run.best_score,
        "latest_score": run.latest_score,
        "early_stopped": run.early_stopped,
        "stopped_epoch": run.stopped_epoch,
    }


def training_from_event(data):
    return {
        "epoch": data.get("epoch"),
        "total_epochs": data.get("total_epochs"),
        "done": data.get("finished_fits"),
        "total": data.get("total_fits"),
        "best_score": data.get("best_score"),
        "latest_score": data.get("latest_score", data.get("primary")),
        "early_stopped": False,
        "stopped_epoch": None,
    }


def log_line(seq, created, level, message, step, fold, branch, variant):
    """One line as the log_rows partial prints it, every value already text: the template's date and number
    filters were a third of the time of rendering a live line. From a stored LogEntry or from an event."""
    local = timezone.localtime(created) if created else None  # (localtime(None) would be now)
    return {
        "seq": str(seq),
        "iso": local.isoformat() if local else "",
        "clock": local.strftime("%H:%M:%S") if local else "",
        "level": level,
        "message": message,
        "step": step or "",
        "fold": "" if fold is None else str(fold),
        "branch": branch or "",
        "variant": "" if variant is None else str(variant),
    }


def log_from_event(message):
    data = message["data"]
    created = parse_datetime(message.get("ts") or "")  # None for a missing or unreadable ts: no time shown
    return log_line(message["seq"], created, data.get("level", "info"), data.get("message", ""), data.get("step"),
                    data.get("fold"), data.get("branch"), data.get("variant"))


def latest_logs(run_id, before=None, limit=LIVE_LOG_LINES):
    """The newest `limit` log lines (before seq `before`), oldest first, and whether older ones exist."""
    qs = LogEntry.objects.filter(run_id=run_id)
    if before is not None:
        qs = qs.filter(seq__lt=before)
    rows = list(qs.order_by("-seq")[: limit + 1])
    lines = [log_line(e.seq, e.created, e.level, e.message, e.step, e.fold, e.branch, e.variant)
             for e in reversed(rows[:limit])]
    return lines, len(rows) > limit


def stale_seconds(run):
    """Seconds since the worker's last heartbeat when that is past the warning threshold, else None."""
    if run.status not in (Run.Status.RUNNING, Run.Status.CANCELLING) or not run.heartbeat_at:
        return None
    age = (timezone.now() - run.heartbeat_at).total_seconds()
    return int(age) if age >= settings.RUNWATCH["STALE_WARNING_SECONDS"] else None


# --- The page ----------------------------------------------------------------------------------------


def page_context(run, waiting=None):
    """Everything the run page renders. `cursor` is read before the rest, so the stream resumes from a
    seq no later than the state shown; replayed regions are idempotent and the page drops rows and log
    lines it already holds. `waiting` says why a queued run waits (runs.worker.queue), where the caller knows."""
    cursor = run.last_seq
    logs, has_older = latest_logs(run.pk)
    return {
        "run": run,
        "run_id": run.pk,
        "cursor": cursor,
        "terminal": run.is_terminal,
        "state": state_from_run(run, waiting),
        "outcome": outcome_from_run(run),
        "progress": progress_from_run(run),
        "position": position_from_run(run),
        "training": training_from_run(run),
        "pruned": pruned_from_run(run),
        "steps": [step_from_run(step) for step in run.steps.all()],
        "metrics": metrics_from_run(run),
        "logs": logs,
        "has_older": has_older,
        "stale": stale_seconds(run),
        "stale_threshold": int(settings.RUNWATCH["STALE_WARNING_SECONDS"]),
    }


# --- The stream: a batch of events -> hx-swap-oob fragments ---------------------------------------------


def full_state(run):
    """Every live region of the page, for a client that has nothing yet (a reconnect without a cursor)."""
    ctx = page_context(run)
    ctx["oob"] = True
    names = ["state", "outcome", "progress", "position", "training", "pruned", "steps", "metrics", "stale"]
    parts = [partial(name, **ctx) for name in names]
    parts.append(partial("log_lines", **ctx))
    parts.append(partial("log_older", **ctx))
    parts.append(cursor_html(ctx["cursor"], ctx["cursor"], run.is_terminal, full=True))
    return "".join(parts)


def cursor_html(first, last, terminal, full=False):
    # The seqs as text: formatting numbers is most of what the template's filters cost on a live batch.
    return partial("cursor", first="" if first is None else str(first), last=str(last), terminal=terminal,
                   full=full, oob=True)


def render_batch(run_id, messages):
    """A write batch's frames for the fragment stream: one per LIVE_LOG_LINES messages, so every log line of
    a burst is appended rather than the newest ones replacing the list."""
    return [render_messages(run_id, messages[i:i + LIVE_LOG_LINES]) for i in range(0, len(messages), LIVE_LOG_LINES)]


def render_messages(run_id, messages):
    """The fragments for a contiguous batch of stored messages (seq order), from the messages alone."""
    if not messages:
        return ""
    latest, logs, metrics, steps = {}, [], [], {}
    for m in messages:
        kind = m["type"]
        latest[kind] = m
        if kind == events.JOB_LOG:
            logs.append(m)
        elif kind == events.JOB_METRICS:
            metrics.append(m)
        elif kind == events.STEP_PROGRESS:
            steps[m["data"]["step"]] = step_from_event(m["data"])
        elif kind in STATUS_TYPES:
            for cut in m["data"].get("steps") or []:
                steps[cut["step"]] = step_from_event(cut)
    status = next((m for m in reversed(messages) if m["type"] in STATUS_TYPES), None)
    terminal = status is not None and status["data"]["status"] in Run.TERMINAL
    parts = []
    if status is not None:
        parts += _status_parts(run_id, status)
    # Progress: whichever of a progress report and a scored fit came last says where the run is.
    moved = max((latest.get(t) for t in (events.JOB_PROGRESS, events.JOB_METRICS) if t in latest),
                key=lambda m: m["seq"], default=None)
    if moved is not None and not terminal:
        parts.append(partial("progress", progress=progress_from_event(moved), oob=True))
        if "epoch" in moved["data"]:
            parts.append(partial("training", training=training_from_event(moved["data"]), oob=True))
    if not terminal and (events.FOLD_PROGRESS in latest or events.VARIANT_PROGRESS in latest):
        position = {"fold": latest.get(events.FOLD_PROGRESS, {}).get("data"),
                    "variant": latest.get(events.VARIANT_PROGRESS, {}).get("data")}
        if position["fold"]:
            parts.append(partial("fold", fold=position["fold"], oob=True))
        if position["variant"]:
            parts.append(partial("variant", variant=position["variant"], oob=True))
    if not terminal and events.FITS_IN_FLIGHT in latest:
        parts.append(partial("in_flight", in_flight=in_flight_text(latest[events.FITS_IN_FLIGHT]["data"]["fits"]),
                             oob=True))
    if events.STOP_RULE in latest:
        parts.append(partial("pruned", pruned=pruned_from_event(latest[events.STOP_RULE]["data"]), oob=True))
    for step in steps.values():
        parts.append(partial("step_item", step=step, oob=True))
    if metrics:
        parts += _metrics_parts(run_id, metrics)
    if len(logs) > LIVE_LOG_LINES:
        # More than the page keeps: replace the lines with the newest ones; older ones are a click away.
        lines = [log_from_event(m) for m in logs[-LIVE_LOG_LINES:]]
        parts.append(partial("log_lines", logs=lines, oob=True))
        parts.append(partial("log_older", run_id=run_id, logs=lines, has_older=True, cursor=messages[-1]["seq"],
                             oob=True))
    elif logs:
        parts.append(partial("log_append", logs=[log_from_event(m) for m in logs]))
    parts.append(cursor_html(messages[0]["seq"], messages[-1]["seq"], terminal))
    return "".join(parts)


def _status_parts(run_id, message):
    data = message["data"]
    status = data["status"]
    has_results = status == Run.Status.COMPLETED or bool(data.get("partial"))
    parts = [partial("state", state=state_context(run_id, status, has_results), oob=True)]
    if status in Run.TERMINAL:
        parts.append(partial("outcome", outcome=outcome_from_event(run_id, data), oob=True))
        parts.append(partial("position", position={"fold": None, "variant": None, "in_flight": None}, oob=True))
        parts.append(partial("stale", stale=None, oob=True))
        if status == Run.Status.COMPLETED:
            summary = data.get("summary") or {}
            done = progress_text(100.0, "Completed", summary.get("duration_seconds"), None, None, None,
                                 ticking=False, running=False)
        else:
            # Stopped or failed: how far it got, not the step it was on.
            finished, total = data.get("finished_fits"), data.get("total_fits")
            done = progress_text(formatting.percent(finished, total), formatting.ended(status, finished, total),
                                 data.get("elapsed_seconds"), None, finished, total, ticking=False, running=False)
        parts.append(partial("progress", progress=done, oob=True))
    return parts


def _metrics_parts(run_id, messages):
    last = messages[-1]["data"]
    columns, by_epoch = columns_for(last.get("metrics") or {}), last.get("epoch") is not None
    rows = [metrics_from_event(m, columns, by_epoch) for m in messages[-max(METRIC_ROWS, CHART_POINTS):]]
    stats = metrics_stats(run_id, last.get("finished_fits"), last.get("running_mean"), last.get("best_score"),
                          last["variant"])
    ctx = {"columns": columns, "primary": last.get("primary_metric"), "by_epoch": by_epoch, "run_id": run_id,
           "oob": True}
    return [
        partial("metrics_stats", stats=stats, metrics=ctx, **ctx),
        partial("metric_rows_live", rows=list(reversed(rows[-METRIC_ROWS:]))),
        partial("chart_points_live", points=rows[-CHART_POINTS:]),
    ]


def stale_html(run):
    return partial(
        "stale",
        stale=stale_seconds(run),
        stale_threshold=int(settings.RUNWATCH["STALE_WARNING_SECONDS"]),
        oob=True,
    )

