"""The runs list (filters, pages, the polling fallback of its live rows) and launching a run from it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from accounts import access
from accounts.quotas import QuotaExceeded
from config.query_params import whole_number
from engine.spec import SpecError
from experiments.models import Experiment

from . import listing
from .control import launch_run
from .forms import LaunchForm
from .models import Run

RUNS_PER_PAGE = 25


def visible_run_or_404(request, run_id):
    """The run `run_id` if the user may see it (accounts.access), for every page of one run (live, results)."""
    return access.get_visible_or_404(request.user, Run.objects.select_related("experiment", "owner"), pk=run_id)


@login_required
@vary_on_headers("HX-Request")
def run_list(request):
    """Runs newest first, filtered by the GET form (runs/listing.py), so a filtered list can be bookmarked.
    Bad filter values answer 400 with the field errors, and no runs."""
    return _list_page(request)


def _list_page(request, launch_form=None, status=None):
    """The runs list; with `launch_form`, a refused launch's form, its errors shown beside it."""
    filters = listing.ListFilters(request.GET, request.user)
    valid = filters.is_valid()
    runs = listing.runs_for(request.user, filters) if valid else Run.objects.none()
    paginator = Paginator(runs, RUNS_PER_PAGE)
    # A page that is not a number, or past the end, is not silently another page: the first (or last) one
    # is shown with a notice saying so.
    notice = ""
    try:
        page = paginator.page(request.GET.get("page") or 1)
    except PageNotAnInteger:
        page = paginator.page(1)
        notice = f"“{request.GET['page']}” is not a page number; showing the first page."
    except EmptyPage:
        page = paginator.page(paginator.num_pages)
        notice = f"There is no page {request.GET['page']}; showing the last page."
    rows = listing.decorate(page.object_list, request)
    ctx = {
        "page": page,
        "rows": rows,
        "filters": filters,
        "page_notice": notice,
        "experiments": Experiment.objects.filter(owner=request.user).order_by("name"),
        "outdated_days": listing.outdated_days(),
        # Runs launched elsewhere appear at the top of the first page, unless a filter would hide them.
        "accepts_new": page.number == 1 and filters.shows_new_runs,
        "max_id": max((run.pk for run in rows), default=0),
        "launch_form": launch_form,
    }
    template = "runs/list.html"
    if request.htmx and launch_form is None:
        template += "#runs-table"
    return render(request, template, ctx, status=status or (200 if valid else 400))


@login_required
@never_cache
def list_rows(request):
    """The runs list's polling fallback: the same JSON the list stream sends, for the rows the page asks about
    (`ids`), and with `after` the runs newer than that id. Only the user's runs (staff: all)."""
    try:
        ids = listing.parse_ids(request.GET.get("ids"))
        after = whole_number(request.GET["after"]) if request.GET.get("after") else None
    except ValueError as e:
        text = str(e) if "at most" in str(e) else "ids: run ids separated by commas; after: a run id."
        return JsonResponse({"errors": {"ids": [text]}}, status=400)
    rows = listing.rows_for(request.user, ids, after, request)
    return HttpResponse(listing.rows_payload(rows), content_type="application/json")


@login_required
@require_POST
def launch(request):
    """Launch one of the user's experiments. Anything but one of their experiments' ids is a field error (400);
    a launch past their quota is one too, with 409."""
    form = LaunchForm(request.POST, request.user)
    if not form.is_valid():
        return _list_page(request, launch_form=form, status=400)
    experiment = form.cleaned_data["experiment"]
    try:
        run = launch_run(request.user, experiment=experiment)
    except SpecError as e:
        problems = "; ".join(f"{path}: {msg}" for path, msgs in e.errors.items() for msg in msgs)
        messages.error(request, f"“{experiment.name}” cannot run: {problems}")
        return redirect("runs:list")
    except QuotaExceeded as e:
        form.add_error("experiment", str(e))
        return _list_page(request, launch_form=form, status=409)
    return redirect(run)
