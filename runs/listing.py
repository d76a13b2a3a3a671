"""The runs list: its filters (all in the URL), the page of runs, and what each row shows.

    ListFilters(request.GET)   status, experiment, date range, outdated, name search; field errors on bad input
    runs_for(user, filters)    the filtered queryset (visible_to first: staff see all)
    decorate(runs, request)    per row: step "3 of 5", outdated flag, queue position and waiting reason

The page (views.run_list), the polling fallback (views.list_rows) and the live list stream (live/listfeed.py)
all render rows through `decorate` and the `run-row` partial of templates/runs/list.html, so a row looks the
same however it arrived. Decorating a page costs no query per row: steps come from the runner's fixed plan
(engine.steps) and a page's queued runs share one queue snapshot (runs.worker.queue).
"""

import json
from datetime import datetime, time, timedelta

from django import forms
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from config.query_params import whole_number
from experiments.models import Experiment

from .worker import queue
from engine.steps import steps_for
from .models import Run

STATUS_CHOICES = [("", "Any status"), ("active", "Active (queued, running, stopping)")] + list(Run.Status.choices)
OUTDATED_CHOICES = [("", "Any age"), ("only", "Only outdated"), ("hide", "Hide outdated")]
# Columns the rows never read; a page of 25 runs still should not carry every traceback.
DEFERRED = ("traceback", "library_versions", "warnings", "summary")


def outdated_days():
    return settings.RUNWATCH["OUTDATED_DAYS"]


def outdated_before(now=None):
    """Finished runs that ended before this moment are outdated."""
    return (now or timezone.now()) - timedelta(days=outdated_days())


class ListFilters(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Name")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    experiment = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=())
    start = forms.DateField(required=False, label="Queued from")
    end = forms.DateField(required=False, label="Queued until")
    outdated = forms.ChoiceField(required=False, choices=OUTDATED_CHOICES, label="Age")

    def __init__(self, data, user):
        super().__init__(data)
        self.experiments = list(Experiment.objects.visible_to(user).order_by("name").values_list("pk", "name"))
        self.fields["experiment"].choices = [("", "Any experiment")] + self.experiments

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "The end date is before the start date.")
        return data

    @property
    def active(self):
        """Whether any filter narrows the list (an empty list then says so, not "no runs yet")."""
        return self.is_valid() and any(v not in (None, "") for v in self.cleaned_data.values())

    @property
    def shows_new_runs(self):
        """A run launched elsewhere belongs at the top of this list: no filter a new queued run could fail."""
        if not self.is_valid():
            return False
        d = self.cleaned_data
        return not (d["q"] or d["experiment"] or d["end"] or d["outdated"] == "only"
                    or d["status"] not in ("", "active", Run.Status.QUEUED))


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def runs_for(user, filters):
    """The runs `user` may see, narrowed by valid `filters`, newest first."""
    runs = Run.objects.visible_to(user).select_related("experiment").defer(*DEFERRED)
    d = filters.cleaned_data
    if d.get("q"):
        runs = runs.filter(name__icontains=d["q"])
    if d.get("status") == "active":
        runs = runs.filter(status__in=Run.ACTIVE)
    elif d.get("status"):
        runs = runs.filter(status=d["status"])
    if d.get("experiment"):
        runs = runs.filter(experiment_id=d["experiment"])
    if d.get("start"):
        runs = runs.filter(queued_at__gte=_day_start(d["start"]))
    if d.get("end"):
        runs = runs.filter(queued_at__lt=_day_start(d["end"] + timedelta(days=1)))
    if d.get("outdated") == "only":
        runs = runs.filter(status__in=Run.TERMINAL, finished_at__lt=outdated_before())
    elif d.get("outdated") == "hide":
        runs = runs.exclude(status__in=Run.TERMINAL, finished_at__lt=outdated_before())
    return runs


def step_position(run):
    """(index, total, label) of the run's current step in its runner's plan, or None."""
    if not run.current_step:
        return None
    plan = steps_for({"runner": run.runner})
    for i, (name, label) in enumerate(plan, 1):
        if name == run.current_step:
            return i, len(plan), label
    return None


def decorate(runs, request=None):
    """Set what a row shows beyond the run's own fields. One queue snapshot for all queued rows."""
    runs = list(runs)
    cutoff = outdated_before()
    snap = None
    if any(run.status == Run.Status.QUEUED for run in runs):
        snap = queue.snapshot(request)  # one Redis round trip for the whole page
    for run in runs:
        run.step = step_position(run) if run.is_active else None
        run.outdated = run.is_terminal and run.finished_at is not None and run.finished_at < cutoff
        run.position = run.waiting = None
        if run.status == Run.Status.QUEUED:
            run.waiting = queue.waiting_reason(run, snap)
            run.position = queue.queue_position(run, snap)
    return runs


MAX_IDS = 100  # rows one poll or one stream connect may ask about (a page shows 25)


def parse_ids(text):
    """"3,5,8" -> [3, 5, 8]. Raises ValueError for anything else, or for more than MAX_IDS ids."""
    parts = [p for p in (text or "").split(",") if p.strip()]
    ids = [whole_number(p) for p in parts]
    if len(ids) > MAX_IDS or any(i < 1 for i in ids):
        raise ValueError(f"Give at most {MAX_IDS} run ids, as positive numbers separated by commas.")
    return ids


def render_row(run):
    return render_to_string("runs/list.html#run-row", {"run": run, "outdated_days": outdated_days()})


def rows_payload(runs):
    """The JSON text the stream sends and the poll answers: {"type": "rows", "rows": [{run, seq, status,
    terminal, html}]}, rows in the order given. Runs must be decorated."""
    return json.dumps({"type": "rows", "rows": [
        {"run": run.pk, "seq": run.last_seq, "status": run.status, "terminal": run.is_terminal,
         "html": render_row(run)} for run in runs]})


def rows_for(user, ids=(), after=None, request=None):
    """The rows a list page asks about: the runs `ids` it shows, and when `after` is given the runs newer than
    that id (launched since the page was rendered), newest first; only runs `user` may see."""
    visible = Run.objects.visible_to(user).select_related("experiment").defer(*DEFERRED)
    found = list(visible.filter(pk__in=ids)) if ids else []
    if after is not None:
        found = list(visible.filter(pk__gt=after).exclude(pk__in=ids)[:MAX_IDS]) + found
    return decorate(found, request)
