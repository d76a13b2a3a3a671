"""How numbers read on every page, in the admin and in the CLI: the one duration and score format.

Plain Python (no Django) so the CLI, the admin and the template filters share it. static/js/run_format.js ticks
running clocks in the browser with the same rules (a browser test compares the two).
"""

import math
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

MISSING = "—"
# Below this magnitude 4 decimals would read as 0.0000: such values are shown in exponent form.
TINY = 1e-3


def _whole_seconds(value):
    """Seconds (number, text or timedelta) rounded half up, as JavaScript's Math.round does (Python's round()
    rounds half to even); None for what is not a finite number."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return math.floor(max(0.0, value) + 0.5)


def duration(value, missing=MISSING):
    """12.3 -> "12 s", 75 -> "1 min 15 s", 3720 -> "1 h 02 min". Seconds (number or text) or a timedelta.

    Rounds half up, as JavaScript's Math.round does (Python's round() rounds half to even)."""
    total = _whole_seconds(value)
    if total is None:
        return missing
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def wide_range(seconds, low, high):
    """(low, high) when the estimate is unsure enough to be shown as a range (engine.runners.eta.is_sure), else
    (None, None): the one value is shown."""
    from engine.runners.eta import is_sure

    if seconds is None or low is None or high is None or is_sure(low, high):
        return None, None
    return low, high


def estimate(seconds, low=None, high=None, missing=MISSING):
    """Time left: "~40 s" when sure (no range), else the range in the larger end's unit: "~20–45 s",
    "~2–4 min", "~40 s–3 min", "~1–2 h". The low end rounds down and the high end up, so the range still holds
    what the estimate says. static/js/run_format.js formats the same (formatEstimate)."""
    if low is None or high is None or low == "" or high == "":
        total = _whole_seconds(seconds)
        return missing if total is None else "~" + duration(total)
    low_total, high_total = _whole_seconds(low), _whole_seconds(high)
    if low_total is None or high_total is None:
        return estimate(seconds, missing=missing)
    lo, lo_unit = _rough(low_total, math.floor)
    hi, hi_unit = _rough(max(high_total, low_total), math.ceil)
    if lo_unit == hi_unit:
        return f"~{lo} {hi_unit}" if lo == hi else f"~{lo}–{hi} {hi_unit}"
    return f"~{lo} {lo_unit}–{hi} {hi_unit}"


def _rough(total, rounding):
    """Whole seconds as (number, unit) in seconds, minutes or hours, rounded by `rounding` (floor or ceil)."""
    if total < 60:
        return total, "s"
    if total < 3600:
        return rounding(total / 60), "min"
    return rounding(total / 3600), "h"


def number(value, digits=4, missing=MISSING):
    """Integers bare, floats to `digits` decimals, tiny non-zero floats in exponent form ("3.20e-05")."""
    if value is None or value == "" or isinstance(value, bool):
        return missing
    if isinstance(value, int):
        return str(value)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(value):
        return missing
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value != 0 and abs(value) < TINY:
        return f"{value:.2e}"
    return f"{value:.{int(digits)}f}"


def fixed(value, digits=2, missing=""):
    """`digits` decimals always, halves rounded up from the shortest text of the number, as Django's
    floatformat does (0.125 -> "0.13"): fit times read this way on the run page and the results page.
    Empty for what is not a finite number, as floatformat gives for None."""
    if value is None or value == "" or isinstance(value, bool):
        return missing
    try:
        exact = Decimal(repr(float(value)))
    except (TypeError, ValueError):
        return missing
    if not exact.is_finite():
        return missing
    rounded = exact.quantize(Decimal(1).scaleb(-int(digits)), rounding=ROUND_HALF_UP)
    return str(rounded.copy_abs() if rounded == 0 else rounded)  # -0.004 reads "0.00", not "-0.00"


def mean_std(summary, digits=4, missing=MISSING):
    """A {"mean", "std"} summary as "0.9667 ± 0.0236" (just the mean when there is no spread).

    One value has no spread to speak of: its std (0 by the formula) reads "± —", not "± 0.0000", which would
    claim the folds agreed (an unfinished variant with one fold)."""
    if not summary or summary.get("mean") is None:
        return missing
    text = number(summary["mean"], digits)
    if summary.get("std") is not None:
        one = summary.get("count") is not None and summary["count"] < 2
        text += f" ± {missing if one else number(summary['std'], digits)}"
    return text


def percent(finished, total, progress=None):
    """Percent complete, 0 to 100 with one decimal: fits done of fits planned, else the 0..1 `progress`.

    The one percent: the run row, the live progress fragment and the CLI all show this figure."""
    if total:
        return round(100.0 * min(finished or 0, total) / total, 1)
    try:
        return round(100.0 * max(0.0, min(1.0, float(progress or 0))), 1)
    except (TypeError, ValueError):
        return 0.0


def fits(runner, status, count):
    """The fits a run made, saying so when a completed cross-validation refitted its best variant on all the
    data ("50 + refit"): the refit is a model trained, but not one of the fits the progress counts."""
    return f"{count} + refit" if runner == "cv" and status == "completed" else str(count)


def ended(status, finished, total):
    """The progress line of a run that has ended: "Completed", or how far a stopped or failed one got ("Stopped
    after 7 of 25 fits"), never the last step it was on ("Fitting fold 2/5" would say it still works)."""
    if status == "completed":
        return "Completed"
    word = {"stopped": "Stopped", "failed": "Failed"}.get(status, str(status).capitalize())
    return f"{word} after {finished or 0} of {total} fit{'s' if total != 1 else ''}" if total else word


def numbers(values, noun):
    """Sorted whole numbers as ranges, with the noun: [2] -> "fold 2", [1, 2, 3, 5] -> "folds 1–3, 5"."""
    values = sorted(set(values))
    spans = []
    for value in values:
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)
    return f"{noun}{'s' if len(values) > 1 else ''} {text}" if values else ""


def compact(value, missing=MISSING):
    """The short form a list row has room for: 45 -> "45s", 130 -> "2m", 3720 -> "1h 2m". Seconds or a timedelta.

    static/js/runs_list.js ticks the same form ("Started 2m ago")."""
    total = _whole_seconds(value)
    if total is None:
        return missing
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m"
    return f"{total // 3600}h {total % 3600 // 60}m"


def text(value):
    """A number as an attribute holds it: as str() prints it, empty for None (the unlocalize filter's text)."""
    return "" if value is None else str(value)


def signed(value, digits=4, missing=MISSING):
    """A difference with its sign always written: "+0.0123", "−0.0123" (a true minus), "0.0000"."""
    text = number(value, digits, missing)
    if text == missing or text.startswith(("−", "∞")):
        return text
    if text.startswith("-"):
        return "−" + text[1:]
    return text if float(value) == 0 or text.strip("0.") == "" else "+" + text


def stop_rule_summary(summary):
    """What a run's stop rule saved, from its summary: "pruned 14 of 30 variants; 52 of 150 fits saved"
    (engine/runners/stop_rules.py). "" for a run without a rule."""
    if not isinstance(summary, dict) or not summary.get("stop_rule"):
        return ""
    variants, total = summary.get("variants") or 0, summary.get("fits_total") or 0
    head = "target reached; " if summary.get("target_reached") else ""
    verb = "stopped" if summary.get("target_reached") else "pruned"
    return (f"{head}{verb} {summary.get('pruned_variants', 0)} of {variants} variant{'s' if variants != 1 else ''}; "
            f"{summary.get('fits_saved', 0)} of {total} fits saved")


def stop_rule_label(rule):
    """A spec's stop rule in words: "median after 2 folds", "successive halving by 3", "target 0.95"."""
    if not isinstance(rule, dict):
        return ""
    if rule.get("kind") == "median":
        return f"median after {rule.get('after_folds')} folds"
    if rule.get("kind") == "successive_halving":
        return f"successive halving by {rule.get('factor')}"
    if rule.get("kind") == "target":
        return f"target {number(rule.get('value'))}"
    return ""
