"""The runs list, the live run page and its small endpoints (stop, log history, polling, results, model)."""

import os

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from experiments.models import Experiment
from experiments.spec import SpecError

from . import events, fragments
from .control import CannotCancel, cancel_run, launch_run
from .models import Run

RUNS_PER_PAGE = 25
# A poll answers with at most this many events; the next poll fetches the rest.
POLL_BATCH = 1000


def _get_run_for_user(request, run_id):
    run = get_object_or_404(Run.objects.select_related("experiment", "owner"), pk=run_id)
    if not run.visible_to(request.user):
        raise Http404("No such run")
    return run


@login_required
@vary_on_headers("HX-Request")
def run_list(request):
    runs = Run.objects.select_related("experiment")
    if not request.user.is_staff:
        runs = runs.filter(owner=request.user)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    ctx = {
        "page": page,
        "experiments": Experiment.objects.filter(owner=request.user).order_by("name"),
        "any_active": any(run.is_active for run in page),
    }
    template = "runs/list.html"
    if request.htmx:
        # The table polls itself while some run on the page is active.
        template += "#runs-table"
    return render(request, template, ctx)


@login_required
@require_POST
def launch(request):
    experiment = Experiment.objects.filter(owner=request.user, pk=request.POST.get("experiment") or 0).first()
    if experiment is None:
        messages.error(request, "Choose one of your experiments to launch.")
        return redirect("runs:list")
    try:
        run = launch_run(request.user, experiment=experiment)
    except SpecError as e:
        problems = "; ".join(f"{path}: {msg}" for path, msgs in e.errors.items() for msg in msgs)
        messages.error(request, f"“{experiment.name}” cannot run: {problems}")
        return redirect("runs:list")
    return redirect(run)


@login_required
@never_cache
def detail(request, run_id):
    run = _get_run_for_user(request, run_id)
    return render(request, "runs/detail.html", fragments.page_context(run))


@login_required
@require_POST
def cancel(request, run_id):
    run = _get_run_for_user(request, run_id)
    try:
        run = cancel_run(run)
    except CannotCancel as e:
        if request.htmx:
            return HttpResponse(str(e), status=409, content_type="text/plain; charset=utf-8")
        ctx = fragments.page_context(run)
        ctx["stop_error"] = str(e)
        return render(request, "runs/detail.html", ctx, status=409)
    if request.htmx:
        # The stream brings the same change; answering with the header keeps the page right without it.
        return render(request, "runs/detail.html#header", {"run": run})
    messages.success(request, "Stopping the run. Finished folds are kept." if run.is_active else "The run is stopped.")
    return redirect(run)


@login_required
@never_cache
def logs(request, run_id):
    """Older log lines, before seq `before`: a chunk for "Load older", or a plain page without JavaScript."""
    run = _get_run_for_user(request, run_id)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        before = run.last_seq + 1
    lines, has_older = fragments.latest_logs(run.pk, before=before)
    ctx = {"run": run, "logs": lines, "has_older": has_older}
    if request.htmx:
        return render(request, "runs/logs_chunk.html", ctx)
    return render(request, "runs/logs.html", ctx)


@login_required
@never_cache
def live(request, run_id):
    """The polling fallback: the same fragments the socket sends, for the events after `after`.

    Answers 286 (htmx: stop polling) once the client has everything up to a terminal state."""
    run = _get_run_for_user(request, run_id)
    try:
        after = max(0, int(request.GET.get("after", "")))
    except ValueError:
        after = None
    if after is None:
        html = fragments.full_state(run)
        done = run.is_terminal
    else:
        batch = events.events_after(run.pk, after, limit=POLL_BATCH)
        html = fragments.render_messages(run.pk, batch) if batch else fragments.cursor_html(None, after, False)
        run.refresh_from_db()
        done = run.is_terminal and (not batch or batch[-1]["seq"] >= run.last_seq)
        if not run.is_terminal:
            html += fragments.stale_html(run)
    return HttpResponse(html, status=286 if done else 200)


@login_required
def results(request, run_id):
    run = _get_run_for_user(request, run_id)
    ctx = {"run": run, "metrics": fragments.metrics_context(run)}
    return render(request, "runs/results.html", ctx)


@login_required
def download_model(request, run_id):
    """The run's model bundle, with its SHA-256 so a client can check what it received."""
    run = _get_run_for_user(request, run_id)
    if not run.model_file:
        raise Http404("This run has no model bundle")
    path = run.model_file
    if not os.path.isabs(path):
        path = os.path.join(settings.MEDIA_ROOT, path)
    if not os.path.isfile(path):
        raise Http404("The model bundle is missing")
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=os.path.basename(path))
    if run.model_sha256:
        response["X-Model-SHA256"] = run.model_sha256
    return response
