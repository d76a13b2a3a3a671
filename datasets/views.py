"""The datasets pages: list, upload with its checks, preview, delete. Each user sees only their own uploads."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render

from engine import catalog
from . import profiling, usage
from .forms import DatasetUploadForm, max_upload_mb
from .models import Dataset
from .storage import read_stored_csv


def _get_dataset(request, dataset_id):
    return get_object_or_404(Dataset, pk=dataset_id, owner=request.user)


@login_required
def dataset_list(request):
    datasets = list(Dataset.objects.filter(owner=request.user, kind=Dataset.Kind.CSV))
    used = usage.counts("runs", request.user)
    for d in datasets:
        d.run_count = used.get(d.pk, 0)
    return render(request, "datasets/list.html", {
        "datasets": datasets, "form": DatasetUploadForm(), "max_mb": max_upload_mb(),
        "builtins": [(n, t, catalog.BUILTIN_SHAPES[n]) for n, (t, _) in catalog.BUILTIN_DATASETS.items()],
        "limits": catalog.SYNTHETIC_LIMITS,
    })


@login_required
def dataset_upload(request):
    form = DatasetUploadForm(request.POST or None, request.FILES or None, owner=request.user)
    if request.method == "POST":
        if form.is_valid():
            dataset = form.save(request.user)
            messages.success(request, f"Uploaded {dataset.name}: {dataset.n_rows:,} rows × {dataset.n_columns} columns.")
            return redirect("datasets:detail", dataset.pk)
        status = 400
    else:
        status = 200
    return render(request, "datasets/upload.html", {"form": form, "max_mb": max_upload_mb()}, status=status)


@login_required
def dataset_detail(request, dataset_id):
    dataset = _get_dataset(request, dataset_id)
    rows, problem = [], None
    frame, problem = read_stored_csv(dataset.file)
    if frame is not None:
        rows = profiling.preview(frame)
    columns = dataset.profiled_columns(frame)  # not read twice: frame is here
    for c in columns:
        c["notes"] = profiling.flag_notes(c)
        c["bars"] = _bars((c.get("stats") or {}).get("histogram"))
    target, task = profiling.suggest(columns, dataset.n_rows) if profiling.is_current(columns) else (None, None)
    return render(request, "datasets/detail.html", {
        "dataset": dataset, "columns": columns, "rows": rows, "problem": problem,
        "suggested_target": target, "suggested_task": task,
        "flagged": [c for c in columns if c.get("flags")],
        "runs": usage.using("runs", request.user, dataset).order_by("-id")[:20],
        "experiments": usage.using("experiments", request.user, dataset),
    })


def _bars(counts, width=100, height=24):
    """The rectangles of a small histogram: the template only places them."""
    if not counts:
        return []
    step, tallest = width / len(counts), max(max(counts), 1)
    return [{"x": round(i * step, 2), "width": round(step - 1, 2), "height": round(height * n / tallest, 2),
             "y": round(height - height * n / tallest, 2), "count": n} for i, n in enumerate(counts)]


@login_required
def dataset_delete(request, dataset_id):
    dataset = _get_dataset(request, dataset_id)
    if request.method == "POST":
        stored = dataset.file.name
        with transaction.atomic():
            dataset.delete()
            if stored:
                # Only once the row is really gone; a rolled-back delete must keep its file.
                transaction.on_commit(lambda: dataset.file.storage.delete(stored))
        messages.success(request, f"Deleted {dataset.name}.")
        return redirect("datasets:list")
    return render(request, "datasets/delete.html", {
        "dataset": dataset, "experiments": usage.using("experiments", request.user, dataset),
        "run_count": usage.using("runs", request.user, dataset).count(),
        "active_count": usage.active_using("runs", request.user, dataset).count(),
    })
