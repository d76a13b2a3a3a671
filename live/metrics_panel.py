"""The run page's metrics panel as text: the fold table's rows, the chart's points and the figures above them,
from the run (the page, a reconnect) or from JOB_METRICS events (live, with no database read). live.fragments
renders them into templates/runs/detail.html's partials."""

import functools

from django.urls import get_script_prefix, reverse

from runs import formatting
from results import leaderboard
from engine import scoring
from runs.formatting import text

# Fold rows the metrics table shows (the results page has them all), and points the chart keeps.
METRIC_ROWS = 30
CHART_POINTS = 120


def metric_row(row, primary, columns, by_epoch):
    """One scored fit as the table and the chart show it (from a fold row or a JOB_METRICS event), every value
    already text: the template's number filters were most of the time of rendering a live fold."""
    values = row["values"]
    branch = row["branch"]
    return {
        "seq": text(row.get("seq")),
        "n": text(row.get("n")),  # its place among the run's scored fits: the live chart's x axis
        "key": f"{branch}/{row['variant']}",
        "lead": text(row["epoch"] if by_epoch else row["fold"]),
        "variant": text(row["variant"]),
        "branch": "" if branch == "default" else branch,
        "description": row["description"],
        "cells": [(name == primary, formatting.number(values.get(name))) for name, _ in columns],
        "fit": formatting.fixed(row["fit_time"]),
        "y": text(values.get(primary)),
        "m": text(row.get("running_mean")),
        "reused": bool(row.get("reused")),  # a resume's fold, from the run it resumes
    }


def results_url(run_id):
    return _results_url(run_id, get_script_prefix())


@functools.lru_cache(maxsize=1024)
def _results_url(run_id, prefix):
    # Reversing the URL in the template was a fifth of rendering a live fold (py-spy of daphne at 20 folds/s).
    return reverse("results:run", args=[run_id])


def metrics_stats(run_id, count, running_mean, best_score, current_variant):
    """The figures above the table, as text, with where the rows the table no longer shows are."""
    hidden = max(0, (count or 0) - METRIC_ROWS)
    return {
        "results_url": results_url(run_id) if hidden else "",
        "count": str(count or 0),
        "any": bool(count),
        "running_mean": formatting.number(running_mean),
        "best_score": formatting.number(best_score),
        "current_variant": text(current_variant),
        "hidden_rows": str(hidden) if hidden else "",
    }


def metrics_from_run(run):
    """The panel as the page first shows it, from results.leaderboard (the same best as every other page)."""
    board = leaderboard.leaderboard(run)
    primary, fits, by_epoch = board["metric"], board["rows"], board["by_epoch"]
    columns = [(n, leaderboard.metric_label(n)) for n in leaderboard.metric_names(run.task, board["metrics"])]
    scores = {}
    for n, row in enumerate(fits, 1):
        row["n"] = n
        own = scores.setdefault((row["branch"], row["variant"]), [])
        own.append(row["values"].get(primary))
        # An epoch-trained variant's running figure is its best epoch, a fold-scored one's its mean so far.
        row["running_mean"] = (scoring.best_of(own, board["greater_is_better"])["mean"] if by_epoch
                               else scoring.mean(own))
    shown = fits[-max(METRIC_ROWS, CHART_POINTS):]
    rows = [metric_row(row, primary, columns, by_epoch) for row in shown]
    last = fits[-1] if fits else None
    return {
        "columns": columns,
        "primary": primary,
        "primary_label": board["metric_label"],
        "by_epoch": by_epoch,
        "rows": list(reversed(rows[-METRIC_ROWS:])),
        "points": rows[-CHART_POINTS:],
        "stats": metrics_stats(run.pk, len(fits), last and last["running_mean"], board["best_score"],
                               last and last["variant"]),
    }


def metrics_from_event(message, columns, by_epoch):
    data = message["data"]
    return metric_row(
        {"branch": data["branch"], "variant": data["variant"], "description": data.get("variant_description", ""),
         "fold": data.get("fold"), "epoch": data.get("epoch"), "fit_time": data.get("fit_time"),
         "values": data.get("metrics") or {}, "running_mean": data.get("running_mean"), "seq": message["seq"],
         "reused": data.get("reused", False), "n": data.get("finished_fits")},
        data.get("primary_metric"), columns, by_epoch,
    )


def columns_for(names):
    """The table's columns for the metrics an event carries, in the order the page's header shows them."""
    known = [n for task in ("classification", "regression") for n in leaderboard.metric_names(task)]
    ordered = [n for n in known if n in names] + sorted(set(names) - set(known))
    return [(n, leaderboard.metric_label(n)) for n in ordered]
