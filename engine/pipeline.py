"""Turning a spec's names into scikit-learn objects: pipelines, the fold splitter, and the metrics.

A branch is a chain of preprocessing steps. Steps before a one_hot_encoder work on the numeric columns, except
a categorical_imputer, which fills the text columns' gaps just before the encoder; the encoder turns the text
columns into numbers; steps after it see every column. Without text columns the encoder and the categorical
imputer have nothing to do and are left out.
"""

import math
import warnings

import numpy as np
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from . import catalog

from . import scoring


def make_estimator(variant, seed):
    module, cls_name, _, _ = catalog.ESTIMATORS[variant["estimator"]]
    estimator = catalog.load_class(module, cls_name)(**variant["params"])
    # Seed anything random the spec left unseeded, so a rerun of the same spec gives the same numbers.
    if "random_state" in estimator.get_params() and "random_state" not in variant["params"]:
        estimator.set_params(random_state=seed)
    return estimator


def allows_nan(variant):
    from sklearn.utils import get_tags

    return get_tags(make_estimator(variant, 0)).input_tags.allow_nan


def make_step(step, task, seed):
    name, params = step["name"], dict(step.get("params") or {})
    module, cls_name, _ = catalog.PREPROCESSING[name]
    cls = catalog.load_class(module, cls_name)
    if name == "pca":
        n = params.get("n_components")
        if n is not None and n >= 1:
            params["n_components"] = int(n)  # 3.0 means three components; a fraction means explained variance
        params.setdefault("random_state", seed)
    if name == "select_k_best":
        from sklearn.feature_selection import f_classif, f_regression

        params["score_func"] = f_classif if task == "classification" else f_regression
    if name == "one_hot_encoder":
        params.update(handle_unknown="ignore", sparse_output=False)
    return name, cls(**params)


def build(steps, variant, *, task, seed, text_columns=(), numeric_columns=()):
    """An unfitted Pipeline: the branch's preprocessing, then the estimator as step "model"."""
    names = [s["name"] for s in steps]
    encoder_at = next((i for i, n in enumerate(names) if n in catalog.ENCODERS), None)
    text_only = catalog.ENCODERS | catalog.CATEGORICAL_IMPUTERS
    if encoder_at is None or not text_columns:
        chain = [make_step(s, task, seed) for s in steps if s["name"] not in text_only]
    else:
        from sklearn.compose import ColumnTransformer

        before = [make_step(s, task, seed) for s in steps[:encoder_at] if s["name"] not in text_only]
        fill = [make_step(s, task, seed) for s in steps[:encoder_at] if s["name"] in catalog.CATEGORICAL_IMPUTERS]
        text = _text_step(steps[encoder_at], task, seed)
        if fill and text != "drop":
            text = Pipeline([*_unique(fill), (steps[encoder_at]["name"], text)])
        columns = ColumnTransformer(
            [
                ("numeric", Pipeline(before) if before else "passthrough", list(numeric_columns)),
                ("text", text, list(text_columns)),
            ],
            verbose_feature_names_out=False,
        )
        after = [make_step(s, task, seed) for s in steps[encoder_at + 1 :] if s["name"] not in text_only]
        chain = [("columns", columns), *after]
    return Pipeline([*_unique(chain), ("model", make_estimator(variant, seed))])


def _text_step(step, task, seed):
    return "drop" if step["name"] == "drop_text_columns" else make_step(step, task, seed)[1]


def _unique(chain):
    """Pipeline step names must be unique; a chain may use the same step twice."""
    seen, out = {}, []
    for name, step in chain:
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}_{seen[name]}", step))
    return out


def splitter(cv, task):
    from sklearn import model_selection as ms

    kind, folds, shuffle, seed = cv["kind"], cv["folds"], cv["shuffle"], cv["seed"]
    if kind == "shuffle_split":
        return ms.ShuffleSplit(n_splits=folds, test_size=0.2, random_state=seed)
    cls = ms.StratifiedKFold if kind == "stratified_kfold" and task == "classification" else ms.KFold
    return cls(n_splits=folds, shuffle=shuffle, random_state=seed if shuffle else None)


def take(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def better(task, metric, a, b):
    """Is score `a` better than `b` (None is worse than anything)?"""
    return scoring.better(a, b, scoring.greater_is_better(task, metric))


def score(model, X, y, task):
    """Every metric of the task for a fitted model on (X, y); None where a metric does not apply.

    Each equals scikit-learn's metric function of the same name on the same predictions (tests/test_metrics.py).
    """
    if task == "regression":
        pred = model.predict(X)
        return {
            "r2": _finite(skm.r2_score(y, pred)),
            "rmse": _finite(skm.root_mean_squared_error(y, pred)),
            "mae": _finite(skm.mean_absolute_error(y, pred)),
            "mape": _finite(skm.mean_absolute_percentage_error(y, pred)),
        }
    pred = model.predict(X)
    ranked = _ranking_scores(model, X, y)
    return {
        "accuracy": _finite(skm.accuracy_score(y, pred)),
        "balanced_accuracy": _quiet(skm.balanced_accuracy_score, y, pred),
        "f1_macro": _finite(skm.f1_score(y, pred, average="macro")),
        "precision_macro": _quiet(skm.precision_score, y, pred, average="macro", zero_division=0),
        "recall_macro": _quiet(skm.recall_score, y, pred, average="macro", zero_division=0),
        "roc_auc": _roc_auc(model, y, ranked),
        "average_precision": _average_precision(model, y, ranked),
        "log_loss": _log_loss(model, X, y),
    }


def _ranking_scores(model, X, y):
    """What ROC AUC and average precision rank by, as scikit-learn's "roc_auc" and "average_precision" scorers
    do for two classes (the decision function first, else the positive class's probability), and the class
    probabilities for more (as "roc_auc_ovr"). None where the model has neither or the fold has one class."""
    classes = getattr(model, "classes_", None)
    if classes is None or len(np.unique(y)) < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(classes) == 2:
                if hasattr(model, "decision_function"):
                    return model.decision_function(X)
                return model.predict_proba(X)[:, 1] if hasattr(model, "predict_proba") else None
            return model.predict_proba(X) if hasattr(model, "predict_proba") else None
    except (ValueError, AttributeError):
        return None  # e.g. SVC without probability estimates


def _roc_auc(model, y, ranked):
    if ranked is None:
        return None
    classes = model.classes_
    if len(classes) == 2:
        return _quiet(skm.roc_auc_score, y == classes[1], ranked)
    return _quiet(skm.roc_auc_score, y, ranked, multi_class="ovr", labels=classes)


def _average_precision(model, y, ranked):
    """Two classes: the positive (second) class's AP. More: the macro mean of each class's one-vs-rest AP."""
    if ranked is None:
        return None
    classes = model.classes_
    if len(classes) == 2:
        return _quiet(skm.average_precision_score, y == classes[1], ranked)
    from sklearn.preprocessing import label_binarize

    return _quiet(skm.average_precision_score, label_binarize(y, classes=classes), ranked, average="macro")


def _log_loss(model, X, y):
    """Lower is better; needs class probabilities (None without them). The model's classes are the labels,
    so a fold that lacks a class is still scored."""
    if not hasattr(model, "predict_proba"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proba = model.predict_proba(X)
    except (ValueError, AttributeError):
        return None
    return _quiet(skm.log_loss, y, proba, labels=model.classes_)


def _quiet(metric, *args, **kwargs):
    """`metric(*args, **kwargs)` as a finite float, or None where it is undefined (e.g. a class missing from
    this fold); its warnings are left out, as the value says what they would."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _finite(metric(*args, **kwargs))
    except (ValueError, AttributeError):
        return None


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def fresh(template):
    return clone(template)
