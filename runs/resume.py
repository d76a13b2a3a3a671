"""Resume: a new run of a stopped or failed cross-validation run's spec that reuses every fold it finished
(same spec, folds and seeds, so the same scores) and fits only the rest. Its leaderboard equals that of an
uninterrupted run. Refused, with the reason, where the reuse could not be exact; the engine checks the data
and scikit-learn again when it loads the data (engine/runners/cv.py check_resumable), since both can change while the
resume waits in the queue."""

from importlib import metadata

import engine
from engine.spec import SpecError
from experiments.models import validate_spec_for

from . import control
from .models import FoldDiagnostic, FoldMetric, Run


class CannotResume(Exception):
    """Why a run cannot be resumed, in words a user can read; the pages and the API answer with it (409)."""


def can_resume(status, runner, partial):
    """Whether the pages offer Resume (the outcome card, the results page); refusal() has the last word and
    says why not."""
    return status in (Run.Status.STOPPED, Run.Status.FAILED) and runner == "cv" and bool(partial)


def refusal(run, spec=None):
    """Why `run` cannot be resumed (None if it can). `spec`: a spec the caller asks for; it must be the run's."""
    if run.status not in (Run.Status.STOPPED, Run.Status.FAILED):
        return f"Only a stopped or failed run can be resumed; run #{run.pk} is {run.get_status_display().lower()}."
    if run.runner != "cv":
        return "Only a cross-validation run can be resumed: its folds are independent. Re-run this one instead."
    if not _finished(run).exists():
        return f"Run #{run.pk} finished no fold, so there is nothing to reuse. Re-run it instead."
    if spec is not None and not _same_spec(run, spec):
        return ("A resume fits the run's own spec, and this one was edited. Launch the edited spec as a fresh run "
                "(Clone and edit), or resume without changes.")
    then = (run.library_versions or {}).get("scikit-learn")
    now = metadata.version("scikit-learn")  # not sklearn.__version__: web processes do not import scikit-learn
    if then and then != now:
        return (f"Run #{run.pk} fitted with scikit-learn {then} and this server has {now}, so its folds would "
                "not score the same. Re-run it instead.")
    changed = _data_changed(run)
    if changed:
        return changed
    return None


def resume(run, owner=None, spec=None):
    """The new run, queued, linked to `run`; raises CannotResume (or what launch_run raises: quotas)."""
    why = refusal(run, spec)
    if why:
        raise CannotResume(why)
    # A count, not reusable_folds(): the worker loads the folds (and their diagnostics) when it runs the resume.
    reused = _finished(run).values("branch", "variant", "fold").distinct().count()
    return control.launch_run(owner or run.owner, experiment=run.experiment, spec=run.spec, name=run.name,
                              resumed_from=run, reused_fits=reused)


def reusable_folds(run):
    """{(branch, variant, fold): {"metrics", "fit_time", "seconds", "diagnostics"}} of every fold `run`
    finished (its own and those it reused in turn, so a resume of a resume reuses both)."""
    folds = {}
    rows = _finished(run).values_list("branch", "variant", "fold", "metric", "value", "fit_time", "seconds")
    for branch, variant, fold, metric, value, fit_time, seconds in rows:
        entry = folds.setdefault((branch, variant, fold),
                                 {"metrics": {}, "fit_time": fit_time, "seconds": seconds})
        entry["metrics"][metric] = value
    # Their plots' data too, so the resumed run's diagnostics cover every fold.
    looks = FoldDiagnostic.objects.filter(run=run).values_list("branch", "variant", "fold", "data")
    for branch, variant, fold, data in looks:
        if (branch, variant, fold) in folds:
            folds[branch, variant, fold]["diagnostics"] = data
    return folds


def engine_resume(run):
    """What the engine needs to resume `run` (its resumed_from), or None when it is not a resume."""
    if not run.reused_fits:
        return None
    source = run.resumed_from
    if source is None:
        # Deleted while this run waited: without it, a silent full run would not be what was asked for.
        raise engine.RunError("The run this one resumes was deleted, so its folds cannot be reused; Re-run instead.",
                       "load_data")
    return {"folds": reusable_folds(source), "data_sha256": source.data_hash,
            "library_versions": source.library_versions}


def _finished(run):
    """The run's fold scores (an epoch-trained run's rows have no fold)."""
    return FoldMetric.objects.filter(run=run, fold__isnull=False)


def _same_spec(run, spec):
    try:
        return validate_spec_for(run.owner, spec) == run.spec
    except SpecError:
        return False


def _data_changed(run):
    ref = run.spec.get("dataset") or {}
    if ref.get("kind") != "csv" or not run.data_hash:
        return None  # generated data comes from the spec and its seed; the worker checks its hash anyway
    from datasets.models import Dataset

    dataset = Dataset.objects.filter(pk=ref.get("id")).first()
    if dataset is None:
        return f"The dataset of run #{run.pk} has been deleted, so the run cannot be resumed."
    sha = getattr(dataset, "sha256", "")
    if sha and sha != run.data_hash:
        return (f"The dataset of run #{run.pk} has changed since (its SHA-256 differs), so its folds cannot be "
                "reused. Re-run it on the new data instead.")
    return None
