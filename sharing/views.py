"""Share links on the web: make one for a run (its owner or staff), list and revoke one's own, and the
read-only pages a link opens (the run page, its results and the polling fallback), rendered by the run
page's own templates with `share` set, which drops every action and every link to the owner's other objects.

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

from accounts import access
from runs import fragments
from runs.models import Run
from runs.views import live_response, results_page

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
def my_links(request):
    """The user's active share links (every run they own), each with its last use and a Revoke."""
    links = ShareLink.objects.active().filter(run__owner=request.user).select_related("run")
    return render(request, "sharing/links.html", {"links": links, "form": ShareForm()})


@login_required
@require_POST
def revoke(request, link_id):
    link = ShareLink.objects.select_related("run").filter(pk=link_id).first()
    if link is None or not access.can_act(request.user, link.run):
        raise Http404("No share link matches the given query.")
    link.revoke()
    messages.success(request, f"The share link of {link.run.name} is revoked; its open pages were closed.")
    return redirect("sharing:links")


# --- What a link opens ----------------------------------------------------------------------------------


def _shared_run(request, token):
    """(run, share context) for an active link, else 404 (429 over the miss limit)."""
    link, throttled = throttle.lookup(request, token)
    if throttled:
        raise _TooMany()
    if link is None:
        raise Http404("No share link matches the given query.")
    link.touch()
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
@_answer
def shared_run(request, token):
    run, share = _shared_run(request, token)
    ctx = fragments.page_context(run)
    ctx["share"] = share
    return render(request, "runs/detail.html", ctx)


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
