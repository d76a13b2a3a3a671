"""What the results page adds to the leaderboard: the selected row's fold chart, the reproducibility panel,
the export and the actions on a run's results (re-run, resume, promote). Clone and edit is a link to the wizard.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from accounts import access
from accounts.quotas import QuotaExceeded
from experiments.describe import flatten_spec
from experiments.models import RegisteredModel
from engine.spec import SpecError

from . import charts, control, diagnostics, plots, promotion, results
from . import resume as resuming
from .forms import NAME_MAX, PromoteForm
from .fragments import can_resume
from .models import Run


def _get_run_for_user(request, run_id):
    return access.get_visible_or_404(request.user, Run.objects.all(), pk=run_id)


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
    return results.best_or_first(board)


def results_extras(request, run, board):
    """The results page's context beyond the leaderboard (runs.views.results)."""
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
    run = _get_run_for_user(request, run_id)
    try:
        new = control.rerun(run, owner=request.user)
    except SpecError as e:  # e.g. its CSV dataset was deleted since
        problems = "; ".join(f"{path}: {msg}" for path, msgs in e.errors.items() for msg in msgs)
        messages.error(request, f"This run cannot be re-run: {problems}")
        return redirect("runs:results", run.pk)
    except QuotaExceeded as e:
        messages.error(request, f"Not re-run: {e}")
        return redirect("runs:results", run.pk)
    messages.success(request, f"Re-running {run.name} as run #{new.pk}.")
    return redirect(new)


@login_required
@require_POST
def resume(request, run_id):
    """A new run that reuses the finished folds of this stopped or failed one (runs/resume.py)."""
    run = _get_run_for_user(request, run_id)
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
    run = _get_run_for_user(request, run_id)
    back = reverse("runs:results", args=[run.pk]) + "#actions"
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
