"""A run's results: the leaderboard, the best variant and its score, the per-fold rows, and what is partial.

The one home of these facts. The API, the results page, the run page, the runs list, the admin and the CLI
read them from here; "best score" everywhere means the best variant's mean (engine.scoring says what
"best" is, for the engine too).
"""

from collections import OrderedDict

from engine import catalog

from engine import scoring
from runs import formatting
from runs.models import FoldMetric, Run


def metric_names(task, seen=()):
    """The task's metrics in catalog order, then any other metric that was recorded."""
    known = list(catalog.METRICS.get(task, {}))
    return known + sorted(set(seen) - set(known))


def metric_label(name):
    return catalog.METRIC_LABELS.get(name, name)


def fold_rows(metrics):
    """FoldMetric rows (one per metric) pivoted to one row per fit: branch, variant, fold or epoch, values."""
    rows = OrderedDict()
    for m in metrics:
        key = (m.branch, m.variant, m.fold, m.epoch)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "branch": m.branch, "variant": m.variant, "description": m.variant_description, "fold": m.fold,
                "epoch": m.epoch, "fit_time": m.fit_time, "seq": m.seq, "reused": m.reused, "values": {},
            }
        row["values"][m.metric] = m.value
    return list(rows.values())


def expected_folds(run):
    if run.runner != "cv":
        return None
    return run.total_folds or (run.spec.get("cv") or {}).get("folds")


def leaderboard(run, rows=None, rank_by=None):
    """Everything the results of `run` say, as plain data (JSON-able but for nothing).

    rows (per fit, in the order they were recorded) may be passed in when the caller already has them.
    `rank_by` (one of the metrics the run recorded: the board's "metrics") ranks the rows by that metric, in
    its own direction, instead of the primary one; the best variant stays the primary metric's (the refitted
    one).
    """
    if rows is None:
        rows = fold_rows(FoldMetric.objects.filter(run=run).order_by("seq", "id"))
    primary = run.metric
    greater = scoring.greater_is_better(run.task, primary)
    by_epoch = bool(rows) and rows[0]["fold"] is None and rows[0]["epoch"] is not None
    folds_expected = expected_folds(run)

    # The rows the spec's stop rule stopped early (engine/runners/stop_rules.py): shown with their partial mean, ranked
    # below every complete row (they are incomplete), and marked.
    pruned = {(p["branch"], p["variant"]): p for p in (run.pruned or []) if isinstance(p, dict)}
    groups = OrderedDict()
    for row in rows:
        key = (row["branch"], row["variant"])
        g = groups.setdefault(key, {"branch": row["branch"], "variant": row["variant"],
                                    "description": row["description"], "fits": []})
        g["fits"].append(row)
    names = metric_names(run.task, {name for row in rows for name in row["values"]})
    names = [n for n in names if any(n in row["values"] for row in rows)] or [primary]

    variants = []
    last_key = next(reversed(groups)) if groups else None
    for key, g in groups.items():
        fits = g["fits"]
        if by_epoch:
            scores = {n: scoring.best_of([f["values"].get(n) for f in fits], scoring.greater_is_better(run.task, n))
                      for n in names}
            # Earlier variants are done (perhaps stopped early); the last one only once the run completed.
            complete = key != last_key or run.status == Run.Status.COMPLETED
        else:
            scores = {n: scoring.summarize([f["values"].get(n) for f in fits]) for n in names}
            complete = folds_expected is None or len(fits) >= folds_expected
        variants.append({
            "branch": g["branch"], "variant": g["variant"], "description": g["description"],
            "label": g["description"] + (f" [{g['branch']}]" if g["branch"] != "default" else ""),
            "folds": len(fits), "complete": complete,
            "fit_time": scoring.mean([f["fit_time"] for f in fits]) or 0.0,
            "scores": scores, "primary": scores.get(primary, {"mean": None, "std": None, "count": 0}),
            "pruned": pruned.get(key),
        })
    ranked = scoring.rank(variants, greater, score=lambda v: v["primary"]["mean"], complete=lambda v: v["complete"])
    for number, v in enumerate(ranked, 1):
        v["rank"] = number
    best = ranked[0] if ranked and scoring.finite(ranked[0]["primary"]["mean"]) else None
    rank_by = rank_by if rank_by in names else primary
    if rank_by != primary:
        ranked = scoring.rank(ranked, scoring.greater_is_better(run.task, rank_by), complete=lambda v: v["complete"],
                              score=lambda v: v["scores"].get(rank_by, {}).get("mean"))
        for number, v in enumerate(ranked, 1):
            v["rank"] = number
    unfinished = [v for v in ranked if not v["complete"] and not v["pruned"]]
    return {
        "run": run.pk,
        "status": run.status,
        "task": run.task,
        "metric": primary,
        "metric_label": metric_label(primary),
        "greater_is_better": greater,
        "metrics": names,
        "rank_by": rank_by,
        "rank_by_label": metric_label(rank_by),
        "rank_by_greater": scoring.greater_is_better(run.task, rank_by),
        "columns": [(n, metric_label(n)) for n in names],
        "by_epoch": by_epoch,
        "folds_expected": folds_expected,
        "leaderboard": ranked,
        "best": best,
        "best_score": best["primary"]["mean"] if best else None,
        "partial": run.status in (Run.Status.STOPPED, Run.Status.FAILED) and bool(rows),
        "unfinished": unfinished,
        "pruned": list(pruned.values()),
        "stop_rule": formatting.stop_rule_label((run.spec or {}).get("stop_rule")),
        "stop_summary": formatting.stop_rule_summary(run.summary),
        "fits": len(rows),
        "rows": rows,
    }


def best_or_first(board):
    """The row a page or the API shows when none is asked for: the best, else the first on the leaderboard."""
    return board["best"] or (board["leaderboard"][0] if board["leaderboard"] else None)


def best_score(run):
    """The best variant's mean (what `Run.best_score` stores once the run has ended)."""
    return leaderboard(run)["best_score"]


def sorted_by(board, column, better_first=True):
    """The leaderboard ordered by `column`'s mean: better first (or worse first); unscored rows last."""
    if column not in board["metrics"]:
        column = board["metric"]
    greater = scoring.greater_is_better(board["task"], column)
    return scoring.rank(board["leaderboard"], greater if better_first else not greater,
                        score=lambda v: v["scores"].get(column, {}).get("mean"))
