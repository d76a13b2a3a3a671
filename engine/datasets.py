"""Loading a run's data and checking it before any fit, so bad data fails early with a message a person can act
on ("The target column 'y' is constant: every row is 3.0") instead of a scikit-learn traceback mid-run.

Built-in and synthetic data arrive as float arrays; an uploaded CSV stays a DataFrame, so text columns can
be one-hot encoded by name and the exported model keeps the column names it was trained on.
"""

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import catalog
from .files import file_sha256, read_csv

from .errors import DataError


@dataclass
class Data:
    source: str  # what to call the data in messages: "iris", "synthetic classification", "prices.csv"
    sha256: str
    target: str
    frame: pd.DataFrame | None = None  # a CSV as read; split into X and y by validate()
    problem: str | None = None  # why the CSV could not be read; validate() reports it
    X: object = None  # ndarray or DataFrame
    y: np.ndarray | None = None
    feature_names: list = field(default_factory=list)
    text_columns: list = field(default_factory=list)

    @property
    def n_rows(self):
        return 0 if self.y is None else len(self.y)

    @property
    def n_features(self):
        return len(self.feature_names)


def array_sha256(X, y):
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(X).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()


def load(ref, target="target", path=None):
    """Read the data a spec's dataset reference names. Problems with a CSV's content are kept for validate()."""
    kind = ref["kind"]
    if kind == "builtin":
        import sklearn.datasets

        loader = getattr(sklearn.datasets, catalog.BUILTIN_DATASETS[ref["name"]][1])
        bunch = loader()
        X, y = np.asarray(bunch.data, dtype=float), np.asarray(bunch.target)
        names = [str(n) for n in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(X.shape[1])]
        return Data(ref["name"], array_sha256(X, y), "target", X=X, y=y, feature_names=names)
    if kind == "synthetic":
        X, y = _synthetic(ref)
        names = [f"x{i}" for i in range(X.shape[1])]
        return Data(f"synthetic {ref['generator']}", array_sha256(X, y), "target", X=X, y=y, feature_names=names)
    if kind == "csv":
        if path is None:
            raise DataError(f"The uploaded dataset {ref.get('id')} has no file.", step="load_data")
        try:
            sha = file_sha256(path)
        except FileNotFoundError:
            raise DataError(f"The file of uploaded dataset {ref.get('id')} is missing.", step="load_data") from None
        data = Data(str(getattr(path, "name", path)), sha, target)
        data.frame, data.problem = read_csv(path)
        return data
    raise DataError(f"Unknown dataset kind {kind!r}.", step="load_data")


def _synthetic(ref):
    from sklearn import datasets

    n, d, seed, noise = ref["n_samples"], ref["n_features"], ref.get("seed", 0), ref.get("noise", 0.1)
    if ref["generator"] == "regression":
        return datasets.make_regression(
            n_samples=n, n_features=d, n_informative=max(1, d // 2), noise=noise, random_state=seed
        )
    classes = ref.get("n_classes", 2)
    # make_classification needs 2**informative >= classes; half the features informative is its usual shape.
    informative = min(d, max(d // 2, math.ceil(math.log2(classes)), 1))
    if 2**informative < classes:
        raise DataError(
            f"A synthetic dataset with {classes} classes needs at least {math.ceil(math.log2(classes))} features.",
            step="load_data",
        )
    return datasets.make_classification(
        n_samples=n, n_features=d, n_informative=informative, n_redundant=min(2, d - informative),
        n_classes=classes, n_clusters_per_class=1, flip_y=min(noise, 0.5), random_state=seed,
    )


# --- Validation ------------------------------------------------------------------------------------------


def validate(data, spec, chains=None, allow_nan=False):
    """Check the data can run as the spec says; raise DataError with a readable message if not.

    `chains` is [(branch name, [step names])] for the CV and training runners (None for evaluation, whose
    model brings its own preprocessing); `allow_nan` says whether every estimator accepts missing values.
    Splits a CSV into X and y. Returns a list of warnings. The message names every problem `problems` finds,
    so one failed run tells the whole story rather than the first part of it.
    """
    found, warnings = problems(data, spec, chains, allow_nan)
    if found:
        first = found[0]
        raise DataError(" ".join(p.message for p in found), step=first.step,
                        code=first.code if len(found) == 1 else "several")
    return warnings


def problems(data, spec, chains=None, allow_nan=False):
    """([DataError, ...], [warning, ...]): every reason the data cannot run as the spec says, all at once.

    A problem with the file or the target stops the checking there (nothing after it can be judged); the
    feature and row checks are all made. The wizard's Review step lists these before a run is launched."""
    warnings = []
    try:
        if data.problem:
            raise DataError(data.problem, code="unreadable")
        if data.frame is not None:
            _split_frame(data, spec.get("drop_columns") or ())
        try:
            _check_target(data, spec, warnings)
        except DataError as e:
            e.code, e.column = "target", data.target
            raise
    except DataError as e:
        return [e], warnings
    found = _feature_problems(data, chains, allow_nan) if chains is not None else []
    try:
        _check_rows(data, spec)
    except DataError as e:
        e.code = "rows"
        found.append(e)
    return found, warnings


def _split_frame(data, drop=()):
    frame, target = data.frame, data.target
    if frame.shape[0] == 0:
        raise DataError("The file has column names but no rows of data.", code="no_rows")
    if target not in frame.columns:
        shown = ", ".join(repr(c) for c in list(frame.columns)[:12])
        raise DataError(f"The target column {target!r} is not in the file. Its columns are: {shown}.",
                        code="no_target", column=target)
    absent = [c for c in drop if c not in frame.columns]
    if absent:
        raise DataError(f"The column {absent[0]!r} to leave out is not in the file.", code="no_column",
                        column=absent[0])
    features = [c for c in frame.columns if c != target and c not in drop]
    if not features:
        raise DataError(f"The file has only the target column {target!r}"
                        + (" once the left-out columns are gone" if drop else "")
                        + "; there are no features to learn from.", code="no_features")
    data.y = frame[target].to_numpy()
    data.X = frame[features]
    data.feature_names = features
    data.text_columns = [
        c for c in features if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]


def _first_rows(mask, limit=3):
    rows = (np.flatnonzero(mask) + 1)[:limit]
    return ", ".join(str(r) for r in rows)


def _check_target(data, spec, warnings):
    y, name = data.y, data.target
    missing = pd.isna(y)
    if missing.all():
        raise DataError(f"The target column {name!r} is empty: it has no values at all.")
    if missing.any():
        raise DataError(
            f"The target column {name!r} has no value in {int(missing.sum())} rows "
            f"(data rows {_first_rows(missing)}); remove those rows or fill them in."
        )
    values = pd.unique(y)
    # A model can still be evaluated on rows of one class; it cannot learn from them.
    if len(values) == 1 and spec["runner"] != "evaluation":
        raise DataError(f"The target column {name!r} is constant: every row is {_show(values[0])}")
    if spec["task"] == "regression":
        if not pd.api.types.is_numeric_dtype(pd.Series(y)) or pd.api.types.is_bool_dtype(pd.Series(y)):
            sample = next(v for v in y if not _is_number(v))
            raise DataError(
                f"The target column {name!r} must hold numbers for a regression task; it has {_show(sample)}."
            )
        data.y = y.astype(float)
    elif len(values) > max(20, len(y) // 2):
        warnings.append(
            f"The target column {name!r} has {len(values)} distinct values in {len(y)} rows: "
            "is this really a classification task?"
        )


def _feature_problems(data, chains, allow_nan):
    """One DataError per column and kind of problem (each branch that has it is named)."""
    X, found = data.X, {}

    def add(code, column, message):
        found.setdefault((code, column), DataError(message, code=code, column=column))

    for branch, steps in chains:
        where = f" of branch {branch!r}" if len(chains) > 1 else ""
        if not catalog.ENCODERS & set(steps):
            for column in data.text_columns:
                sample = X[column].dropna()
                example = f" (for example {_show(sample.iloc[0])})" if len(sample) else ""
                add("text", column,
                    f"Column {column!r} holds text{example}, and the preprocessing{where} has no one_hot_encoder to "
                    "turn it into numbers. Add a one_hot_encoder step, a drop_text_columns step to leave such columns "
                    "out, or remove the column.")
        if not allow_nan and not catalog.IMPUTERS & set(steps):
            for column in _numeric_columns(data):
                missing = pd.isna(_column(X, data, column))
                if missing.any():
                    add("missing", column,
                        f"Column {column!r} has {int(missing.sum())} missing values (data rows "
                        f"{_first_rows(missing)}), and the preprocessing{where} has no simple_imputer to fill "
                        "them in. Add a simple_imputer step, or remove those rows.")
    for column in _numeric_columns(data):
        values = np.asarray(_column(X, data, column), dtype=float)
        if np.isinf(values).any():
            add("infinite", column,
                f"Column {column!r} has infinite values (data rows {_first_rows(np.isinf(values))}).")
    return list(found.values())


def _numeric_columns(data):
    return [c for c in data.feature_names if c not in data.text_columns]


def _column(X, data, column):
    if isinstance(X, pd.DataFrame):
        return X[column].to_numpy()
    return X[:, data.feature_names.index(column)]


def _check_rows(data, spec):
    runner, n = spec["runner"], data.n_rows
    if runner == "cv":
        folds = spec["cv"]["folds"]
        if n < 2 * folds:
            raise DataError(
                f"The data has {n} rows, too few for {folds} folds: each fold needs at least 2 rows, "
                f"so at least {2 * folds} rows. Use fewer folds or more data."
            )
        if spec["cv"]["kind"] == "stratified_kfold":
            classes, counts = np.unique(data.y, return_counts=True)
            if counts.min() < folds:
                label = classes[counts.argmin()]
                raise DataError(
                    f"Class {_show(label)} has only {counts.min()} rows, fewer than the {folds} folds: stratified "
                    f"folds need at least {folds} rows of every class. Use fewer folds, or plain k-fold."
                )
    elif runner == "training":
        fraction = spec["training"]["validation_fraction"]
        held_out = math.ceil(n * fraction)
        if n - held_out < 2 or held_out < 1:
            raise DataError(f"The data has {n} rows, too few to hold out {fraction:.0%} for validation.")
        if spec["task"] == "classification":
            classes, counts = np.unique(data.y, return_counts=True)
            if counts.min() < 2:
                raise DataError(
                    f"Class {_show(classes[counts.argmin()])} has only 1 row: a validation split that keeps "
                    "every class needs at least 2 rows of each."
                )
            if held_out < len(classes):
                raise DataError(
                    f"Holding out {fraction:.0%} of {n} rows gives {held_out} validation rows, fewer than the "
                    f"{len(classes)} classes. Use a larger validation fraction or more data."
                )


def _is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _show(value):
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)
