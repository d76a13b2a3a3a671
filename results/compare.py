"""Comparing runs side by side: their specs (differences marked, or only the differences shown), best rows,
per-metric mean ± std, their leaderboards aligned by variant, and the best variants' fold scores on one chart
(specs are flattened by experiments.describe.flatten_spec).

Everything here is plain data built from results.leaderboard, so the compare page shows the same numbers as each
run's results page.
"""

from collections import OrderedDict

from config.query_params import MAX_DB_INT
from engine import scoring
from experiments.describe import flatten_spec

from . import charts, diagnostics, plots, leaderboard
from runs import formatting

MIN_RUNS, MAX_RUNS = 2, 4
# ?settings=: the spec table shows every setting, or only those that differ between the runs.
ALL, DIFFERENCES = "all", "differences"


class BadSelection(ValueError):
    """The ?runs= list is not 2 to 4 run ids; the message says what is wrong."""


def parse_ids(text):
    """"3,1,2" -> [3, 1, 2] (order kept, duplicates dropped); BadSelection unless 2 to 4 whole numbers."""
    parts = [p.strip() for p in (text or "").replace(" ", ",").split(",") if p.strip()]
    ids = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or not 0 < int(part) <= MAX_DB_INT:
            raise BadSelection(f"“{part[:20]}” is not a run number.")
        if int(part) not in ids:
            ids.append(int(part))
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise BadSelection(f"Pick {MIN_RUNS} to {MAX_RUNS} different runs to compare (got {len(ids)}).")
    return ids


def spec_table(runs):
    """One row per spec path any of the runs has: the value in each run, and whether they differ."""
    flat = [dict(flatten_spec(run.spec)) for run in runs]
    paths = []
    for f in flat:
        paths += [p for p in f if p not in paths]
    rows = []
    for path in paths:
        values = [f.get(path) for f in flat]
        rows.append({"path": path, "values": values, "differs": len(set(values)) > 1})
    return rows


def settings_shown(values, differences):
    """ALL or DIFFERENCES, from the ?settings= values. The page's checkbox follows a hidden "all", so the last
    value wins (ticked: "differences"). Without one: only the differences, when there are any."""
    if not differences:
        return ALL
    if values:
        return DIFFERENCES if values[-1] == DIFFERENCES else ALL
    return DIFFERENCES


def side_by_side(runs, boards):
    """Every run's leaderboard (results.leaderboard, as ranked there) on one table: a row per variant, the same
    variant (branch and parameters, which its description spells) on the same row whatever its number in
    each run. Rows come in the first run's order, then those the others alone have, in theirs. Each cell is
    the run's leaderboard row or None; the runs after the first get the difference of the compared metric
    from the first run's, and the row's best score is marked.

    The compared metric is the first run's primary one; when the runs rank by different metrics, each
    still ranks by its own (the rank shown), and the scores compared are of the first run's metric."""
    metric, task = runs[0].metric, runs[0].task
    greater = scoring.greater_is_better(task, metric)
    grouped = OrderedDict()
    for i, board in enumerate(boards):
        for v in board["leaderboard"]:
            row = grouped.setdefault((v["branch"], v["description"]), {"label": v["label"], "found": [None] * len(boards)})
            row["found"][i] = v
    rows = []
    for row in grouped.values():
        scores = [(v["scores"].get(metric) if v else None) for v in row["found"]]
        means = [(s or {}).get("mean") for s in scores]
        finite = [m for m in means if scoring.finite(m)]
        best = (max if greater else min)(finite) if len(finite) > 1 else None
        base = means[0] if scoring.finite(means[0]) else None
        cells = []
        for i, (v, summary, mean) in enumerate(zip(row["found"], scores, means)):
            delta = mean - base if i and base is not None and scoring.finite(mean) else None
            cells.append({
                "variant": v, "score": summary, "run_best": v is not None and v is boards[i]["best"],
                "row_best": best is not None and mean == best,
                "delta": delta, "delta_text": formatting.signed(delta) if delta is not None else "",
                "better": delta is not None and delta != 0 and (delta > 0) == greater,
                "worse": delta is not None and delta != 0 and (delta > 0) != greater,
            })
        rows.append({"label": row["label"], "cells": cells, "only_in": sum(v is not None for v in row["found"])})
    return {"metric": metric, "metric_label": leaderboard.metric_label(metric), "greater_is_better": greater,
            "same_metric": len({run.metric for run in runs}) == 1, "rows": rows,
            "by_epoch": any(board["by_epoch"] for board in boards)}


def compare(runs, settings=()):
    """Everything the compare page shows, for `runs` (already checked visible to the viewer); `settings`: the
    ?settings= values (settings_shown)."""
    boards = [leaderboard.leaderboard(run) for run in runs]
    tasks = {run.task for run in runs}
    same_task = len(tasks) == 1
    table = spec_table(runs)
    differences = sum(row["differs"] for row in table)
    shown = settings_shown(list(settings), differences)
    ctx = {
        "runs": runs,
        "spec_rows": [row for row in table if row["differs"]] if shown == DIFFERENCES else table,
        "spec_total": len(table),
        "equal": len(table) - differences,
        "settings_shown": shown,
        "differences": differences,
        "same_task": same_task,
        "tasks": sorted(tasks),
        "any_active": any(run.is_active for run in runs),
        "columns": [{"run": run, "board": board, "best": board["best"]} for run, board in zip(runs, boards)],
    }
    if not same_task:
        return ctx  # metrics of different tasks mean different things: only the spec difference is shown
    # The metrics any run recorded, in the task's catalog order.
    seen = {name for board in boards for name in board["metrics"]}
    names = leaderboard.metric_names(runs[0].task, seen)
    names = [n for n in names if n in seen]
    ctx["boards"] = side_by_side(runs, boards)
    ctx["metric_rows"] = [
        {"name": n, "label": leaderboard.metric_label(n),
         "values": [(b["best"] or {}).get("scores", {}).get(n) for b in boards]}
        for n in names
    ]
    primaries = {run.metric for run in runs}
    chart_metric = runs[0].metric if len(primaries) == 1 else None
    if chart_metric:
        series = [{"label": f"#{run.pk} {board['best']['label']}",
                   "points": charts.variant_points(board, board["best"], chart_metric)}
                  for run, board in zip(runs, boards) if board["best"]]
        by_epoch = any(board["by_epoch"] for board in boards)
        ctx["chart"] = charts.fold_chart(series, leaderboard.metric_label(chart_metric),
                                         x_label="Epoch" if by_epoch else "Fold")
    ctx["chart_metric_label"] = leaderboard.metric_label(chart_metric) if chart_metric else ""
    if runs[0].task == "classification":
        # Each run's best variant: its mean ROC and PR curves over folds, overlaid (results.diagnostics).
        found = [(f"#{run.pk} {board['best']['label']}", diagnostics.for_variant(run, board["best"]["branch"],
                                                                                 board["best"]["variant"]))
                 for run, board in zip(runs, boards) if board["best"]]
        ctx["overlays"] = [plots.overlay_plot(found, name, *labels) for name, labels in (
            ("roc", ("False positive rate", "True positive rate")), ("pr", ("Recall", "Precision")))]
    return ctx
