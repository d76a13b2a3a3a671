"""Small formatting filters shared by the run pages and the live fragments."""

import math
from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def seconds(value):
    """12.3 -> "12 s", 75 -> "1 min 15 s", 3720 -> "1 h 2 min". Accepts seconds or a timedelta."""
    if value is None or value == "":
        return "—"
    if isinstance(value, timedelta):
        value = value.total_seconds()
    try:
        total = int(round(float(value)))
    except (TypeError, ValueError):
        return "—"
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def score(value, digits=4):
    if value is None or value == "":
        return "—"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(value):
        return "—"
    return f"{value:.{int(digits)}f}"


@register.filter
def percent(value):
    """0..1 -> 0..100 with one decimal, for widths and labels."""
    try:
        return round(max(0.0, min(1.0, float(value))) * 100, 1)
    except (TypeError, ValueError):
        return 0.0


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


RUNNER_LABELS = {"cv": "Cross-validation", "training": "Training", "evaluation": "Evaluation"}


@register.filter
def runner_label(runner):
    return RUNNER_LABELS.get(runner, runner)
