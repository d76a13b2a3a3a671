"""A run's results page: the leaderboard sortable by any metric, the selected row's fold chart and plots, the
reproducibility panel, the model download and the actions on the results (re-run, resume, promote). Clone and
edit is a link to the wizard.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.quotas import QuotaExceeded
from experiments.describe import flatten_spec
from experiments.models import RegisteredModel
from engine import scoring
from engine.spec import SpecError
from experiments.downloads import serve_verified

from . import charts, diagnostics, plots, promotion, leaderboard
from runs import control
from runs import resume as resuming
from runs.resume import can_resume
from runs.forms import NAME_MAX, PromoteForm
from runs.models import Run
from runs.views import visible_run_or_404


@login_required
@never_cache
def results(request, run_id):
    """The leaderboard (results.leaderboard), sortable by any metric without JavaScript, and the per-fold rows."""
    return results_page(request, visible_run_or_404(request, run_id))


def results_page(request, run, share=None):
    """`results` for a run already checked. With `share` (a share link's page, sharing.views) the same template
    renders read-only: no actions, no export, no links to the owner's other objects."""
    board = leaderboard.leaderboard(run)
    # ?rank_by= re-ranks the leaderboard by another recorded metric (as the API's results endpoint does);
    # one the run did not record is a form error, answered 400 with the page ranked by the primary metric.
    rank_by, rank_error = request.GET.get("rank_by"), None
    if rank_by is not None and rank_by not in board["metrics"]:
        rank_error = f"This run did not record “{rank_by}”: pick one of the metrics it did."
    elif rank_by and rank_by != board["metric"]:
        board = leaderboard.leaderboard(run, board["rows"], rank_by=rank_by)
    sort = request.GET.get("sort")
    if sort not in board["metrics"]:
        sort = board["rank_by"]
    better_first = request.GET.get("dir") != "worse"
    ctx = {
        "run": run,
        "board": board,
        # The default order is the leaderboard's own ranking (finished variants before unfinished ones).
        "ranked": board["leaderboard"] if sort == board["rank_by"] and better_first
        else leaderboard.sorted_by(board, sort, better_first=better_first),
        "headers": _sort_headers(board, sort, better_first),
        "rank_error": rank_error,
        "rank_query": urlencode({"rank_by": board["rank_by"]}) + "&" if board["rank_by"] != board["metric"] else "",
        **results_extras(request, run, board),
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
    """The run's model bundle, verified against its SHA-256 before it is sent (experiments.downloads)."""
    run = visible_run_or_404(request, run_id)
    if not run.model_file:
        raise Http404("This run has no model bundle")
    return serve_verified(request, run.model_file, run.model_sha256)


def _wizard_url(query):
    """The wizard (experiments:new) when it is installed; its plain path until then, so nothing breaks."""
    try:
        base = reverse("experiments:new")
    except NoReverseMatch:
        base = "/experiments/new/"
    return f"{base}?{query}"


def selected_row(board, wanted):
    """The leaderboard row `?row=<branch>/<variant>` names, else the best row, else the first."""
    if wanted and "/" in wanted:
        branch, _, variant = wanted.rpartition("/")
        for v in board["leaderboard"]:
            if v["branch"] == branch and str(v["variant"]) == variant:
                return v
    return leaderboard.best_or_first(board)


def results_extras(request, run, board):
    """The results page's context beyond the leaderboard (results.views.results)."""
    row = selected_row(board, request.GET.get("row"))
    chart = plotted = None
    if row is not None:
        plotted = plots.page_plots(diagnostics.for_variant(run, row["branch"], row["variant"]))
        chart = charts.fold_chart([{"label": row["label"], "points": charts.variant_points(board, row)}],
                                  board["metric_label"], x_label="Epoch" if board["by_epoch"] else "Fold")
    return {
        "selected": row,
        "selected_key": f"{row['branch']}/{row['variant']}" if row else "",
        "chart": chart,
        "plots": plotted,
        "spec_items": flatten_spec(run.spec),
        "library_versions": sorted((run.library_versions or {}).items()),
        "promotions": RegisteredModel.objects.visible_to(request.user).filter(run=run).order_by("created"),
        "can_promote": run.status == Run.Status.COMPLETED and bool(run.model_file),
        "can_resume": can_resume(run.status, run.runner, run.partial),
        "clone_url": _wizard_url(f"from_run={run.pk}"),
        "name_max": NAME_MAX,
        "sort_query": {**({"rank_by": board["rank_by"]} if board["rank_by"] != board["metric"] else {}),
                       **{k: request.GET[k] for k in ("sort", "dir") if request.GET.get(k)}},
    }


@login_required
@require_POST
def rerun(request, run_id):
    run = visible_run_or_404(request, run_id)
    try:
        new = control.rerun(run, owner=request.user)
    except SpecError as e:  # e.g. its CSV dataset was deleted since
        problems = "; ".join(f"{path}: {msg}" for path, msgs in e.errors.items() for msg in msgs)
        messages.error(request, f"This run cannot be re-run: {problems}")
        return redirect("results:run", run.pk)
    except QuotaExceeded as e:
        messages.error(request, f"Not re-run: {e}")
        return redirect("results:run", run.pk)
    messages.success(request, f"Re-running {run.name} as run #{new.pk}.")
    return redirect(new)


@login_required
@require_POST
def resume(request, run_id):
    """A new run that reuses the finished folds of this stopped or failed one (runs/resume.py)."""
    run = visible_run_or_404(request, run_id)
    try:
        new = resuming.resume(run, owner=request.user)
    except (resuming.CannotResume, QuotaExceeded) as e:
        messages.error(request, f"Not resumed: {e}")
        return redirect(run)
    messages.success(request, f"Resuming {run.name} as run #{new.pk}: {new.reused_fits} of "
                              f"{new.reused_fits + new.total_fits} fits reused.")
    return redirect(new)


@login_required
@require_POST
def promote(request, run_id):
    run = visible_run_or_404(request, run_id)
    back = reverse("results:run", args=[run.pk]) + "#actions"
    form = PromoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.first_error())
        return redirect(back)
    name = form.cleaned_data["name"]
    try:
        model = promotion.promote(run, request.user, name)
    except (promotion.CannotPromote, promotion.NameTaken, promotion.OverQuota) as e:
        messages.error(request, f"Not promoted: {e}")
        return redirect(back)
    messages.success(request, f"Promoted to the model registry as “{model.name}”.")
    return redirect(back)
