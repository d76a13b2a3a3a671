"""Pages for experiments, and the experiment wizard (the datasets pages are in dataset_views.py).

Each user sees only their own; anyone else's answers 404 (the admin is where staff see everything)."""

import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Max
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.quotas import QuotaExceeded
from config.query_params import MAX_DB_INT, whole_number
from datasets import profiling
from datasets.models import Dataset
from datasets.views import _get_dataset
from runs import formatting, history
from runs.control import launch_run
from runs.models import Run

from engine import catalog
from . import describe, wizard
from .data_problems import data_problems
from .forms import STEP_FORMS
from .models import Experiment, RegisteredModel, validate_spec_for
from engine.spec import SpecError


def _int(text, limit=MAX_DB_INT):
    """A whole number typed in a URL, or None: a hostile query string is a 404, not a database error."""
    try:
        return whole_number(text, limit)
    except ValueError:
        return None


def _get_experiment(request, experiment_id):
    return get_object_or_404(Experiment, pk=experiment_id, owner=request.user)


# --- Experiments ---------------------------------------------------------------------------------------


def _datasets_by_id(user):
    return {d.pk: d for d in Dataset.objects.filter(owner=user, kind=Dataset.Kind.CSV)}


@login_required
def experiment_list(request):
    experiments = list(Experiment.objects.filter(owner=request.user))
    datasets = _datasets_by_id(request.user)
    last_runs = {}
    # Each experiment's newest run, in two queries on any database (DISTINCT ON is PostgreSQL's alone).
    newest = (Run.objects.filter(owner=request.user, experiment__in=experiments).values("experiment_id")
              .annotate(last=Max("id")).values_list("last", flat=True))
    for run in Run.objects.filter(pk__in=list(newest)):
        last_runs[run.experiment_id] = run
    for e in experiments:
        spec = e.spec or {}
        e.dataset_label = describe.dataset_label(spec.get("dataset"), datasets)
        e.model_labels = ", ".join(m.get("label", m.get("estimator", "")) for m in spec.get("models") or []
                                   if isinstance(m, dict)) or "—"
        try:
            e.fits = describe.fits(spec)[0]
        except (KeyError, TypeError, ValueError):
            e.fits = None  # an old spec the validator would now refuse; the detail page says why on launch
        e.last_run = last_runs.get(e.pk)
    return render(request, "experiments/list.html", {"experiments": experiments})


@login_required
def experiment_detail(request, experiment_id):
    experiment = _get_experiment(request, experiment_id)
    problems = None
    try:
        spec = validate_spec_for(request.user, experiment.spec)
    except SpecError as e:
        spec, problems = None, e.errors
    return render(request, "experiments/detail.html", {
        "experiment": experiment, "problems": problems,
        "readable": describe.readable(spec, _datasets_by_id(request.user)) if spec else None,
        "fits": describe.fits(spec) if spec else None,
        "runs": experiment.runs.order_by("-id")[:50],
    })


@login_required
@require_POST
def experiment_launch(request, experiment_id):
    experiment = _get_experiment(request, experiment_id)
    try:
        run = launch_run(request.user, experiment=experiment)
    except SpecError as e:
        for path, msgs in e.errors.items():
            messages.error(request, f"{path}: {' '.join(msgs)}")
        return redirect("experiments:detail", experiment.pk)
    except QuotaExceeded as e:
        messages.error(request, f"Not launched: {e}")
        return redirect("experiments:detail", experiment.pk)
    return redirect(run.get_absolute_url())


@login_required
def experiment_delete(request, experiment_id):
    experiment = _get_experiment(request, experiment_id)
    if request.method == "POST":
        experiment.delete()  # its runs stay (Run.experiment is SET_NULL) with their own spec snapshot
        messages.success(request, f"Deleted {experiment.name}. Its runs and their results are kept.")
        return redirect("experiments:list")
    return render(request, "experiments/delete.html", {"experiment": experiment,
                                                       "run_count": experiment.runs.count()})


# --- The wizard ----------------------------------------------------------------------------------------


def _draft_key(experiment):
    return f"wizard:edit:{experiment.pk}" if experiment else "wizard:new"


def _start(request, key, draft, step="dataset"):
    request.session[key] = draft
    return redirect(f"{reverse('experiments:new')}?step={step}")


@login_required
def clone(request, experiment_id):
    experiment = _get_experiment(request, experiment_id)
    return _start(request, "wizard:new", wizard.new_draft(experiment.spec, f"Copy of {experiment.name}",
                                                         experiment.description))


@login_required
@never_cache
def new(request):
    if "from_run" in request.GET:
        run = get_object_or_404(Run, pk=_int(request.GET["from_run"]) or 0, owner=request.user)
        return _start(request, "wizard:new", wizard.new_draft(run.spec, f"{run.name} (edited)"))
    if "evaluate_model" in request.GET:
        # "Evaluate on another dataset" (the model registry): the evaluation runner on the promoted model's
        # source run, keeping its task and metric; the user picks the data on the first step.
        model = get_object_or_404(RegisteredModel.objects.visible_to(request.user).select_related("run"),
                                  pk=_int(request.GET["evaluate_model"]) or 0)
        if model.run is None:
            raise Http404("The run this model came from has been deleted.")
        spec = {**wizard.DEFAULT_SPEC, "dataset": model.run.spec.get("dataset"), "task": model.run.task,
                "metric": model.run.metric, "runner": "evaluation", "evaluation": {"run": model.run.pk}}
        return _start(request, "wizard:new", wizard.new_draft(spec, f"Evaluate {model.name}"))
    if "dataset" in request.GET:
        ref = _dataset_from_query(request)
        task = (catalog.BUILTIN_DATASETS.get(ref.get("name")) or catalog.SYNTHETIC_GENERATORS.get(
            ref.get("generator"), ("classification",)))[0]
        draft = wizard.new_draft({**wizard.DEFAULT_SPEC, "dataset": ref, "task": task})
        if ref["kind"] == "csv":
            wizard.from_profile(draft, _get_dataset(request, ref["id"]))
        return _start(request, "wizard:new", draft, "dataset")
    return _wizard(request, None)


def _dataset_from_query(request):
    kind, _, key = request.GET["dataset"].partition(":")
    if kind == "csv" and _int(key) is not None:
        return {"kind": "csv", "id": _get_dataset(request, _int(key)).pk}
    if kind == "builtin" and key in catalog.BUILTIN_DATASETS:
        return {"kind": "builtin", "name": key}
    if kind == "synthetic" and key in catalog.SYNTHETIC_GENERATORS:
        ref = {"kind": "synthetic", "generator": key}
        for name in ("n_samples", "n_features", "n_classes", "seed"):
            if _int(request.GET.get(name)) is not None:
                ref[name] = _int(request.GET[name])
        try:
            noise = float(request.GET.get("noise", 0.1))
        except ValueError:
            noise = None
        if noise is not None and math.isfinite(noise):
            ref["noise"] = noise
        return ref
    raise Http404("Unknown dataset")


@login_required
@never_cache
def edit(request, experiment_id):
    return _wizard(request, _get_experiment(request, experiment_id))


def _wizard(request, experiment):
    key = _draft_key(experiment)
    if request.GET.get("reset") or key not in request.session:
        request.session[key] = (wizard.new_draft(experiment.spec, experiment.name, experiment.description)
                                if experiment else wizard.new_draft())
    draft = request.session[key]
    step = request.POST.get("step") or request.GET.get("step") or "dataset"
    if step not in wizard.STEP_NAMES:
        step = "dataset"
    here = request.path
    if request.method != "POST":
        raw = draft["raw"].get(step)
        form = _form(step, draft, request.user, data=raw)
        if raw:
            form.is_valid()  # shows why the entries kept from last time were not accepted
        return _render(request, experiment, draft, step, form)

    action = request.POST.get("action", "next")
    if action == "add_branch" and step == "preprocessing":
        data = request.POST.copy()
        try:
            count = min(max(int(data.get("n_branches", "")), 1), 19)
        except ValueError:
            count = 1
        data["n_branches"] = str(count + 1)
        draft["raw"][step] = _kept(data)
        request.session[key] = draft
        return redirect(f"{here}?step={step}")
    form = _form(step, draft, request.user, data=request.POST)
    if not form.is_valid():
        draft["raw"][step] = _kept(request.POST)  # going back keeps what was typed, even if not valid yet
        request.session[key] = draft
        if action == "back":
            return redirect(f"{here}?step={wizard.previous_step(step)}")
        return _render(request, experiment, draft, step, form, status=400)
    form.apply()
    draft["raw"].pop(step, None)
    request.session[key] = draft
    if action == "back":
        return redirect(f"{here}?step={wizard.previous_step(step)}")
    errors = _check(request.user, draft, data=step == "review")
    if step != "review":
        step_errors = wizard.errors_for_step(errors, step)
        if step_errors:
            form.add_spec_errors(step_errors)
            return _render(request, experiment, draft, step, form, status=400)
        following = wizard.next_step(step)
        if following not in draft["visited"]:
            draft["visited"].append(following)
        request.session[key] = draft
        return redirect(f"{here}?step={following}")
    if errors:
        return _render(request, experiment, draft, step, form, status=400, errors=errors)  # the file is read once
    spec = validate_spec_for(request.user, draft["spec"])
    with transaction.atomic():
        if experiment is None:
            experiment = Experiment.objects.create(owner=request.user, name=draft["name"],
                                                   description=draft["description"], spec=spec)
        else:
            experiment.name, experiment.description, experiment.spec = draft["name"], draft["description"], spec
            experiment.save()
    del request.session[key]
    if action == "launch":
        try:
            run = launch_run(request.user, experiment=experiment)
        except (SpecError, QuotaExceeded) as e:
            messages.error(request, f"Saved, but it could not be launched: {e}")
            return redirect("experiments:detail", experiment.pk)
        return redirect(run.get_absolute_url())
    messages.success(request, f"Saved {experiment.name}.")
    return redirect("experiments:detail", experiment.pk)


def _kept(data):
    return {name: values for name, values in data.lists() if name not in ("csrfmiddlewaretoken", "action")}


@login_required
def target_check(request):
    """htmx: what the chosen target column says (its facts, the guessed task, or why it cannot work), as the
    user picks it. The step's own validation says the same on Next, so nothing depends on this."""
    dataset = get_object_or_404(Dataset, pk=_int(request.GET.get("dataset")) or 0, owner=request.user)
    columns = dataset.profiled_columns()
    column = next((c for c in columns if c["name"] == request.GET.get("target")), None)
    if column is None or "kind" not in column:
        return render(request, "experiments/steps/_target_facts.html", {})
    task = request.GET.get("task") or profiling.guess_task(column)
    folds = request.GET.get("folds", "")
    problem = profiling.target_problem(column, task, _int(folds), dataset.n_rows)
    return render(request, "experiments/steps/_target_facts.html", {
        "column": column, "guess": profiling.guess_task(column), "problem": problem})


def _csv_dataset(user, draft):
    ref = draft["spec"].get("dataset") or {}
    if ref.get("kind") != "csv":
        return None
    dataset = Dataset.objects.filter(owner=user, pk=ref.get("id"), kind=Dataset.Kind.CSV).first()
    if dataset is not None:
        dataset.columns = dataset.profiled_columns()
    return dataset


def _form(step, draft, user, data=None):
    if isinstance(data, dict) and not isinstance(data, QueryDict):  # entries kept in the session as {name: [values]}
        query = QueryDict(mutable=True)
        for name, values in data.items():
            query.setlist(name, values)
        data = query
    kwargs = {"draft": draft, "user": user}
    if step in ("target", "preprocessing"):
        kwargs["dataset"] = _csv_dataset(user, draft)
    return STEP_FORMS[step](data, **kwargs)


def _check(user, draft, data=False):
    """Every error in the draft: the validator's, and the target checks only the uploaded columns allow. With
    `data`, for the Review step: also everything the run's "Validate data" would refuse (it reads the file)."""
    errors, valid = {}, None
    try:
        valid = validate_spec_for(user, draft["spec"])
    except SpecError as e:
        errors = dict(e.errors)
    dataset = _csv_dataset(user, draft)
    spec = draft["spec"]
    if dataset is not None and "target" not in errors:
        column = next((c for c in dataset.columns if c["name"] == spec.get("target")), None)
        if column is None:
            errors["target"] = [f"Choose the target column: {spec.get('target')!r} is not a column of {dataset.name}."]
        elif "kind" in column:
            folds = (spec.get("cv") or {}).get("folds") if spec.get("runner", "cv") == "cv" else None
            problem = profiling.target_problem(column, spec.get("task"), folds, dataset.n_rows)
            if problem:
                errors["target"] = [problem]
    if data and valid is not None and dataset is not None and not errors:
        errors = data_problems(valid, dataset)
    return errors


def _render(request, experiment, draft, step, form, status=200, errors=None):
    context = {"experiment": experiment, "draft": draft, "step": step, "form": form, "steps": wizard.STEPS,
               "step_label": dict(wizard.STEPS)[step], "first": step == "dataset", "last": step == "review"}
    if step == "target":
        context["dataset"] = _csv_dataset(request.user, draft)
        if context["dataset"] is not None and "kind" in (context["dataset"].columns or [{}])[0]:
            context["guesses"] = {c["name"]: profiling.guess_task(c) for c in context["dataset"].columns}
    if step == "review":
        errors = _check(request.user, draft, data=True) if errors is None else errors
        context["errors"] = [(wizard.step_of(p), dict(wizard.STEPS)[wizard.step_of(p)], p, m)
                             for p, msgs in errors.items() for m in msgs]
        if not errors:
            spec = validate_spec_for(request.user, draft["spec"])
            dataset = _csv_dataset(request.user, draft)
            context["readable"] = describe.readable(spec, _datasets_by_id(request.user))
            context["fits"] = describe.fits(spec)
            shape = describe.dataset_shape(spec["dataset"], dataset)
            seconds, low, high, how = describe.estimate(
                spec, history.fit_seconds(request.user, spec["dataset"], rows=shape and shape[0]), shape,
                settings.RUNWATCH.get("N_JOBS_DEFAULT", 1))
            context["estimate"] = formatting.estimate(seconds, low, high)
            context["estimate_how"] = how
    return render(request, "experiments/wizard.html", context, status=status)
