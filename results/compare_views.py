"""/compare/?runs=1,2,3: two to four runs side by side (results.compare). Someone else's run in the list is a 404.

The same page serves a shared comparison (sharing.views) through compare_page with `share` set: read-only,
with no link to anything of the owner's.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.vary import vary_on_headers

from accounts import access

from . import compare as compare_module
from runs.models import Run

# While a compared run is active, the compare body re-renders itself this often (htmx polling).
POLL_SECONDS = 3


def runs_to_compare(viewer, ids):
    """The runs `ids` names, in that order, if the viewer may see every one; else 404 (one foreign or
    missing run hides the whole comparison: nothing is shown about the others either)."""
    found = {run.pk: run for run in access.visible(viewer, Run.objects.all()).filter(pk__in=ids)}
    if len(found) != len(ids):
        raise Http404("No such runs")
    return [found[pk] for pk in ids]


@login_required
@never_cache
@vary_on_headers("HX-Request", "HX-Target")
def compare(request):
    # "?runs=1,2" from a link, or "?runs=1&runs=2" from the runs list's checkboxes.
    text = ",".join(request.GET.getlist("runs"))
    try:
        ids = compare_module.parse_ids(text)
    except compare_module.BadSelection as e:
        return render(request, "runs/compare.html", {"error": str(e), "runs_param": text[:100]}, status=400)
    runs = runs_to_compare(request.user, ids)
    runs_param = ",".join(map(str, ids))
    page_url = f"{reverse('results:compare')}?runs={runs_param}"
    can_share = all(access.can_act(request.user, run) for run in runs)
    return compare_page(request, runs, page_url, {"runs_param": runs_param, "can_share": can_share})


def compare_page(request, runs, page_url, extra=None, share=None):
    """The compare page of `runs` (already checked), or one of its fragments for htmx: the body its poll
    asks for, or the spec table the "Differences only" checkbox swaps. `page_url`: this page's own URL,
    which the poll re-reads (with ?runs= for the owner's, the link itself for a shared one)."""
    ctx = compare_module.compare(runs, request.GET.getlist("settings"))
    ctx.update(extra or {}, page_url=page_url, poll_seconds=POLL_SECONDS, share=share)
    template = "runs/compare.html"
    if request.htmx:
        template += "#spec-table" if request.htmx.target == "spec-table" else "#compare-body"
    return render(request, template, ctx)
