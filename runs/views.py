"""The runs list, the live run page and its small endpoints (stop, log history, polling, results, model)."""


from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from accounts import access
from accounts.quotas import QuotaExceeded
from config.query_params import whole_number
from experiments.models import Experiment
from engine.spec import SpecError

from . import fragments, listing, queue, result_views
from . import results as results_module
from .control import CannotCancel, cancel_run, launch_run
from .downloads import serve_verified
from engine import scoring
from .forms import LaunchForm
from .models import Run, events_after

RUNS_PER_PAGE = 25
# A poll answers with at most this many events; the next poll fetches the rest.
POLL_BATCH = 1000


def _get_run_for_user(request, run_id):
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


@login_required
@never_cache
def detail(request, run_id):
    run = _get_run_for_user(request, run_id)
    waiting = queue.waiting_reason(run, queue.snapshot(request)) if run.status == Run.Status.QUEUED else None
    ctx = fragments.page_context(run, waiting)
    ctx["can_share"] = access.can_act(request.user, run)
    return render(request, "runs/detail.html", ctx)


@login_required
@require_POST
def cancel(request, run_id):
    run = _get_run_for_user(request, run_id)
    try:
        run = cancel_run(run, by=request.user)
    except CannotCancel as e:
        if request.htmx:
            return HttpResponse(str(e), status=409, content_type="text/plain; charset=utf-8")
        ctx = fragments.page_context(run)
        ctx["stop_error"] = str(e)
        return render(request, "runs/detail.html", ctx, status=409)
    if request.htmx and request.GET.get("from") == "list":
        # A row's Stop (runs list): answer with the row itself, which htmx swaps in place.
        return HttpResponse(listing.render_row(listing.decorate([run], request)[0]))
    if request.htmx:
        # Nothing to swap: cancel_run published the status event, and the stream (or the polling fallback)
        # brings the badge, the waiting line and the actions to every watcher, this page included. An answer
        # with those regions out of band found no target: the stream had usually replaced #run-actions, and
        # with it the form that sent the request, before the answer came (htmx:oobErrorNoTarget).
        return HttpResponse(status=204)
    messages.success(request, "Stopping the run. Finished folds are kept." if run.is_active else "The run is stopped.")
    return redirect(run)


@login_required
@never_cache
def logs(request, run_id):
    """Older log lines, before seq `before`: a chunk for "Load older", or a plain page without JavaScript."""
    run = _get_run_for_user(request, run_id)
    try:
        before = whole_number(request.GET.get("before", ""))
    except ValueError:
        before = run.last_seq + 1
    lines, has_older = fragments.latest_logs(run.pk, before=before)
    ctx = {"run": run, "run_id": run.pk, "cursor": run.last_seq, "logs": lines, "has_older": has_older}
    if request.htmx:
        return render(request, "runs/logs_chunk.html", ctx)
    return render(request, "runs/logs.html", ctx)


@login_required
@never_cache
def live(request, run_id):
    """The polling fallback: the same fragments the socket sends, for the events after `after`.

    Answers 286 (htmx: stop polling) once the client has everything up to a terminal state."""
    return live_response(request, _get_run_for_user(request, run_id))


def live_response(request, run):
    """`live` for a run already checked (also a share link's, sharing.views)."""
    try:
        after = whole_number(request.GET.get("after", ""))
    except ValueError:
        after = None
    if after is None:
        html = fragments.full_state(run)
        done = run.is_terminal
    else:
        batch = events_after(run.pk, after, limit=POLL_BATCH)
        html = fragments.render_messages(run.pk, batch) if batch else fragments.cursor_html(None, after, False)
        run.refresh_from_db()
        done = run.is_terminal and (not batch or batch[-1]["seq"] >= run.last_seq)
        if not run.is_terminal:
            html += fragments.stale_html(run)
    return HttpResponse(html, status=286 if done else 200)


@login_required
@never_cache
def results(request, run_id):
    """The leaderboard (runs.results), sortable by any metric without JavaScript, and the per-fold rows."""
    return results_page(request, _get_run_for_user(request, run_id))


def results_page(request, run, share=None):
    """`results` for a run already checked. With `share` (a share link's page, sharing.views) the same template
    renders read-only: no actions, no export, no links to the owner's other objects."""
    board = results_module.leaderboard(run)
    # ?rank_by= re-ranks the leaderboard by another recorded metric (as the API's results endpoint does);
    # one the run did not record is a form error, answered 400 with the page ranked by the primary metric.
    rank_by, rank_error = request.GET.get("rank_by"), None
    if rank_by is not None and rank_by not in board["metrics"]:
        rank_error = f"This run did not record “{rank_by}”: pick one of the metrics it did."
    elif rank_by and rank_by != board["metric"]:
        board = results_module.leaderboard(run, board["rows"], rank_by=rank_by)
    sort = request.GET.get("sort")
    if sort not in board["metrics"]:
        sort = board["rank_by"]
    better_first = request.GET.get("dir") != "worse"
    ctx = {
        "run": run,
        "board": board,
        # The default order is the leaderboard's own ranking (finished variants before unfinished ones).
        "ranked": board["leaderboard"] if sort == board["rank_by"] and better_first
        else results_module.sorted_by(board, sort, better_first=better_first),
        "headers": _sort_headers(board, sort, better_first),
        "rank_error": rank_error,
        "rank_query": urlencode({"rank_by": board["rank_by"]}) + "&" if board["rank_by"] != board["metric"] else "",
        **result_views.results_extras(request, run, board),
    }
    if share is not None:
        ctx.update(share=share, promotions=[], can_promote=False)
    # htmx asks for the fold chart of another row only; the same template renders it for the full page.
    template = "runs/results.html#fold-chart" if request.htmx else "runs/results.html"
    return render(request, template, ctx, status=400 if rank_error else 200)


def _sort_headers(board, sort, better_first):
    """One header per metric: its link sorts better first, or worse first when it is already sorted so."""
    headers = []
    for name, label in board["columns"]:
        active = name == sort
        greater = scoring.greater_is_better(board["task"], name)
        # aria-sort says how the values run: better first is descending when higher is better.
        descending = greater == better_first
        headers.append({
            "name": name,
            "label": label,
            "active": active,
            "primary": name == board["metric"],
            "next_dir": "worse" if active and better_first else "better",
            "aria_sort": ("descending" if descending else "ascending") if active else "",
            "arrow": ("▼" if descending else "▲") if active else "",
            "better": "higher" if greater else "lower",
        })
    return headers


@login_required
def download_model(request, run_id):
    """The run's model bundle, verified against its SHA-256 before it is sent (runs.downloads)."""
    run = _get_run_for_user(request, run_id)
    if not run.model_file:
        raise Http404("This run has no model bundle")
    return serve_verified(request, run.model_file, run.model_sha256)
