"""Small formatting filters shared by the run pages and the live fragments."""

from django import template

from runs import formatting

register = template.Library()


@register.filter
def seconds(value):
    """12.3 -> "12 s", 75 -> "1 min 15 s", 3720 -> "1 h 02 min" (runs.formatting.duration)."""
    return formatting.duration(value)


@register.filter
def compact(value):
    """130 -> "2m": the short durations of a list row (runs.formatting.compact)."""
    return formatting.compact(value)


@register.filter
def score(value, digits=4):
    """Integers bare, floats to 4 decimals, tiny values in exponent form (runs.formatting.number)."""
    return formatting.number(value, digits)


@register.filter
def fixed(value, digits=2):
    """0.125 -> "0.13": a fixed number of decimals, as floatformat rounds (runs.formatting.fixed)."""
    return formatting.fixed(value, digits)


@register.filter
def mean_std(summary):
    """{"mean", "std"} -> "0.9667 ± 0.0236"."""
    return formatting.mean_std(summary)


@register.inclusion_tag("includes/status_badge.html")
def status_badge(run, badge_id="", live=False, oob=False):
    """The one status badge: every page and the admin render it (runs.admin.status_badge). `run` is a Run, or
    anything with `status` and `get_status_display` (a status event's state, fragments.state_context)."""
    return {"run": run, "badge_id": badge_id, "live": live, "oob": oob}


@register.simple_tag
def fits_label(run, count=None):
    return formatting.fits(run.runner, run.status, run.finished_fits if count is None else count)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


RUNNER_LABELS = {"cv": "Cross-validation", "training": "Training", "evaluation": "Evaluation"}


@register.filter
def runner_label(runner):
    return RUNNER_LABELS.get(runner, runner)


