"""Diagnostic plots as geometry for inline SVG, drawn by templates/runs/plots/: the same approach as the fold
chart (results.charts says why: no chart library, no script, real text for screen readers), sharing its
ranges and colours. Each function takes what results.diagnostics made and returns a dict a template draws, with
the numbers drawn beside the pixels, so a template can also list them in a table.
"""

from . import charts

SIZE = 300  # square: a curve's two axes share a unit (ROC, PR, calibration, predicted against actual)
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 40


def _frame(x_label, y_label, x_range=(0.0, 1.0), y_range=(0.0, 1.0), width=SIZE, height=SIZE):
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    (x0, x1), (y0, y1) = x_range, y_range

    def px(x):
        return round(LEFT + (x - x0) / (x1 - x0) * plot_w, 1)

    def py(y):
        return round(TOP + (y1 - y) / (y1 - y0) * plot_h, 1)

    ticks = [i / 4 for i in range(5)]
    frame = {
        "width": width, "height": height, "left": LEFT, "right": width - RIGHT, "top": TOP,
        "bottom": height - BOTTOM, "x_label": x_label, "y_label": y_label,
        "x_label_x": LEFT + plot_w / 2, "x_label_y": height - 6, "y_label_y": TOP + plot_h / 2,
        "x_ticks": [{"x": px(x0 + t * (x1 - x0)), "value": x0 + t * (x1 - x0)} for t in ticks],
        "y_ticks": [{"y": py(y0 + t * (y1 - y0)), "value": y0 + t * (y1 - y0)} for t in ticks],
    }
    return frame, px, py


def _line(xs, ys, px, py):
    return " ".join(f"{px(x)},{py(y)}" for x, y in zip(xs, ys) if x is not None and y is not None)


def _values(xs, ys):
    """The drawn values as text, "x,y x,y ...": a polyline's data-values, for tests and anyone reading the
    numbers behind the pixels."""
    return " ".join(f"{x!r},{y!r}" for x, y in zip(xs, ys))


def curve_plot(curves, x_label, y_label, reference=None):
    """ROC or PR (results.diagnostics._curves): a thin line per fold, the mean over folds and its ± std band.
    `reference`: "diagonal" (chance, for ROC) or a y value (PR's base rate)."""
    if not curves:
        return None
    frame, px, py = _frame(x_label, y_label)
    folds = [{"fold": c["fold"], "score": c["score"], "line": _line(c["x"], c["y"], px, py),
              "values": _values(c["x"], c["y"]), "count": len(c["x"]), "color": n % 4}
             for n, c in enumerate(curves["by_fold"])]
    mean = curves["mean"]
    band = line = None
    if mean and mean["folds"] > 1:
        upper = [f"{px(x)},{py(y)}" for x, y in zip(mean["x"], mean["high"])]
        lower = [f"{px(x)},{py(y)}" for x, y in reversed(list(zip(mean["x"], mean["low"])))]
        band, line = " ".join(upper + lower), _line(mean["x"], mean["mean"], px, py)
    ref = None
    if reference == "diagonal":
        ref = {"x1": px(0), "y1": py(0), "x2": px(1), "y2": py(1)}
    elif isinstance(reference, float):
        ref = {"x1": px(0), "y1": py(reference), "x2": px(1), "y2": py(reference)}
    return {**frame, "folds": folds, "band": band, "mean_line": line, "reference": ref,
            "score_name": curves["score"], "score_mean": curves["score_mean"], "score_std": curves["score_std"]}


def calibration_plot(per_fold):
    """Observed fraction of positives against the mean predicted probability, per fold, with the diagonal."""
    if not per_fold:
        return None
    frame, px, py = _frame("Mean predicted probability", "Fraction of positives")
    folds = [{"fold": f["fold"], "line": _line(f["predicted"], f["observed"], px, py), "color": n % 4,
              "values": _values(f["predicted"], f["observed"]), "counts": f["counts"],
              "dots": [{"x": px(a), "y": py(b)} for a, b in zip(f["predicted"], f["observed"])]}
             for n, f in enumerate(per_fold)]
    return {**frame, "folds": folds, "reference": {"x1": px(0), "y1": py(0), "x2": px(1), "y2": py(1)}}


def confusion_plot(confusion, normalised=False):
    """A cell per (true, predicted) class, shaded by the row's fraction; the counts (or fractions) written."""
    if not confusion:
        return None
    labels, counts, shares = confusion["labels"], confusion["counts"], confusion["normalised"]
    n = len(labels)
    cell = max(min(220 // max(n, 1), 64), 18)
    left, top = 72, 16
    cells = []
    for i in range(n):
        for j in range(n):
            cells.append({"x": left + j * cell, "y": top + i * cell, "true": labels[i], "predicted": labels[j],
                          "count": counts[i][j], "share": shares[i][j],
                          "shade": min(int(shares[i][j] * 5), 4), "tx": left + j * cell + cell / 2,
                          "ty": top + i * cell + cell / 2})
    return {"width": left + n * cell + 8, "height": top + n * cell + 44, "cell": cell, "left": left, "top": top,
            "cells": cells, "labels": labels, "normalised": normalised,
            "col_labels": [{"x": left + j * cell + cell / 2, "label": l} for j, l in enumerate(labels)],
            "row_labels": [{"y": top + i * cell + cell / 2, "label": l} for i, l in enumerate(labels)],
            "x_label_x": left + n * cell / 2, "y_label_y": top + n * cell / 2, "bottom": top + n * cell}


def scatter_plot(folds, residuals=False):
    """Regression, every fold's sampled rows: predicted against actual (with y = x), or the residual
    (actual - predicted) against predicted (with y = 0), as PredictionErrorDisplay draws them."""
    points = []
    for n, f in enumerate(folds):
        for a, p in zip(f.get("actual") or [], f.get("predicted") or []):
            if a is not None and p is not None:
                points.append((f["fold"], n % 4, p, a - p if residuals else a))
    if not points:
        return None
    xs, ys = [p[2] for p in points], [p[3] for p in points]
    if residuals:
        x_range, y_range = charts.nice_range(min(xs), max(xs)), charts.nice_range(min(ys + [0.0]), max(ys + [0.0]))
    else:  # one range for both axes, so y = x is the diagonal
        x_range = y_range = charts.nice_range(min(xs + ys), max(xs + ys))
    frame, px, py = _frame("Predicted", "Residual (actual − predicted)" if residuals else "Actual",
                           x_range, y_range)
    dots = [{"fold": fold, "color": color, "x": px(x), "y": py(y), "vx": x, "vy": y}
            for fold, color, x, y in points]
    if residuals:
        ref = {"x1": px(x_range[0]), "y1": py(0.0), "x2": px(x_range[1]), "y2": py(0.0)}
    else:
        ref = {"x1": px(x_range[0]), "y1": py(x_range[0]), "x2": px(x_range[1]), "y2": py(x_range[1])}
    return {**frame, "dots": dots, "reference": ref, "residuals": residuals,
            "rows": sum(f.get("rows", 0) for f in folds), "shown": len(points)}


def importance_plot(importance, top=15):
    """Horizontal bars of the mean importance over folds, best first, with a ± std whisker."""
    if not importance or not importance["features"]:
        return None
    rows = importance["features"][:top]
    high = max(r["mean"] + r["std"] for r in rows) or 1.0
    left, bar, width = 150, 18, 460
    plot_w = width - left - 16

    def px(v):
        return round(left + v / high * plot_w, 1)

    bars = [{"y": 8 + i * (bar + 6), "feature": r["feature"], "mean": r["mean"], "std": r["std"],
             "w": max(px(r["mean"]) - left, 0.5), "lo": px(max(r["mean"] - r["std"], 0)),
             "hi": px(r["mean"] + r["std"]), "mid": 8 + i * (bar + 6) + bar / 2} for i, r in enumerate(rows)]
    return {"width": width, "height": 16 + len(rows) * (bar + 6), "left": left, "bar": bar, "bars": bars,
            "source": importance["source"]}


def page_plots(diagnosed):
    """Every plot of one variant's diagnostics (results.diagnostics.for_variant), by kind; None without any."""
    if not diagnosed:
        return None
    if diagnosed["kind"] == "regression":
        return {"kind": "regression", "predicted": scatter_plot(diagnosed["folds"]),
                "residuals": scatter_plot(diagnosed["folds"], residuals=True),
                "importance": importance_plot(diagnosed["importance"])}
    pr = diagnosed.get("pr")
    base = pr["by_fold"][0]["base_rate"] if pr and len(pr["by_fold"]) == 1 else None
    return {"kind": "classification", "curve_of": diagnosed.get("curve_of", ""),
            "confusion": confusion_plot(diagnosed.get("confusion")),
            "confusion_normalised": confusion_plot(diagnosed.get("confusion"), normalised=True),
            "roc": curve_plot(diagnosed.get("roc"), "False positive rate", "True positive rate", "diagonal"),
            "pr": curve_plot(pr, "Recall", "Precision", base),
            "calibration": calibration_plot(diagnosed.get("calibration")),
            "importance": importance_plot(diagnosed["importance"])}


def overlay_plot(found, name, x_label, y_label):
    """Compare: each run's mean `name` curve ("roc" or "pr") over its folds, one colour per run, with its
    band. `found`: [(label, results.diagnostics.for_variant(...) or None)]; None when no run has the curve."""
    frame, px, py = _frame(x_label, y_label)
    series = []
    for label, diagnosed in found:
        curves = (diagnosed or {}).get(name)
        mean = curves and curves["mean"]
        if not mean:
            continue
        upper = [f"{px(x)},{py(y)}" for x, y in zip(mean["x"], mean["high"])]
        lower = [f"{px(x)},{py(y)}" for x, y in reversed(list(zip(mean["x"], mean["low"])))]
        series.append({"label": label, "color": len(series) % 4, "line": _line(mean["x"], mean["mean"], px, py),
                       "values": _values(mean["x"], mean["mean"]), "band": " ".join(upper + lower),
                       "score_name": curves["score"], "score_mean": curves["score_mean"],
                       "score_std": curves["score_std"]})
    if not series:
        return None
    reference = {"x1": px(0), "y1": py(0), "x2": px(1), "y2": py(1)} if name == "roc" else None
    return {**frame, "kind": name, "series": series, "reference": reference,
            "title": "ROC curves" if name == "roc" else "Precision-recall curves"}
