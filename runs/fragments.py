"""Turning run state and run events into the HTML the run page shows.

The full page (views.detail), the htmx polling fallback (views.live) and the WebSocket fragment stream
(consumers.RunFragmentsConsumer) all render the same named partials of templates/runs/detail.html; the
stream and the poll add hx-swap-oob so htmx swaps each region in place.

Cost with many watchers: progress, fold, variant and log events render from the event data alone; only
status, step and metrics events read the database, and a rendered batch is cached per process by its
seq range, so a hundred watchers of one run render each live event once.
"""

import math
import threading
from collections import OrderedDict
from datetime import timedelta

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from experiments import catalog

from . import events
from .models import FoldMetric, LogEntry, Run

TEMPLATE = "runs/detail.html"
# Log lines the page holds at first; older ones come from "Load older".
LIVE_LOG_LINES = 200
# A batch with more events than this is sent as the whole current state instead of event by event.
FULL_STATE_THRESHOLD = 500
METRIC_ROWS = 30
CHART_POINTS = 120

STATUS_TYPES = {events.JOB_STATUS, events.JOB_COMPLETED, events.JOB_FAILED}


def partial(name, **context):
    return render_to_string(f"{TEMPLATE}#{name}", context)


# --- Region contexts: each from the run (page, full state) or from an event's data (live) ---------------


def progress_from_run(run):
    percent = 100.0 if run.status == Run.Status.COMPLETED else round(100.0 * run.progress, 1)
    if run.total_fits and run.status != Run.Status.COMPLETED:
        percent = round(100.0 * run.finished_fits / run.total_fits, 1) or percent
    return {
        "percent": percent,
        "message": run.message,
        "eta_seconds": run.eta_seconds if run.is_active else None,
        "at": timezone.now(),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "elapsed": run.duration.total_seconds() if run.duration else None,
        "finished_fits": run.finished_fits,
        "total_fits": run.total_fits,
        "active": run.is_active,
    }


def progress_from_event(message):
    data = message["data"]
    ts = parse_datetime(message["ts"])
    elapsed = data.get("elapsed_seconds")
    return {
        "percent": round(100.0 * float(data.get("progress") or 0), 1),
        "message": data.get("message", ""),
        "eta_seconds": data.get("eta_seconds"),
        "at": ts,
        "started_at": ts - timedelta(seconds=elapsed) if ts and elapsed is not None else None,
        "finished_at": None,
        "elapsed": elapsed,
        "finished_fits": data.get("finished_fits"),
        "total_fits": data.get("total_fits"),
        "active": True,
    }


def fold_from_run(run):
    return {"fold": run.current_fold, "total": run.total_folds, "branch": run.current_branch}


def variant_from_run(run):
    return {
        "index": run.current_variant,
        "total": run.total_variants,
        "description": run.variant_description,
        "branch": run.current_branch,
    }


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
        "metric_label": run.metric_label,
    }


def training_from_event(data):
    return {
        "epoch": data.get("epoch"),
        "total_epochs": data.get("total_epochs"),
        "done": data.get("finished_fits"),
        "total": data.get("total_fits"),
        "best_score": data.get("best_score"),
        "latest_score": data.get("latest_score"),
        "early_stopped": False,
        "stopped_epoch": None,
        "metric_label": "",
    }


def log_from_event(message):
    data = message["data"]
    return {
        "seq": message["seq"],
        "created": parse_datetime(message["ts"]),
        "level": data.get("level", "info"),
        "message": data.get("message", ""),
        "step": data.get("step") or "",
        "fold": data.get("fold"),
        "branch": data.get("branch") or "",
        "variant": data.get("variant"),
    }


def latest_logs(run_id, before=None, limit=LIVE_LOG_LINES):
    """The newest `limit` log lines (before seq `before`), oldest first, and whether older ones exist."""
    qs = LogEntry.objects.filter(run_id=run_id)
    if before is not None:
        qs = qs.filter(seq__lt=before)
    rows = list(qs.order_by("-seq")[: limit + 1])
    has_older = len(rows) > limit
    return list(reversed(rows[:limit])), has_older


def stale_seconds(run):
    """Seconds since the worker's last heartbeat when that is past the warning threshold, else None."""
    if run.status not in (Run.Status.RUNNING, Run.Status.CANCELLING) or not run.heartbeat_at:
        return None
    age = (timezone.now() - run.heartbeat_at).total_seconds()
    return int(age) if age >= settings.RUNWATCH["STALE_WARNING_SECONDS"] else None


def metrics_context(run):
    """Per-fold scores pivoted by the task's metrics, each variant's running mean, and the chart."""
    metric_names = list(catalog.METRICS.get(run.task, {})) or [run.metric]
    primary = run.metric or metric_names[0]
    rows = OrderedDict()
    for m in FoldMetric.objects.filter(run=run).order_by("seq", "id"):
        key = (m.branch, m.variant, m.fold, m.epoch)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "branch": m.branch,
                "variant": m.variant,
                "description": m.variant_description,
                "fold": m.fold,
                "epoch": m.epoch,
                "fit_time": m.fit_time,
                "values": {},
            }
        row["values"][m.metric] = m.value
    rows = list(rows.values())
    variants = OrderedDict()
    for row in rows:
        row["primary"] = row["values"].get(primary)
        v = variants.setdefault(
            (row["branch"], row["variant"]),
            {"branch": row["branch"], "variant": row["variant"], "description": row["description"], "scores": []},
        )
        if _finite(row["primary"]):
            v["scores"].append(row["primary"])
        row["running_mean"] = _mean(v["scores"])
    for v in variants.values():
        v["mean"] = _mean(v["scores"])
        v["count"] = len(v["scores"])
    greater = catalog.METRICS.get(run.task, {}).get(primary, (True, False))[0]
    scored = [v for v in variants.values() if v["mean"] is not None]
    best = (max if greater else min)(scored, key=lambda v: v["mean"]) if scored else None
    return {
        "columns": [(name, catalog.METRIC_LABELS.get(name, name)) for name in metric_names],
        "primary": primary,
        "primary_label": catalog.METRIC_LABELS.get(primary, primary),
        "rows": list(reversed(rows[-METRIC_ROWS:])),
        "hidden_rows": max(0, len(rows) - METRIC_ROWS),
        "count": len(rows),
        "variants": list(variants.values()),
        "current": list(variants.values())[-1] if variants else None,
        "best": best,
        "chart": chart(rows[-CHART_POINTS:]),
        "by_epoch": bool(rows) and rows[0]["fold"] is None,
    }


def chart(rows, width=320, height=90, pad=6):
    """Points for a server-rendered SVG: fold scores as dots, each variant's running mean as a line."""
    values = [r["primary"] for r in rows if _finite(r["primary"])]
    if not values:
        return None
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(1, len(rows) - 1)

    def y(v):
        return round(height - pad - (v - low) / span * (height - 2 * pad), 1)

    dots, lines, current, last_key = [], [], [], None
    for i, r in enumerate(rows):
        x = round(pad + i * step, 1) if len(rows) > 1 else width / 2
        key = (r["branch"], r["variant"])
        if key != last_key and current:
            lines.append(" ".join(current))
            current = []
        last_key = key
        if _finite(r["primary"]):
            dots.append({"x": x, "y": y(r["primary"]), "value": r["primary"]})
        if r["running_mean"] is not None:
            current.append(f"{x},{y(r['running_mean'])}")
    if current:
        lines.append(" ".join(current))
    return {"width": width, "height": height, "dots": dots, "lines": lines, "low": low, "high": high}


def _finite(v):
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _mean(values):
    return sum(values) / len(values) if values else None


# --- The page ----------------------------------------------------------------------------------------


def page_context(run):
    """Everything the run page renders. `cursor` is read before the rest, so the stream resumes from a
    seq no later than the state shown; replayed state regions are idempotent and the page drops log lines
    it already holds."""
    cursor = run.last_seq
    logs, has_older = latest_logs(run.pk)
    return {
        "run": run,
        "cursor": cursor,
        "terminal": run.is_terminal,
        "progress": progress_from_run(run),
        "fold": fold_from_run(run),
        "variant": variant_from_run(run),
        "training": training_from_run(run),
        "steps": list(run.steps.all()),
        "metrics": metrics_context(run),
        "logs": logs,
        "has_older": has_older,
        "stale": stale_seconds(run),
        "stale_threshold": int(settings.RUNWATCH["STALE_WARNING_SECONDS"]),
    }


# --- The stream: a batch of events -> hx-swap-oob fragments ---------------------------------------------


def full_state(run):
    """Every live region of the page, for a client that is too far behind to replay event by event."""
    ctx = page_context(run)
    ctx["oob"] = True
    names = ["header", "outcome", "progress", "fold", "variant", "training", "steps", "metrics", "stale"]
    parts = [partial(name, **ctx) for name in names]
    parts.append(partial("log_lines", **ctx))
    parts.append(partial("log_older", **ctx))
    parts.append(cursor_html(ctx["cursor"], ctx["cursor"], run.is_terminal, full=True))
    return "".join(parts)


def cursor_html(first, last, terminal, full=False):
    return partial("cursor", first=first, last=last, terminal=terminal, full=full, oob=True)


_cache = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 512


def render_messages(run_id, messages):
    """The fragments for a contiguous batch of stored messages (seq order). Cached by seq range."""
    if not messages:
        return ""
    key = (run_id, messages[0]["seq"], messages[-1]["seq"])
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    html = _render_messages(run_id, messages)
    with _cache_lock:
        _cache[key] = html
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return html


def _render_messages(run_id, messages):
    if len(messages) > FULL_STATE_THRESHOLD:
        run = Run.objects.get(pk=run_id)
        return full_state(run)
    last = {}
    logs = []
    for m in messages:
        last[m["type"]] = m
        if m["type"] == events.JOB_LOG:
            logs.append(m)
    types = set(last)
    terminal = any(events.is_terminal_message(m) for m in messages)
    run = None
    if terminal or types & (STATUS_TYPES | {events.STEP_PROGRESS, events.JOB_METRICS}) or len(logs) > LIVE_LOG_LINES:
        run = Run.objects.get(pk=run_id)

    parts = []
    if types & STATUS_TYPES:
        ctx = {"run": run, "oob": True, "terminal": run.is_terminal, "stale": stale_seconds(run)}
        ctx["stale_threshold"] = int(settings.RUNWATCH["STALE_WARNING_SECONDS"])
        parts += [partial("header", **ctx), partial("outcome", **ctx), partial("stale", **ctx)]
        parts.append(partial("progress", progress=progress_from_run(run), run=run, oob=True))
        if run.runner == "training":
            parts.append(partial("training", training=training_from_run(run), oob=True))
    elif events.JOB_PROGRESS in last:
        parts.append(partial("progress", progress=progress_from_event(last[events.JOB_PROGRESS]), oob=True))
        if "epoch" in last[events.JOB_PROGRESS]["data"]:
            parts.append(partial("training", training=training_from_event(last[events.JOB_PROGRESS]["data"]), oob=True))
    if events.FOLD_PROGRESS in last:
        parts.append(partial("fold", fold=last[events.FOLD_PROGRESS]["data"], oob=True))
    if events.VARIANT_PROGRESS in last:
        parts.append(partial("variant", variant=last[events.VARIANT_PROGRESS]["data"], oob=True))
    if events.STEP_PROGRESS in last or terminal:
        parts.append(partial("steps", steps=list(run.steps.all()), run=run, oob=True))
    if events.JOB_METRICS in last or terminal:
        # At the end, the final scores are shown even if their own event was coalesced away.
        parts.append(partial("metrics", metrics=metrics_context(run), run=run, oob=True))
    if len(logs) > LIVE_LOG_LINES:
        lines, has_older = latest_logs(run_id)
        parts.append(partial("log_lines", logs=lines, oob=True))
        parts.append(partial("log_older", run=run, logs=lines, has_older=has_older, oob=True))
    elif logs:
        parts.append(partial("log_append", logs=[log_from_event(m) for m in logs]))
    parts.append(cursor_html(messages[0]["seq"], messages[-1]["seq"], terminal))
    return "".join(parts)


def stale_html(run):
    return partial(
        "stale",
        run=run,
        stale=stale_seconds(run),
        stale_threshold=int(settings.RUNWATCH["STALE_WARNING_SECONDS"]),
        oob=True,
    )
