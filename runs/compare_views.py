"""/compare/?runs=1,2,3: two to four runs side by side (runs.compare). Someone else's run in the list is a 404."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from . import compare as compare_module
from .models import Run

# While a compared run is active, the compare body re-renders itself this often (htmx polling).
POLL_SECONDS = 3


@login_required
@never_cache
def compare(request):
    # "?runs=1,2" from a link, or "?runs=1&runs=2" from the runs list's checkboxes.
    text = ",".join(request.GET.getlist("runs"))
    try:
        ids = compare_module.parse_ids(text)
    except compare_module.BadSelection as e:
        return render(request, "runs/compare.html", {"error": str(e), "runs_param": text[:100]}, status=400)
    found = {run.pk: run for run in Run.objects.visible_to(request.user).filter(pk__in=ids)}
    if len(found) != len(ids):
        # One foreign (or missing) run hides the whole comparison: nothing is shown about the others either.
        raise Http404("No such runs")
    ctx = compare_module.compare([found[pk] for pk in ids])
    ctx.update(runs_param=",".join(map(str, ids)), poll_seconds=POLL_SECONDS)
    template = "runs/compare.html#compare-body" if request.htmx else "runs/compare.html"
    return render(request, template, ctx)
