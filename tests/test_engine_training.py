"""The training runner: epoch by epoch with partial_fit, validation scores, early stopping with patience."""

import numpy as np
import pytest
from django.conf import settings
from sklearn.datasets import load_diabetes, load_iris

import engine
from runs import events
from runs.control import launch_run
from runs.models import FoldMetric, Run, RunEvent, RunStep
from tests.helpers import start_worker
from tests.test_engine_cv import wait_until_done


def epoch_scores(run, variant, metric):
    rows = FoldMetric.objects.filter(run=run, variant=variant, metric=metric).order_by("epoch")
    assert all(m.fold is None for m in rows)
    return [(m.epoch, m.value) for m in rows]


@pytest.fixture
def eager_worker(transactional_db):
    # These epochs take microseconds, so progress coalescing (10 per second) would keep only the last
    # progress of the run; with no interval every epoch's progress is stored and can be checked.
    process = start_worker(RUNWATCH_PROGRESS_INTERVAL="0")
    yield process
    process.stop()


@pytest.mark.system
def test_it_stops_early_once_the_score_stops_improving(eager_worker, owner, outsider):
    # GaussianNB learns everything in its first epoch, so the score is flat from then on: with patience 3
    # it stops at epoch 4, keeping epoch 1.
    spec = {
        "runner": "training", "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification",
        "models": ["GaussianNB"], "training": {"epochs": 20, "patience": 3, "validation_fraction": 0.3},
        "metric": "accuracy", "seed": 5,
    }
    run = wait_until_done(launch_run(owner, spec=spec))
    assert run.status == Run.Status.COMPLETED, run.error_message + run.traceback
    scores = epoch_scores(run, 1, "accuracy")
    assert [epoch for epoch, _ in scores] == [1, 2, 3, 4]
    assert len({value for _, value in scores}) == 1
    assert run.early_stopped is True and run.stopped_epoch == 4
    assert run.latest_score == pytest.approx(scores[-1][1]) and run.best_score == pytest.approx(scores[0][1])
    assert run.summary["epochs_completed"] == 4 and run.summary["epochs_total"] == 20
    assert run.summary["best_epoch"] == 1
    record = run.progress_record()
    assert record["runner"] == "training" and record["early_stopped"] and record["stopped_epoch"] == 4
    assert record["total_units"] == 20 and record["percent"] == 100.0

    metrics = [e.data for e in RunEvent.objects.filter(run=run, type=events.JOB_METRICS).order_by("seq")]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    assert all("fold" not in m for m in metrics)
    progress = [e.data for e in RunEvent.objects.filter(run=run, type=events.JOB_PROGRESS)]
    assert any(p["message"].startswith("Epoch ") and p["total_epochs"] == 20 for p in progress)
    assert list(RunStep.objects.filter(run=run).values_list("name", "status")) == [
        ("load_data", "completed"), ("validate_data", "completed"), ("train", "completed"), ("export", "completed")
    ]
    bundle = engine.load_bundle(settings.MEDIA_ROOT / run.model_file, run.model_sha256)
    X, y = load_iris(return_X_y=True)
    assert (bundle.predict(X) == y).mean() > 0.9
    assert bundle.metadata["training"]["stopped_epoch"] == 4
    assert not run.visible_to(outsider)


def test_it_trains_every_variant_for_all_epochs_and_exports_the_best(worker, owner):
    spec = {
        "runner": "training", "dataset": {"kind": "builtin", "name": "diabetes"}, "task": "regression",
        "preprocessing": ["standard_scaler"],
        "models": [{"estimator": "SGDRegressor", "params": {"alpha": [0.0001, 1.0]}}],
        "training": {"epochs": 6, "patience": 50, "validation_fraction": 0.25},
        "metric": "rmse", "seed": 2,
    }
    run = wait_until_done(launch_run(owner, spec=spec))
    assert run.status == Run.Status.COMPLETED, run.error_message + run.traceback
    assert run.finished_fits == run.total_fits == 12
    assert run.early_stopped is False and run.stopped_epoch is None
    best = {}
    for variant in (1, 2):
        scores = epoch_scores(run, variant, "rmse")
        assert [epoch for epoch, _ in scores] == list(range(1, 7))
        best[variant] = min(value for _, value in scores)  # rmse: lower is better
        assert FoldMetric.objects.filter(run=run, variant=variant, epoch=6).count() == 4  # r2, rmse, mae, mape
    winner = min(best, key=best.get)
    assert run.best_variant["variant"] == winner
    assert run.best_score == pytest.approx(best[winner])
    bundle = engine.load_bundle(settings.MEDIA_ROOT / run.model_file, run.model_sha256)
    X, y = load_diabetes(return_X_y=True)
    assert np.sqrt(np.mean((bundle.predict(X) - y) ** 2)) < 80
