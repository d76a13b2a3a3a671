"""Fold-score charts as geometry for inline SVG, drawn by the templates (results page and compare page).

Why server-rendered SVG: the pages are rendered on the server and swapped by htmx, and the Content-Security-
Policy forbids inline script. An SVG built here arrives inside the HTML fragment htmx swaps in, needs no chart
library, no JavaScript and no second request for data, works without JavaScript (`?row=` re-renders the
page), scales with its box on a phone, and its axis labels and <title>s are real text for screen readers.
"""

import math

WIDTH, HEIGHT = 560, 240
# Room for the y tick labels on the left and the x axis title below.
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 12, 40
Y_TICKS = 5


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def nice_range(low, high):
    """A padded [low, high] so flat or single-point series still get a readable axis."""
    if high - low < 1e-12:
        pad = abs(low) * 0.05 or 0.05
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return low - pad, high + pad


def fold_chart(series, y_label, x_label="Fold"):
    """`series`: [{"label", "points": [(x, value), ...]}, ...] -> a dict the templates draw, or None.

    x is the fold (or epoch) number, shared by every series, so runs are compared fold by fold.
    """
    values = [v for s in series for _, v in s["points"] if _finite(v)]
    xs = sorted({x for s in series for x, v in s["points"] if _finite(v)})
    if not values:
        return None
    low, high = nice_range(min(values), max(values))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x_min, x_max = xs[0], xs[-1]

    def px(x):
        if x_max == x_min:
            return round(LEFT + plot_w / 2, 1)
        return round(LEFT + (x - x_min) / (x_max - x_min) * plot_w, 1)

    def py(v):
        return round(TOP + (high - v) / (high - low) * plot_h, 1)

    drawn = []
    for number, s in enumerate(series):
        points = [(x, v) for x, v in s["points"] if _finite(v)]
        dots = [{"x": px(x), "y": py(v), "fold": x, "value": v} for x, v in points]
        drawn.append({
            "label": s["label"],
            "color": number % 4,  # .series-0 … .series-3 in results.css
            "line": " ".join(f"{d['x']},{d['y']}" for d in dots),
            "dots": dots,
        })
    y_ticks = []
    for i in range(Y_TICKS):
        v = low + (high - low) * i / (Y_TICKS - 1)
        y_ticks.append({"y": py(v), "value": v})
    # At most ~12 labelled folds; a long training run labels every n-th epoch.
    stride = max(1, math.ceil(len(xs) / 12))
    x_ticks = [{"x": px(x), "value": x} for x in xs[::stride]]
    return {
        "width": WIDTH, "height": HEIGHT,
        "left": LEFT, "right": WIDTH - RIGHT, "top": TOP, "bottom": HEIGHT - BOTTOM,
        "x_label": x_label, "y_label": y_label,
        "x_label_x": LEFT + plot_w / 2, "x_label_y": HEIGHT - 6,
        "y_label_y": TOP + plot_h / 2,
        "x_ticks": x_ticks, "y_ticks": y_ticks, "series": drawn,
        "low": min(values), "high": max(values),
    }


def variant_points(board, variant, metric=None):
    """(fold or epoch, score) of one leaderboard row, in fold order."""
    metric = metric or board["metric"]
    points = []
    for row in board["rows"]:
        if row["branch"] == variant["branch"] and row["variant"] == variant["variant"]:
            x = row["epoch"] if board["by_epoch"] else row["fold"]
            points.append((x, row["values"].get(metric)))
    return sorted(points, key=lambda p: (p[0] is None, p[0] or 0))
