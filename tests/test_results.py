"""results.leaderboard: the one leaderboard, checked against numpy, in both metric directions, and for partial runs."""

import threading

import numpy as np
import pytest

from engine.spec import validate_spec
from runs.worker import execution
from results import leaderboard
from runs.control import cancel_run, launch_run
from runs.models import FoldMetric, Run
from tests.helpers import wait_for


def record(run, branch, variant, fold, **values):
    for metric, value in values.items():
        FoldMetric.objects.create(run=run, branch=branch, variant=variant, variant_description=f"v{variant}",
                                  fold=fold, metric=metric, value=value, seq=fold * 10 + variant)


@pytest.fixture
def regression_run(owner):
    spec = {"dataset": {"kind": "builtin", "name": "diabetes"}, "task": "regression",
            "models": [{"estimator": "Ridge", "params": {"alpha": [0.1, 1.0, 10.0]}}],
            "cv": {"kind": "kfold", "folds": 3}, "metric": "rmse"}
    return Run.objects.create(owner=owner, name="Diabetes", spec=spec, status=Run.Status.COMPLETED, total_folds=3)


def test_it_gives_mean_and_population_std_like_numpy(regression_run):
    scores = {1: [52.0, 55.5, 61.25], 2: [50.0, 51.0, 49.0], 3: [70.0, 65.0, 71.0]}
    for variant, values in scores.items():
        for fold, value in enumerate(values, 1):
            record(regression_run, "default", variant, fold, rmse=value, r2=1 - value / 100)

    board = leaderboard.leaderboard(regression_run)

    by_variant = {row["variant"]: row for row in board["leaderboard"]}
    for variant, values in scores.items():
        assert by_variant[variant]["scores"]["rmse"]["mean"] == pytest.approx(np.mean(values))
        assert by_variant[variant]["scores"]["rmse"]["std"] == pytest.approx(np.std(values))  # ddof=0
        assert by_variant[variant]["scores"]["rmse"]["count"] == 3
    assert board["metrics"][:2] == ["r2", "rmse"]  # catalog order, only what was recorded


def test_it_ranks_lower_rmse_first(regression_run):
    for fold in (1, 2, 3):
        record(regression_run, "default", 1, fold, rmse=60.0 + fold)
        record(regression_run, "default", 2, fold, rmse=50.0 + fold)
        record(regression_run, "default", 3, fold, rmse=70.0 + fold)

    board = leaderboard.leaderboard(regression_run)

    assert board["greater_is_better"] is False
    assert [row["variant"] for row in board["leaderboard"]] == [2, 1, 3]
    assert [row["rank"] for row in board["leaderboard"]] == [1, 2, 3]
    assert board["best"]["variant"] == 2 and board["best_score"] == pytest.approx(52.0)
    # Sorting by another column "better first" uses that column's own direction.
    worst_first = leaderboard.sorted_by(board, "rmse", better_first=False)
    assert [row["variant"] for row in worst_first] == [3, 1, 2]


def test_it_ranks_unfinished_variants_after_finished_ones(owner, iris_spec):
    run = Run.objects.create(owner=owner, name="Stopped", spec=iris_spec, status=Run.Status.STOPPED, total_folds=3,
                             partial=True)
    for fold, value in enumerate([0.9, 0.95, 0.96], 1):
        record(run, "default", 1, fold, accuracy=value)
    record(run, "default", 2, 1, accuracy=1.0)  # one lucky fold, then the stop

    board = leaderboard.leaderboard(run)

    assert board["partial"] is True
    assert [(row["variant"], row["complete"]) for row in board["leaderboard"]] == [(1, True), (2, False)]
    assert board["best_score"] == pytest.approx(np.mean([0.9, 0.95, 0.96]))
    assert [row["variant"] for row in board["unfinished"]] == [2]


def test_it_stores_the_best_variants_mean_on_a_stopped_run(transactional_db, owner, iris_spec):
    """The list, the API and the admin read Run.best_score: for a stopped run it must be the leaderboard's best,
    not the best single fold or a half-finished variant's running mean."""
    iris_spec["models"][0]["params"] = {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0], "max_iter": [500]}
    iris_spec["cv"]["folds"] = 5
    run = launch_run(owner, spec=validate_spec(iris_spec), name="Stop midway")
    thread = threading.Thread(target=execution.execute, args=(Run.objects.get(pk=run.pk),))
    thread.start()
    try:
        wait_for(lambda: FoldMetric.objects.filter(run=run, metric="accuracy").count() >= 7, timeout=60,
                 message="two variants to have started")
        cancel_run(Run.objects.get(pk=run.pk))
    finally:
        thread.join(timeout=60)
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED

    board = leaderboard.leaderboard(run)
    assert board["partial"] and board["best"]["complete"]
    assert run.best_score == pytest.approx(board["best_score"])
