"""The live run page and its small endpoints: Stop, the log history and the polling fallback."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import access
from config.query_params import whole_number
from runs import listing
from runs.worker import queue
from runs.control import CannotCancel, cancel_run
from runs.models import Run, events_after
from runs.views import visible_run_or_404

from . import fragments

# A poll answers with at most this many events; the next poll fetches the rest.
POLL_BATCH = 1000


@login_required
@never_cache
def detail(request, run_id):
    run = visible_run_or_404(request, run_id)
    waiting = queue.waiting_reason(run, queue.snapshot(request)) if run.status == Run.Status.QUEUED else None
    ctx = fragments.page_context(run, waiting)
    ctx["can_share"] = access.can_act(request.user, run)
    return render(request, "runs/detail.html", ctx)


@login_required
@require_POST
def cancel(request, run_id):
    run = visible_run_or_404(request, run_id)
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
    run = visible_run_or_404(request, run_id)
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
    return live_response(request, visible_run_or_404(request, run_id))


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
