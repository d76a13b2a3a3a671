"""What the pages say about a dataset's columns: detected type, missing and distinct counts, the task a
target column suggests, and why a column cannot be a target. Plain pandas, no Django.

The profile is stored on the Dataset row (its `columns`), so the wizard can guess and refuse without
reading the file again.

pandas is imported in the functions that read a frame, not at the top: the pages import this module for the
profile-only rules (guess_task, target_problem), and pandas would add a second to every web process's
django.setup() (tests/test_light_setup.py).
"""

PREVIEW_ROWS = 20
# A regression needs at least 2 rows per fold and at least 2 folds.
MIN_ROWS = 4
# A non-numeric column with at most this many distinct values (or at most a tenth of its rows) is
# categorical; with more it is free text.
CATEGORICAL_LEVELS = 50
# Classifying into more classes than this is refused: it is an identifier or free text, not a label.
MAX_CLASSES = 1000
# A numeric target with at most this many distinct whole values looks like class labels.
CLASS_LIKE_LEVELS = 20


def column_kind(series):
    import pandas as pd

    values = series.dropna()
    if values.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric"
    distinct = values.nunique()
    return "categorical" if distinct <= max(CATEGORICAL_LEVELS, len(values) // 10) else "text"


def profile(frame):
    """[{"name", "dtype", "kind", "missing", "distinct", "min_class"}] for every column.

    `min_class` is the size of the smallest group of values (for refusing a target with a class smaller than
    the folds); None when the column has more than MAX_CLASSES values."""
    import pandas as pd

    columns = []
    for name in frame.columns:
        series = frame[name]
        counts = series.value_counts(dropna=True)
        columns.append({
            "name": str(name),
            "dtype": str(series.dtype),
            "kind": column_kind(series),
            "missing": int(series.isna().sum()),
            "distinct": len(counts),
            "min_class": int(counts.min()) if 0 < len(counts) <= MAX_CLASSES else None,
            "whole": bool(pd.api.types.is_integer_dtype(series)
                          or (pd.api.types.is_float_dtype(series) and (series.dropna() % 1 == 0).all())),
        })
    return columns


def upload_problem(frame):
    """Why an upload that pandas could read is still no use for any run, or None."""
    if frame.shape[0] == 0:
        return "The file has column names but no rows of data."
    if frame.shape[1] < 2:
        return "The file has one column; a run needs a target column and at least one feature column."
    if frame.shape[0] < MIN_ROWS:
        return (f"The file has {frame.shape[0]} rows of data, too few for any cross-validation: 2 folds of 2 rows "
                f"need at least {MIN_ROWS}.")
    return None


def guess_task(column):
    """"classification" or "regression" for a target column's profile entry."""
    if column["kind"] in ("categorical", "text"):
        return "classification"
    if column.get("whole") and column["distinct"] <= CLASS_LIKE_LEVELS:
        return "classification"
    return "regression"


def target_problem(column, task, folds, n_rows):
    """Why `column` (a profile entry) cannot be the target of `task` with `folds` folds, or None."""
    name = column["name"]
    if column["kind"] == "empty" or column["missing"] >= n_rows:
        return f"Column {name!r} is empty: it has no values to learn."
    if column["distinct"] == 1:
        return f"Column {name!r} is constant: every row has the same value, so there is nothing to predict."
    if task == "regression" and column["kind"] != "numeric":
        return f"Column {name!r} holds text; a regression target must hold numbers. Choose classification."
    if task == "classification":
        if column["distinct"] > MAX_CLASSES or column["min_class"] is None:
            return (f"Column {name!r} has {column['distinct']:,} different values: too many classes to learn "
                    "(is it an identifier or free text?). Choose another target, or regression if it is numeric.")
        if folds and column["min_class"] < folds:
            return (f"Column {name!r} has a class with only {column['min_class']} rows, fewer than the {folds} "
                    "folds. Use fewer folds or another target.")
    return None


def preview(frame):
    """The first rows as lists of display strings (missing values as "")."""
    import pandas as pd

    head = frame.head(PREVIEW_ROWS)
    return [["" if pd.isna(v) else str(v) for v in row] for row in head.itertuples(index=False, name=None)]
