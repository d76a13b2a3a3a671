"""Out-of-fold diagnostics: the engine's numbers are scikit-learn's own on the fold's held-out rows; a real run
stores one row per fold; the results page and the API show them to the run's owner and staff, nobody else."""

import numpy as np
import pytest
from django.urls import reverse
from sklearn import datasets as skd
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine import diagnostics
from engine.spec import validate_spec
from runs.worker import execution
from runs.control import launch_run
from runs.models import FoldDiagnostic, Run

BINARY_SPEC = {
    "dataset": {"kind": "builtin", "name": "breast_cancer"},
    "task": "classification",
    "branches": [{"name": "default", "preprocessing": ["standard_scaler"]}],
    "models": [{"estimator": "LogisticRegression", "params": {"C": [0.1, 1.0], "max_iter": [500]}}],
    "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}
REGRESSION_SPEC = {
    "dataset": {"kind": "builtin", "name": "diabetes"},
    "task": "regression",
    "models": [{"estimator": "Ridge", "params": {"alpha": [1.0]}}],
    "cv": {"kind": "kfold", "folds": 3, "shuffle": True, "seed": 1},
    "metric": "r2",
}


def first_fold(X, y):
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=1).split(X, y))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X[train], y[train])
    return model, X[test], y[test]


def test_it_gives_scikit_learns_own_numbers_for_one_fold():
    X, y = skd.load_breast_cancer(return_X_y=True)
    model, X_test, y_test = first_fold(X, y)

    got = diagnostics.fold(model, X_test, y_test, "classification")

    assert got["confusion"] == confusion_matrix(y_test, model.predict(X_test)).tolist()
    scores = model.decision_function(X_test)
    fpr, tpr, _ = roc_curve(y_test, scores)
    assert len(fpr) <= diagnostics.MAX_CURVE_POINTS  # short enough to be kept whole
    assert got["roc"]["fpr"] == pytest.approx(fpr.tolist(), rel=1e-5)
    assert got["roc"]["tpr"] == pytest.approx(tpr.tolist(), rel=1e-5)
    # precision_recall_curve keeps every threshold: past MAX_CURVE_POINTS, an evenly spaced subset is kept.
    precision, recall, _ = precision_recall_curve(y_test, scores)
    assert_subset(got["pr"]["recall"], got["pr"]["precision"], recall, precision)
    observed, predicted = calibration_curve(y_test, model.predict_proba(X_test)[:, 1], n_bins=10)
    assert got["calibration"]["observed"] == pytest.approx(observed.tolist(), rel=1e-5)
    assert got["calibration"]["predicted"] == pytest.approx(predicted.tolist(), rel=1e-5)
    assert sum(got["calibration"]["counts"]) == len(y_test)
    assert got["importance"]["source"] == "coefficient" and len(got["importance"]["features"]) == 30


def assert_subset(xs, ys, all_xs, all_ys):
    """Each kept point is one of scikit-learn's (to the 6 significant digits stored), both ends kept, and
    there are at most MAX_CURVE_POINTS."""
    assert len(xs) <= diagnostics.MAX_CURVE_POINTS
    assert all(np.min(np.abs(all_xs - a) + np.abs(all_ys - b)) < 1e-5 for a, b in zip(xs, ys))
    assert (xs[0], xs[-1]) == pytest.approx((all_xs[0], all_xs[-1]), rel=1e-5)


def test_it_keeps_a_bounded_subset_of_scikit_learns_points_on_a_long_curve():
    X, y = skd.make_classification(n_samples=6000, n_features=10, flip_y=0.3, random_state=0)
    model, X_test, y_test = first_fold(X, y)

    got = diagnostics.fold(model, X_test, y_test, "classification")

    fpr, tpr, _ = roc_curve(y_test, model.decision_function(X_test))
    assert len(fpr) > diagnostics.MAX_CURVE_POINTS
    assert_subset(got["roc"]["fpr"], got["roc"]["tpr"], fpr, tpr)
    assert (got["roc"]["fpr"][0], got["roc"]["fpr"][-1]) == (0.0, 1.0)


def test_it_samples_the_rows_of_a_large_regression_fold():
    X, y = skd.make_regression(n_samples=1000, n_features=5, random_state=0)
    model = Ridge().fit(X, y)

    got = diagnostics.fold(model, X, y, "regression", seed=3)

    assert got["rows"] == 1000 and len(got["actual"]) == len(got["predicted"]) == diagnostics.MAX_SCATTER_POINTS
    assert got == diagnostics.fold(model, X, y, "regression", seed=3)  # the same sample each time
    assert all(np.min(np.abs(y - a)) <= 1e-5 * max(abs(a), 1) for a in got["actual"])  # rows of the data


def test_it_averages_curves_on_a_shared_grid():
    mean = diagnostics.mean_curve([{"fpr": [0, 0, 1], "tpr": [0, 1, 1]}, {"fpr": [0, 1], "tpr": [0, 1]}],
                                  "fpr", "tpr", start=0.0)

    at_half = mean["x"].index(0.5)
    assert mean["mean"][0] == 0.0 and mean["mean"][at_half] == pytest.approx(0.75)
    assert mean["high"][at_half] == pytest.approx(1.0) and mean["low"][at_half] == pytest.approx(0.5)


# --- A real run, its rows, its page and its API ------------------------------------------------------------


def executed(owner, spec, name="Diagnosed"):
    run = launch_run(owner, spec=validate_spec(spec), name=name)
    execution.execute(Run.objects.get(pk=run.pk))
    run.refresh_from_db()
    assert run.status == Run.Status.COMPLETED, run.error_message
    return run


@pytest.fixture
def binary_run(transactional_db, owner):
    return executed(owner, BINARY_SPEC)


def test_it_stores_one_row_per_fold_with_its_metrics_seq(binary_run):
    rows = FoldDiagnostic.objects.filter(run=binary_run).order_by("variant", "fold")

    assert [(r.variant, r.fold) for r in rows] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    metric_seqs = set(binary_run.fold_metrics.values_list("seq", flat=True))
    assert {r.seq for r in rows} == metric_seqs
    assert all(r.data["kind"] == "classification" and len(r.data["roc"]["fpr"]) > 2 for r in rows)


def test_it_shows_the_best_variants_plots_on_the_results_page(client, binary_run, owner):
    client.force_login(owner)

    page = client.get(reverse("results:run", args=[binary_run.pk])).content.decode()

    for plot in ("plot-confusion", "plot-confusion-normalised", "plot-roc", "plot-pr", "plot-calibration",
                 "plot-importance"):
        assert f'id="{plot}"' in page
    best = binary_run.best_variant
    assert f'data-fold="1"' in page and best["description"] in page


def test_it_swaps_the_plots_with_the_fold_chart_when_a_row_is_picked(client, binary_run, owner):
    client.force_login(owner)

    response = client.get(reverse("results:run", args=[binary_run.pk]), {"row": "default/1"}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert 'id="fold-chart"' in body and 'id="diagnostics" aria-labelledby="diagnostics-h" hx-swap-oob="true"' in body
    assert "C=0.1" in body.split('id="diagnostics"')[1]


def test_it_gives_the_same_numbers_through_the_api(client, binary_run, owner):
    client.force_login(owner)

    data = client.get(f"/api/v1/runs/{binary_run.pk}/diagnostics/").json()

    best = binary_run.best_variant
    assert (data["branch"], data["variant"]) == (best["branch"], best["variant"])
    stored = FoldDiagnostic.objects.get(run=binary_run, variant=best["variant"], fold=1).data
    assert data["folds"][0]["roc"] == stored["roc"]
    summed = np.sum([f["confusion"] for f in data["folds"]], axis=0).tolist()
    assert data["confusion"]["counts"] == summed
    other = client.get(f"/api/v1/runs/{binary_run.pk}/diagnostics/", {"variant": 3 - best["variant"]}).json()
    assert other["variant"] == 3 - best["variant"]
    assert client.get(f"/api/v1/runs/{binary_run.pk}/diagnostics/", {"variant": 9}).status_code == 404


def test_it_hides_a_runs_diagnostics_from_an_outsider(client, binary_run, outsider):
    client.force_login(outsider)

    assert client.get(reverse("results:run", args=[binary_run.pk])).status_code == 404
    assert client.get(f"/api/v1/runs/{binary_run.pk}/diagnostics/").status_code == 404


def test_it_shows_staff_every_runs_diagnostics(client, binary_run, staff):
    client.force_login(staff)

    assert 'id="plot-roc"' in client.get(reverse("results:run", args=[binary_run.pk])).content.decode()
    assert client.get(f"/api/v1/runs/{binary_run.pk}/diagnostics/").json()["kind"] == "classification"


def test_it_plots_a_regression_run(client, transactional_db, owner):
    run = executed(owner, REGRESSION_SPEC, name="Regression")
    client.force_login(owner)

    page = client.get(reverse("results:run", args=[run.pk])).content.decode()

    assert 'id="plot-predicted"' in page and 'id="plot-residuals"' in page and 'id="plot-importance"' in page
    data = client.get(f"/api/v1/runs/{run.pk}/diagnostics/").json()
    assert data["kind"] == "regression" and sum(f["rows"] for f in data["folds"]) == 442


def test_it_overlays_two_runs_mean_curves_on_compare(client, binary_run, owner):
    other = executed(owner, {**BINARY_SPEC, "cv": {**BINARY_SPEC["cv"], "seed": 2}}, name="Other split")
    client.force_login(owner)

    page = client.get(reverse("results:compare"), {"runs": f"{binary_run.pk},{other.pk}"}).content.decode()

    roc = page.split('id="overlay-roc"')[1].split("</figure>")[0]
    assert roc.count("<polyline") == 2 and 'id="overlay-pr"' in page
    for run in (binary_run, other):
        mean = client.get(f"/api/v1/runs/{run.pk}/diagnostics/").json()["roc"]["mean"]
        assert " ".join(f"{x!r},{y!r}" for x, y in zip(mean["x"], mean["mean"])) in roc


def test_it_hides_the_overlay_of_someone_elses_run(client, binary_run, outsider):
    own = launch_run(outsider, spec=validate_spec(BINARY_SPEC), name="Mallory's")
    client.force_login(outsider)

    response = client.get(reverse("results:compare"), {"runs": f"{own.pk},{binary_run.pk}"})

    assert response.status_code == 404 and 'id="overlay-roc"' not in response.content.decode()
