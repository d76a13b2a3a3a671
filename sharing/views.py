"""Share links on the web: make one for a run or a comparison (its owner or staff), list and revoke one's own,
and the read-only pages a link opens (a run's page, its results and the polling fallback; a comparison's
compare page), rendered by the owner's own templates with `share` set, which drops every action and every
link to the owner's other objects.

A link that is missing, revoked, expired or guessed answers the same 404; a client over its misses 429
(sharing.throttle).
"""

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from accounts import access
from results import compare, compare_views
from live import fragments
from runs.models import Run
from live.views import live_response
from results.views import results_page

from . import throttle
from .forms import ShareForm
from .models import ShareLink


def _get_run_to_share(request, run_id):
    run = access.get_visible_or_404(request.user, Run.objects.all(), pk=run_id)
    if not access.can_act(request.user, run):
        raise Http404("No run matches the given query.")
    return run


@login_required
@require_POST
def share_run(request, run_id):
    """Make a share link; its URL is shown this once (only its hash is kept)."""
    run = _get_run_to_share(request, run_id)
    form = ShareForm(request.POST)
    if not form.is_valid():
        return render(request, "sharing/created.html", {"run": run, "form": form}, status=400)
    link, token = ShareLink.create_for(run, request.user, form.cleaned_data["expires_at"])
    url = request.build_absolute_uri(reverse("sharing:run", args=[token]))
    return render(request, "sharing/created.html", {"run": run, "link": link, "url": url}, status=201)


@login_required
@require_POST
def share_comparison(request):
    """Make a share link of the comparison of ?runs= (2 to 4 runs, every one the user may act on; else 404,
    as the compare page answers for a foreign run)."""
    try:
        ids = compare.parse_ids(request.POST.get("runs", ""))
    except compare.BadSelection as e:
        raise Http404(str(e)) from None
    runs = compare_views.runs_to_compare(request.user, ids)
    if not all(access.can_act(request.user, run) for run in runs):
        raise Http404("No such runs")
    form = ShareForm(request.POST)
    ctx = {"runs": runs, "runs_param": ",".join(map(str, ids)), "form": form}
    if not form.is_valid():
        return render(request, "sharing/created.html", ctx, status=400)
    link, token = ShareLink.create_for_comparison(runs, request.user, form.cleaned_data["expires_at"])
    ctx.update(link=link, url=request.build_absolute_uri(reverse("sharing:run", args=[token])))
    return render(request, "sharing/created.html", ctx, status=201)


def _own_links(user):
    """The links of the user's own runs (a comparison: of only theirs), newest first."""
    return ShareLink.objects.of_runs(Run.objects.filter(owner=user)).select_related("run").prefetch_related("compared_runs").order_by("-created")


@login_required
def my_links(request):
    """The user's active share links (of runs, and of comparisons, they own), each with its last use and a
    Revoke."""
    links = list(_own_links(request.user).active())
    for link in links:
        link.shown_ids = link.run_ids()
    return render(request, "sharing/links.html", {"links": links, "form": ShareForm()})


@login_required
@require_POST
def revoke(request, link_id):
    # Those whose every run the user may act on (owner, staff): accounts.access through ShareLink.of_runs.
    link = ShareLink.objects.of_runs(access.visible(request.user, Run.objects.all())).filter(pk=link_id).first()
    if link is None:
        raise Http404("No share link matches the given query.")
    link.revoke()
    what = link.run.name if link.run_id else link.subject()
    messages.success(request, f"The share link of {what} is revoked; its open pages were closed.")
    return redirect("sharing:links")


# --- What a link opens ----------------------------------------------------------------------------------


def _active_link(request, token):
    """The active link of `token`, its use recorded, else 404 (429 over the miss limit)."""
    link, throttled = throttle.lookup(request, token)
    if throttled:
        raise _TooMany()
    if link is None:
        raise Http404("No share link matches the given query.")
    link.touch()
    return link


def _shared_run(request, token, link=None):
    """(run, share context) for an active link of a run, else 404 (429 over the miss limit)."""
    link = link or _active_link(request, token)
    if link.is_comparison:
        raise Http404("No share link matches the given query.")  # a comparison's link opens only its page
    run = access.get_visible_or_404(link.grant(), Run.objects.select_related("experiment"), pk=link.run_id)
    base = reverse("sharing:run", args=[token])
    share = {"url": base, "results_url": base + "results/", "live_url": base + "live/",
             "ws_url": f"/ws/share/{token}/fragments/"}
    return run, share


class _TooMany(Exception):
    pass


def _answer(view):
    @functools.wraps(view)
    def wrapped(request, token):
        try:
            return view(request, token)
        except _TooMany:
            return HttpResponse("Too many unknown share links from this address; try again in a minute.",
                                status=429, content_type="text/plain; charset=utf-8", headers={"Retry-After": "60"})
    return wrapped


@never_cache
@vary_on_headers("HX-Request", "HX-Target")
@_answer
def shared_run(request, token):
    link = _active_link(request, token)
    if link.is_comparison:
        return _shared_comparison(request, token, link)
    run, share = _shared_run(request, token, link)
    ctx = fragments.page_context(run)
    ctx["share"] = share
    return render(request, "runs/detail.html", ctx)


def _shared_comparison(request, token, link):
    """The compare page of a shared comparison, read-only; its poll and its "Differences only" checkbox come
    back to the link itself."""
    ids = link.run_ids()
    if len(ids) < compare.MIN_RUNS:  # its runs were deleted since
        raise Http404("No share link matches the given query.")
    runs = compare_views.runs_to_compare(link.grant(), ids)
    url = reverse("sharing:run", args=[token])
    return compare_views.compare_page(request, runs, url, share={"url": url})


@never_cache
@_answer
def shared_results(request, token):
    run, share = _shared_run(request, token)
    return results_page(request, run, share=share)


@never_cache
@_answer
def shared_live(request, token):
    run, _ = _shared_run(request, token)
    return live_response(request, run)
