"""What a user's earlier runs on the same data say about how long each estimator takes to fit.

Both estimates of a run's duration read it: the ETA while it runs (engine/runners/eta.py takes it as plain priors)
and the wizard's Review step before it is launched (experiments/describe.py). The source is what each fold
cost as the ETA counts it (FoldMetric.seconds: the fit, its scoring and its diagnostics, which for the
neighbours and the kernels is most of it), per estimator, divided by the work its parameters asked for
(engine.runners.costs.work_factor) and scaled to the rows of the run to come. Folds stored before that was recorded
have only their fit time; they count only for an estimator no fold with the whole cost speaks for.
"""

import statistics
from collections import defaultdict

from engine.runners import costs, eta
from engine.spec import variants

from .models import FoldMetric, Run

RUNS_READ = 10  # the latest finished runs: older ones ran on another machine load, or other code


def fit_seconds(owner, dataset_ref, rows=None, exclude=None):
    """{estimator: seconds per fit at work factor 1} from `owner`'s latest completed or stopped runs on the
    dataset `dataset_ref` (a spec's dataset), scaled from each run's rows to `rows`; {} without history."""
    runs = list(Run.objects.filter(owner=owner, spec__dataset=dataset_ref, runner="cv",
                                   status__in=[Run.Status.COMPLETED, Run.Status.STOPPED])
                .exclude(pk=exclude).order_by("-id").only("id", "spec", "summary")[:RUNS_READ])
    if not runs:
        return {}
    models = {}
    for run in runs:
        try:
            models[run.pk] = {v["index"]: (v["estimator"], costs.work_factor(v["params"], v["estimator"]))
                              for v in variants(run.spec)}
        except (KeyError, TypeError):
            continue  # a spec of an older shape: it says nothing we can read
    # One row per fold fitted (a FoldMetric row is one metric of it): the fit time is on every one.
    folds = (FoldMetric.objects.filter(run_id__in=list(models), fold__isnull=False, reused=False)
             .values_list("run_id", "branch", "variant", "fold", "fit_time", "seconds").distinct())
    whole, fit_only = defaultdict(list), defaultdict(list)
    rows_of = {run.pk: (run.summary or {}).get("rows") for run in runs}
    for run_id, _, variant, _, fit_time, cost in folds:
        estimator, work = models[run_id].get(variant, (None, 1.0))
        took, into = (cost, whole) if cost else (fit_time, fit_only)
        if estimator and took and took > 0:
            into[estimator].append(eta.scaled(took / work, rows_of.get(run_id), rows))
    return {name: statistics.median(whole.get(name) or values) for name, values in {**fit_only, **whole}.items()}
