"""runs.history: what earlier runs on the same data say an estimator's fold costs, as the ETA counts it."""

import pytest

from runs import history
from runs.control import launch_run
from runs.models import FoldMetric, Run
from runs.reporter import DbReporter

pytestmark = pytest.mark.django_db(transaction=True)


def _spec(iris_spec):
    iris_spec["models"] = [{"estimator": "KNeighborsClassifier", "params": {}},
                           {"estimator": "LogisticRegression", "params": {}}]
    return iris_spec


def _finished(run):
    Run.objects.filter(pk=run.pk).update(status=Run.Status.COMPLETED, summary={"rows": 150})


def test_it_reads_a_folds_whole_cost_as_the_reporter_stored_it(owner, outsider, iris_spec):
    run = launch_run(owner, spec=_spec(iris_spec)).mark_running("test")
    reporter = DbReporter(run, background=False)
    for fold in (1, 2, 3):  # the neighbours: a fit of 0.01 s, a fold of 0.4 s with its scoring
        reporter.fold_done(branch="default", variant=1, description="KNN", fold=fold, metrics={"accuracy": 0.9},
                           fit_time=0.01, seconds=0.4, primary_metric="accuracy", primary=0.9, running_mean=0.9,
                           finished=fold, total=6, eta_seconds=None, best_score=None)
    reporter.close()
    _finished(run)
    assert list(FoldMetric.objects.filter(run=run).values_list("seconds", flat=True)) == [0.4] * 3

    # An older run stored only fit times: its LogisticRegression counts (nothing better speaks for it), its
    # neighbours' 0.01 s does not, against a fold that was measured whole.
    old = launch_run(owner, spec=run.spec)
    FoldMetric.objects.bulk_create(
        [FoldMetric(run=old, variant=1, fold=f, metric="accuracy", value=0.9, fit_time=0.01) for f in (1, 2, 3, 4)]
        + [FoldMetric(run=old, variant=2, fold=f, metric="accuracy", value=0.9, fit_time=0.2) for f in (1, 2, 3)])
    _finished(old)

    priors = history.fit_seconds(owner, run.spec["dataset"], rows=150)
    assert priors == {"KNeighborsClassifier": pytest.approx(0.4), "LogisticRegression": pytest.approx(0.2)}
    assert history.fit_seconds(outsider, run.spec["dataset"], rows=150) == {}
