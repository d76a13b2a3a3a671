from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404

from .models import Run


def _get_run_for_user(request, run_id):
    run = get_object_or_404(Run, pk=run_id)
    if not run.visible_to(request.user):
        raise Http404("No such run")
    return run


@login_required
def run_list(request):
    return HttpResponse("Runs")


@login_required
def detail(request, run_id):
    run = _get_run_for_user(request, run_id)
    return HttpResponse(run.name)
