"""Each out-of-fold plot on the results page of a real run (daphne, an RQ worker, Chromium): the numbers it draws
are scikit-learn's own on the same out-of-fold predictions, refitted here from the same split and model."""

import numpy as np
import pytest
from playwright.sync_api import expect
from sklearn import datasets as skd
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from runs.control import launch_run
from runs.models import Run
from tests.browser.conftest import screenshot
from tests.browser.test_results_flow import completed, open_page, stack  # noqa: F401 - stack is a fixture
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FOLDS = 5  # breast_cancer's held-out folds of ~114 rows keep every point of both curves (engine.diagnostics)
BINARY_SPEC = {
    "dataset": {"kind": "builtin", "name": "breast_cancer"},
    "task": "classification",
    "branches": [{"name": "default", "preprocessing": ["standard_scaler"]}],
    "models": [{"estimator": "LogisticRegression", "params": {"C": [0.05, 1.0], "max_iter": [500]}}],
    "cv": {"kind": "stratified_kfold", "folds": FOLDS, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}
REGRESSION_SPEC = {
    "dataset": {"kind": "builtin", "name": "diabetes"},
    "task": "regression",
    "models": [{"estimator": "Ridge", "params": {"alpha": [0.5, 5.0]}}],
    "cv": {"kind": "kfold", "folds": 3, "shuffle": True, "seed": 1},
    "metric": "r2",
}


def results_page(chromium, server, owner, spec):
    run = launch_run(owner, spec=spec, name="Plotted")
    wait_for(completed(run.pk), timeout=120, message="the run to complete")
    run.refresh_from_db()
    page = open_page(chromium, server, owner)
    page.goto(f"{server.url}/runs/{run.pk}/results/")
    expect(page.locator("#diagnostics h2")).to_contain_text(run.best_variant["description"])
    return page, run


def classification_folds(run):
    """The best variant's held-out rows per fold, as scikit-learn fits them: [(y_test, model, X_test)]."""
    X, y = skd.load_breast_cancer(return_X_y=True)
    splits = StratifiedKFold(FOLDS, shuffle=True, random_state=1).split(X, y)
    params = run.best_variant["params"]
    return [(y[test], make_pipeline(StandardScaler(), LogisticRegression(**params)).fit(X[train], y[train]), X[test])
            for train, test in splits]


def drawn(page, plot, fold=1):
    """The (x, y) values of one fold's line in a plot: what its polyline draws."""
    values = page.locator(f"#{plot} polyline[data-fold='{fold}']").get_attribute("data-values")
    return np.array([[float(v) for v in pair.split(",")] for pair in values.split()])


def test_it_draws_the_confusion_matrix_of_the_out_of_fold_predictions(chromium, stack, owner):
    page, run = results_page(chromium, stack, owner, BINARY_SPEC)

    cells = page.locator("#plot-confusion rect.cell")
    drawn_counts = [[0, 0], [0, 0]]
    for i in range(cells.count()):
        cell = cells.nth(i)
        drawn_counts[int(cell.get_attribute("data-true"))][int(cell.get_attribute("data-predicted"))] = int(
            cell.get_attribute("data-count"))

    folds = classification_folds(run)
    truth = np.concatenate([y for y, _, _ in folds])
    predicted = np.concatenate([model.predict(X) for _, model, X in folds])
    assert drawn_counts == confusion_matrix(truth, predicted).tolist()
    first = confusion_matrix(folds[0][0], folds[0][1].predict(folds[0][2]), normalize="true")
    assert first.sum(axis=1) == pytest.approx([1, 1])
    shares = page.locator("#plot-confusion-normalised rect.cell[data-true='0'][data-predicted='0']")
    assert float(shares.get_attribute("data-share")) == pytest.approx(drawn_counts[0][0] / sum(drawn_counts[0]), abs=1e-6)


def test_it_draws_each_folds_roc_curve_as_scikit_learn_computes_it(chromium, stack, owner):
    page, run = results_page(chromium, stack, owner, BINARY_SPEC)

    y_test, model, X_test = classification_folds(run)[0]
    fpr, tpr, _ = roc_curve(y_test, model.decision_function(X_test))
    assert drawn(page, "plot-roc") == pytest.approx(np.column_stack([fpr, tpr]), rel=1e-5, abs=1e-9)
    assert page.locator("#plot-roc polyline[data-fold]").count() == FOLDS
    expect(page.locator("#plot-roc polygon.band")).to_have_count(1)
    expect(page.locator("#plot-roc polyline.mean-line")).to_have_count(1)
    page.locator("#diagnostics").scroll_into_view_if_needed()
    page.locator("#diagnostics").screenshot(path=str(screenshot(page, "results-diagnostics").with_name("diag.png")))


def test_it_draws_each_folds_precision_recall_curve_as_scikit_learn_computes_it(chromium, stack, owner):
    page, run = results_page(chromium, stack, owner, BINARY_SPEC)

    y_test, model, X_test = classification_folds(run)[0]
    precision, recall, _ = precision_recall_curve(y_test, model.decision_function(X_test))
    assert drawn(page, "plot-pr") == pytest.approx(np.column_stack([recall, precision]), rel=1e-5, abs=1e-9)
    expect(page.locator("#plot-pr figcaption")).to_contain_text("AP")


def test_it_draws_each_folds_calibration_as_scikit_learn_bins_it(chromium, stack, owner):
    page, run = results_page(chromium, stack, owner, BINARY_SPEC)

    y_test, model, X_test = classification_folds(run)[0]
    observed, predicted = calibration_curve(y_test, model.predict_proba(X_test)[:, 1], n_bins=10)
    assert drawn(page, "plot-calibration") == pytest.approx(np.column_stack([predicted, observed]), rel=1e-5)


def test_it_draws_the_models_importance_per_feature(chromium, stack, owner):
    page, run = results_page(chromium, stack, owner, BINARY_SPEC)

    folds = classification_folds(run)
    mean = np.mean([np.abs(model[-1].coef_[0]) for _, model, _ in folds], axis=0)
    names = list(skd.load_breast_cancer().feature_names)
    top = page.locator("#plot-importance rect.bar").first
    assert top.get_attribute("data-feature") == names[int(np.argmax(mean))]
    assert float(top.get_attribute("data-mean")) == pytest.approx(mean.max(), rel=1e-4)


def regression_fold(run):
    X, y = skd.load_diabetes(return_X_y=True)
    train, test = next(KFold(3, shuffle=True, random_state=1).split(X, y))
    model = Ridge(**run.best_variant["params"]).fit(X[train], y[train])
    return y[test], model.predict(X[test])


def dots(page, plot, fold=1):
    points = page.locator(f"#{plot} circle[data-fold='{fold}']")
    return np.array(sorted((float(points.nth(i).get_attribute("data-x")),
                            float(points.nth(i).get_attribute("data-y"))) for i in range(points.count())))


def expected(xs, ys):
    return np.array(sorted(zip(xs, ys)))


def test_it_draws_predicted_against_actual_for_every_held_out_row(chromium, stack, owner):
    page, run = results_page(chromium, stack, owner, REGRESSION_SPEC)

    actual, predicted = regression_fold(run)  # 148 rows: fewer than the sample size, so every row is drawn
    assert dots(page, "plot-predicted") == pytest.approx(expected(predicted, actual), rel=1e-5)


def test_it_draws_the_residuals_of_every_held_out_row(chromium, stack, owner):
    page, run = results_page(chromium, stack, owner, REGRESSION_SPEC)

    actual, predicted = regression_fold(run)
    residuals = expected(predicted, actual - predicted)
    assert dots(page, "plot-residuals") == pytest.approx(residuals, rel=1e-4, abs=1e-3)
    # Another row of the leaderboard: htmx swaps its plots in with its fold chart.
    page.wait_for_function("() => window.htmx !== undefined")
    other = page.locator("table.leaderboard a.row-chart:not([aria-current])").first
    other.click()
    expect(page.locator("#diagnostics h2")).not_to_contain_text(run.best_variant["description"])
    assert dots(page, "plot-residuals") != pytest.approx(residuals, rel=1e-4, abs=1e-3)
