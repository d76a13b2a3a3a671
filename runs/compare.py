"""Comparing runs side by side: their specs (differences marked), best rows, per-metric mean ± std and the
best variants' fold scores on one chart (specs are flattened by experiments.describe.flatten_spec).

Everything here is plain data built from runs.results, so the compare page shows the same numbers as each
run's results page.
"""

from config.query_params import MAX_DB_INT
from experiments.describe import flatten_spec

from . import charts, diagnostics, plots, results

MIN_RUNS, MAX_RUNS = 2, 4


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


def compare(runs):
    """Everything the compare page shows, for `runs` (already checked visible to the viewer)."""
    boards = [results.leaderboard(run) for run in runs]
    tasks = {run.task for run in runs}
    same_task = len(tasks) == 1
    table = spec_table(runs)
    ctx = {
        "runs": runs,
        "spec_rows": table,
        "differences": sum(row["differs"] for row in table),
        "same_task": same_task,
        "tasks": sorted(tasks),
        "any_active": any(run.is_active for run in runs),
        "columns": [{"run": run, "board": board, "best": board["best"]} for run, board in zip(runs, boards)],
    }
    if not same_task:
        return ctx  # metrics of different tasks mean different things: only the spec difference is shown
    # The metrics any run recorded, in the task's catalog order.
    seen = {name for board in boards for name in board["metrics"]}
    names = results.metric_names(runs[0].task, seen)
    names = [n for n in names if n in seen]
    ctx["metric_rows"] = [
        {"name": n, "label": results.metric_label(n),
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
        ctx["chart"] = charts.fold_chart(series, results.metric_label(chart_metric),
                                         x_label="Epoch" if by_epoch else "Fold")
    ctx["chart_metric_label"] = results.metric_label(chart_metric) if chart_metric else ""
    if runs[0].task == "classification":
        # Each run's best variant: its mean ROC and PR curves over folds, overlaid (runs.diagnostics).
        found = [(f"#{run.pk} {board['best']['label']}", diagnostics.for_variant(run, board["best"]["branch"],
                                                                                 board["best"]["variant"]))
                 for run, board in zip(runs, boards) if board["best"]]
        ctx["overlays"] = [plots.overlay_plot(found, name, *labels) for name, labels in (
            ("roc", ("False positive rate", "True positive rate")), ("pr", ("Recall", "Precision")))]
    return ctx
