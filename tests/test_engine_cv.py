"""The cross-validation runner end to end: a real RQ worker runs it against the real database and Redis."""

import numpy as np
import pytest
from django.conf import settings
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate

import engine
from runs import events
from runs.control import launch_run
from runs.models import FoldMetric, LogEntry, Run, RunEvent, RunStep
from tests.helpers import wait_for


def wait_until_done(run, timeout=60):
    wait_for(
        lambda: Run.objects.filter(pk=run.pk, status__in=Run.TERMINAL).exists(),
        timeout=timeout,
        message=f"run {run.pk} to end",
    )
    run.refresh_from_db()
    return run


def test_it_runs_queued_running_completed_with_every_event_in_order(worker, owner, outsider, iris_spec):
    run = launch_run(owner, spec=iris_spec, name="Iris CV")
    assert run.status == Run.Status.QUEUED
    run = wait_until_done(run)
    assert run.status == Run.Status.COMPLETED, run.error_message + run.traceback

    stored = list(RunEvent.objects.filter(run=run).order_by("seq"))
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))  # no gaps, strictly increasing
    assert run.last_seq == len(stored)
    types = [e.type for e in stored]
    statuses = [e.data["status"] for e in stored if e.type in (events.JOB_STATUS, events.JOB_COMPLETED)]
    assert statuses == ["queued", "running", "completed"]
    assert types[0] == events.JOB_STATUS and types[-1] == events.JOB_COMPLETED

    # Every step ran in order, and each step's events come between its running and completed events.
    step_events = [(e.data["step"], e.data["status"]) for e in stored if e.type == events.STEP_PROGRESS]
    names = ["load_data", "validate_data", "cross_validate", "refit_best", "export"]
    assert step_events == [(n, s) for n in names for s in ("running", "completed")]
    assert list(RunStep.objects.filter(run=run).values_list("name", "status")) == [(n, "completed") for n in names]

    # 2 variants x 3 folds: a variant event, then per fold its start and its metrics.
    cv_types = [t for t in types if t in (events.VARIANT_PROGRESS, events.FOLD_PROGRESS, events.JOB_METRICS)]
    per_variant = [events.VARIANT_PROGRESS] + [events.FOLD_PROGRESS, events.JOB_METRICS] * 3
    assert cv_types == per_variant * 2
    assert events.JOB_PROGRESS in types and events.JOB_LOG in types

    # Logs share their seq with their event; metrics carry the seq of their JOB_METRICS event.
    log_seqs = {e.seq for e in stored if e.type == events.JOB_LOG}
    assert set(LogEntry.objects.filter(run=run).values_list("seq", flat=True)) == log_seqs
    metric_seqs = {e.seq for e in stored if e.type == events.JOB_METRICS}
    assert set(FoldMetric.objects.filter(run=run).values_list("seq", flat=True)) == metric_seqs

    summary = run.summary
    assert summary["models_trained"] == 7  # 6 fits + the refit
    assert summary["metric"] == "accuracy" and summary["duration_seconds"] > 0
    assert run.best_score == pytest.approx(summary["best_score"])
    assert run.finished_fits == run.total_fits == 6 and run.progress == 1.0
    assert run.data_hash and run.library_versions["scikit-learn"]
    assert run.worker_name and run.started_at <= run.finished_at
    assert run.progress_record()["percent"] == 100.0
    assert not run.visible_to(outsider)


def test_its_metrics_match_an_independent_sklearn_computation(worker, owner, iris_spec):
    run = wait_until_done(launch_run(owner, spec=iris_spec))
    assert run.status == Run.Status.COMPLETED, run.error_message

    X, y = load_iris(return_X_y=True)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=1)
    for variant, C in ((1, 0.1), (2, 1.0)):
        expected = cross_validate(
            LogisticRegression(C=C, max_iter=500), X, y, cv=folds, scoring=["accuracy", "f1_macro", "roc_auc_ovr"]
        )
        for metric, key in (("accuracy", "test_accuracy"), ("f1_macro", "test_f1_macro"), ("roc_auc", "test_roc_auc_ovr")):
            got = FoldMetric.objects.filter(run=run, variant=variant, metric=metric).order_by("fold")
            assert [m.fold for m in got] == [1, 2, 3]
            np.testing.assert_allclose([m.value for m in got], expected[key], rtol=1e-9)
    best = max((1, 2), key=lambda v: np.mean(FoldMetric.objects.filter(run=run, variant=v, metric="accuracy")
                                              .values_list("value", flat=True)))
    assert run.best_variant["variant"] == best


def test_it_exports_a_bundle_that_reloads_and_predicts(worker, owner, iris_spec):
    run = wait_until_done(launch_run(owner, spec=iris_spec))
    assert run.model_file and not run.model_file.startswith("/")
    path = settings.MEDIA_ROOT / run.model_file
    bundle = engine.load_bundle(path, run.model_sha256)
    X, y = load_iris(return_X_y=True)
    assert (bundle.predict(X) == y).mean() > 0.9
    assert bundle.metadata["data"]["sha256"] == run.data_hash
    assert bundle.metadata["spec"] == run.spec
    assert bundle.metadata["library_versions"]["scikit-learn"] == run.library_versions["scikit-learn"]
    assert bundle.metadata["metrics"]["accuracy"] == pytest.approx(run.best_score)


def test_it_cross_validates_branches_and_text_columns_from_a_csv(worker, owner, tmp_path):
    from django.core.files import File

    from datasets.models import Dataset

    rng = np.random.default_rng(0)
    n = 60
    city = rng.choice(["Paris", "Lyon", "Nice"], n)
    size = rng.normal(50, 10, n)
    price = size * 3 + (city == "Paris") * 40 + rng.normal(0, 1, n)
    size[[3, 9]] = np.nan  # the imputer fills these in
    csv = tmp_path / "flats.csv"
    lines = ["city,size,price"] + [f"{c},{'' if np.isnan(s) else round(s, 2)},{round(p, 2)}" for c, s, p in zip(city, size, price)]
    csv.write_text("\n".join(lines) + "\n")
    dataset = Dataset(owner=owner, name="flats")
    with open(csv, "rb") as f:
        dataset.describe_csv(f)
        dataset.file.save("flats.csv", File(f), save=True)

    spec = {
        "dataset": {"kind": "csv", "id": dataset.pk}, "task": "regression", "target": "price",
        "preprocessing": [{"name": "simple_imputer", "params": {"strategy": "median"}}, "one_hot_encoder"],
        "branches": [{"name": "plain", "preprocessing": []}, {"name": "scaled", "preprocessing": ["standard_scaler"]}],
        "models": [{"estimator": "Ridge", "params": {"alpha": [0.1, 10.0]}}],
        "cv": {"kind": "kfold", "folds": 3, "shuffle": True, "seed": 3}, "metric": "rmse",
    }
    run = wait_until_done(launch_run(owner, spec=spec))
    assert run.status == Run.Status.COMPLETED, run.error_message
    assert run.finished_fits == 12
    assert set(FoldMetric.objects.filter(run=run).values_list("branch", flat=True)) == {"plain", "scaled"}
    assert run.data_hash == dataset.sha256
    means = {}
    for branch, variant in {(m.branch, m.variant) for m in FoldMetric.objects.filter(run=run, metric="rmse")}:
        means[(branch, variant)] = np.mean(
            FoldMetric.objects.filter(run=run, branch=branch, variant=variant, metric="rmse").values_list("value", flat=True)
        )
    best = min(means, key=means.get)  # rmse: lower is better
    assert (run.best_variant["branch"], run.best_variant["variant"]) == best
    bundle = engine.load_bundle(settings.MEDIA_ROOT / run.model_file, run.model_sha256)
    import pandas as pd

    frame = pd.read_csv(csv)
    predictions = bundle.predict(frame[["city", "size"]])
    assert np.sqrt(np.mean((predictions - frame["price"]) ** 2)) < 5


class FoldRecorder(engine.Reporter):
    def __init__(self):
        self.folds = []

    def fold_done(self, **facts):
        self.folds.append(facts)


def test_its_best_score_counts_a_variant_from_its_last_fold(iris_spec, tmp_path):
    """A stop right after a variant's last fold keeps that fold's best score; it must already count the variant
    the fold finished, as the leaderboard does (the run's stored best score and the leaderboard agree)."""
    from engine.spec import validate_spec

    iris_spec["models"][0]["params"] = {"C": [0.001, 1.0], "max_iter": [500]}
    iris_spec["cv"]["folds"] = 3
    reporter = FoldRecorder()
    engine.execute(validate_spec(iris_spec), reporter, tmp_path)

    finished_means = {}
    for facts in reporter.folds:
        if facts["fold"] == 3:
            finished_means[facts["variant"]] = facts["running_mean"]
            assert facts["best_score"] == pytest.approx(max(finished_means.values()))
    assert len(finished_means) == 2 and finished_means[2] > finished_means[1]
