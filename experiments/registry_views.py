"""The model registry in the browser: /models/ (every promoted model you may see), one model's page, and its
download (verified against its SHA-256 by experiments.downloads, like every model download)."""

import os

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from experiments.downloads import serve_verified
from runs.models import Run

from engine import catalog
from .describe import flatten_spec
from .models import RegisteredModel


def _get_model_for_user(request, model_id):
    return get_object_or_404(RegisteredModel.objects.visible_to(request.user).select_related("owner", "run"),
                             pk=model_id)


@login_required
def model_list(request):
    models = list(RegisteredModel.objects.visible_to(request.user).select_related("owner", "run"))
    for m in models:
        m.metric_label = catalog.METRIC_LABELS.get(m.metric, m.metric)
    return render(request, "models/list.html", {"models": models})


@login_required
def model_detail(request, model_id):
    model = _get_model_for_user(request, model_id)
    evaluations = []
    if model.run_id:
        # Evaluation runs name the run whose model they scored (engine.spec: evaluation.run).
        evaluations = (Run.objects.visible_to(request.user)
                       .filter(spec__runner="evaluation", spec__evaluation__run=model.run_id)
                       .order_by("-queued_at"))
    source = model.run if model.run_id and model.run.visible_to(request.user) else None
    return render(request, "models/detail.html", {
        "model": model,
        "source": source,
        "metric_label": catalog.METRIC_LABELS.get(model.metric, model.metric),
        "spec_items": flatten_spec(source.spec) if source else [],
        "evaluations": evaluations,
        "evaluate_url": f"/experiments/new/?evaluate_model={model.pk}",
    })


@login_required
def download(request, model_id):
    model = _get_model_for_user(request, model_id)
    if not model.file:
        raise Http404("This model has no file.")
    extension = os.path.splitext(model.file.name)[1]
    return serve_verified(request, model.file.name, model.sha256, filename=f"{model.name}{extension}",
                          storage=model.file.storage)
