"""The task's metrics: what each fold records equals scikit-learn's own metric functions on the same out-of-fold
predictions, and lower-is-better metrics (log loss, RMSE, MAE, MAPE) rank lowest first everywhere: the engine's
best variant (the one refitted), the leaderboard, the API's and the results page's `rank_by`."""

import re

import numpy as np
import pytest
from django.urls import reverse
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import label_binarize

from engine import catalog
from runs.control import launch_run
from runs.models import FoldMetric, Run
from tests.api.conftest import client_for
from tests.helpers import wait_for


def finished(run, timeout=120):
    wait_for(lambda: Run.objects.filter(pk=run.pk, status__in=Run.TERMINAL).exists(), timeout=timeout,
             message=f"run {run.pk} to end")
    run.refresh_from_db()
    assert run.status == Run.Status.COMPLETED, run.error_message + run.traceback
    return run


def recorded(run, variant, metric):
    return [m.value for m in FoldMetric.objects.filter(run=run, variant=variant, metric=metric).order_by("fold")]


def out_of_fold(model, X, y, splitter):
    """Per fold: the fitted model, the test rows' truth, predictions, probabilities and decision scores."""
    for train, test in splitter.split(X, y):
        fitted = model.fit(X[train], y[train])
        scores = fitted.decision_function(X[test]) if hasattr(fitted, "decision_function") else None
        proba = fitted.predict_proba(X[test]) if hasattr(fitted, "predict_proba") else None
        yield fitted, y[test], fitted.predict(X[test]), proba, scores


def classification_spec(name, metric, C):
    return {"dataset": {"kind": "builtin", "name": name}, "task": "classification",
            "models": [{"estimator": "LogisticRegression", "params": {"C": C, "max_iter": [5000]}}],
            "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 7}, "metric": metric}


def test_it_records_every_classification_metric_as_sklearn_computes_it(worker, owner):
    binary = launch_run(owner, spec=classification_spec("breast_cancer", "balanced_accuracy", [1.0]))
    multi = launch_run(owner, spec=classification_spec("iris", "average_precision", [1.0]))
    splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=7)

    X, y = load_breast_cancer(return_X_y=True)
    expected = {name: [] for name in catalog.METRICS["classification"]}
    for fitted, truth, pred, proba, scores in out_of_fold(LogisticRegression(C=1.0, max_iter=5000), X, y, splitter):
        expected["accuracy"].append(skm.accuracy_score(truth, pred))
        expected["balanced_accuracy"].append(skm.balanced_accuracy_score(truth, pred))
        expected["f1_macro"].append(skm.f1_score(truth, pred, average="macro"))
        # Two classes: macro averages too, as the names say (not the positive class's precision and recall).
        expected["precision_macro"].append(skm.precision_score(truth, pred, average="macro"))
        expected["recall_macro"].append(skm.recall_score(truth, pred, average="macro"))
        # Ranked by the decision function, as scikit-learn's "roc_auc" and "average_precision" scorers do.
        expected["roc_auc"].append(skm.roc_auc_score(truth, scores))
        expected["average_precision"].append(skm.average_precision_score(truth, scores))
        expected["log_loss"].append(skm.log_loss(truth, proba, labels=fitted.classes_))
    binary = finished(binary)
    for name, values in expected.items():
        np.testing.assert_allclose(recorded(binary, 1, name), values, rtol=1e-9, err_msg=name)
    assert binary.best_score == pytest.approx(np.mean(expected["balanced_accuracy"]))

    X, y = load_iris(return_X_y=True)
    expected = {"precision_macro": [], "recall_macro": [], "average_precision": [], "log_loss": []}
    for fitted, truth, pred, proba, _ in out_of_fold(LogisticRegression(C=1.0, max_iter=5000), X, y, splitter):
        expected["precision_macro"].append(skm.precision_score(truth, pred, average="macro"))
        expected["recall_macro"].append(skm.recall_score(truth, pred, average="macro"))
        # More classes: the macro mean of each class's one-vs-rest AP on the class probabilities.
        expected["average_precision"].append(
            skm.average_precision_score(label_binarize(truth, classes=fitted.classes_), proba, average="macro"))
        expected["log_loss"].append(skm.log_loss(truth, proba, labels=fitted.classes_))
    multi = finished(multi)
    for name, values in expected.items():
        np.testing.assert_allclose(recorded(multi, 1, name), values, rtol=1e-9, err_msg=name)


def test_it_picks_and_ranks_the_lowest_error_first(worker, owner):
    """Log loss and MAPE as primary metrics: the engine refits the lowest and the leaderboard ranks it first."""
    by_loss = launch_run(owner, spec=classification_spec("iris", "log_loss", [0.001, 1.0]))
    regression = launch_run(owner, spec={
        "dataset": {"kind": "builtin", "name": "diabetes"}, "task": "regression",
        "models": [{"estimator": "Ridge", "params": {"alpha": [1000.0, 0.1]}}],
        "cv": {"kind": "kfold", "folds": 3, "shuffle": True, "seed": 3}, "metric": "mape"})

    X, y = load_diabetes(return_X_y=True)
    mape = {variant: np.mean([skm.mean_absolute_percentage_error(truth, pred) for _, truth, pred, _, _ in
                              out_of_fold(Ridge(alpha=alpha), X, y, KFold(n_splits=3, shuffle=True, random_state=3))])
            for variant, alpha in ((1, 1000.0), (2, 0.1))}
    regression = finished(regression)
    np.testing.assert_allclose(
        [np.mean(recorded(regression, v, "mape")) for v in (1, 2)], [mape[1], mape[2]], rtol=1e-9)
    assert mape[2] < mape[1] and regression.best_variant["variant"] == 2
    assert regression.best_score == pytest.approx(mape[2])

    api = client_for(owner)
    by_loss = finished(by_loss)
    losses = {v: np.mean(recorded(by_loss, v, "log_loss")) for v in (1, 2)}
    assert losses[2] < losses[1] and by_loss.best_variant["variant"] == 2  # C=1 is refitted, not C=0.001
    body = api.get(f"/api/v1/runs/{by_loss.pk}/results/").json()
    assert (body["rank_by"], body["rank_by_greater_is_better"]) == ("log_loss", False)
    assert [r["variant"] for r in body["leaderboard"]] == [2, 1]


def disagreeing(owner):
    """A run whose variants disagree: A is better on accuracy (the primary), B on log loss (lower)."""
    run = launch_run(owner, spec=classification_spec("iris", "accuracy", [1.0, 0.001]))
    run.mark_running("w1")
    for variant, description, accuracy, loss in ((1, "A", 0.9, 0.6), (2, "B", 0.8, 0.3)):
        for fold in (1, 2, 3):
            for metric, value in (("accuracy", accuracy), ("log_loss", loss + fold / 100)):
                FoldMetric.objects.create(run=run, variant=variant, variant_description=description, fold=fold,
                                          metric=metric, value=value, fit_time=0.05)
    Run.objects.filter(pk=run.pk).update(finished_fits=6, total_fits=6, total_folds=3)
    run.mark_completed({"best_score": 0.9})
    return run


def test_it_ranks_the_api_leaderboard_by_any_recorded_metric(owner, outsider):
    run = disagreeing(owner)
    api, url = client_for(owner), f"/api/v1/runs/{run.pk}/results/"
    body = api.get(url).json()
    assert (body["rank_by"], [r["variant"] for r in body["leaderboard"]]) == ("accuracy", [1, 2])
    body = api.get(url, {"rank_by": "log_loss"}).json()
    assert (body["metric"], body["rank_by"], body["rank_by_greater_is_better"]) == ("accuracy", "log_loss", False)
    assert [(r["rank"], r["variant"]) for r in body["leaderboard"]] == [(1, 2), (2, 1)]  # the lowest loss first
    assert body["leaderboard"][0]["scores"]["log_loss"]["mean"] == pytest.approx(0.32)
    assert body["best_score"] == pytest.approx(0.9)  # the best variant is still the primary metric's
    for unknown in ("rmse", "nonsense"):
        response = api.get(url, {"rank_by": unknown})
        assert response.status_code == 400 and list(response.json()) == ["rank_by"], unknown
    assert "did not record 'rmse'" in api.get(url, {"rank_by": "rmse"}).json()["rank_by"][0]
    assert client_for(outsider).get(url, {"rank_by": "log_loss"}).status_code == 404


def test_it_ranks_the_results_page_by_any_recorded_metric(client, owner, outsider):
    run = disagreeing(owner)
    client.force_login(owner)
    url = reverse("results:run", args=[run.pk])
    html = client.get(url).content.decode()
    assert order(html) == ["A", "B"] and "ranked by Accuracy, higher is better" in html
    assert '<option value="log_loss">Log loss</option>' in html
    html = client.get(url, {"rank_by": "log_loss"}).content.decode()
    assert order(html) == ["B", "A"] and "ranked by Log loss, lower is better" in html
    assert '<option value="log_loss" selected>' in html
    assert 'href="?rank_by=log_loss&amp;sort=accuracy&amp;dir=better"' in html  # header links keep the ranking
    response = client.get(url, {"rank_by": "rmse"})
    assert response.status_code == 400 and order(response.content.decode()) == ["A", "B"]
    assert "This run did not record “rmse”" in response.content.decode()
    client.force_login(outsider)
    assert client.get(url, {"rank_by": "log_loss"}).status_code == 404


def order(html):
    return re.findall(r'<td class="num">\d+</td>\s*<td class="variant-cell"><span class="variant-desc">(\w+)<', html)


def test_it_offers_every_metric_in_the_wizard_with_its_direction(client, owner):
    from tests.test_wizard import IRIS_STEPS, post, walk

    client.force_login(owner)
    walk(client, IRIS_STEPS[:4])
    html = client.get("/experiments/new/?step=cv").content.decode()
    for name, label, direction in (("balanced_accuracy", "Balanced accuracy", "higher"),
                                   ("precision_macro", "Precision (macro)", "higher"),
                                   ("recall_macro", "Recall (macro)", "higher"),
                                   ("average_precision", "Average precision", "higher"),
                                   ("log_loss", "Log loss", "lower")):
        assert f'<option value="{name}">{label} ({direction} is better)</option>' in html, name
    response = post(client, "cv", {**IRIS_STEPS[4][1], "metric": "log_loss"})
    assert response.status_code == 302
    walk(client, IRIS_STEPS[5:])
    review = client.get("/experiments/new/?step=review").content.decode()
    assert "Log loss is primary (lower is better" in review

    # The task decides the metrics offered.
    walk(client, [("dataset", {"source": "builtin:diabetes"}), ("target", {"task": "regression"})])
    html = client.get("/experiments/new/?step=cv").content.decode()
    assert '<option value="mape">MAPE (lower is better)</option>' in html
    assert "log_loss" not in html
