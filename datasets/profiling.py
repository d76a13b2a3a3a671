"""What the pages say about a dataset's columns: detected type, missing and distinct counts, statistics (min,
mean, max and a small histogram for numbers, the top values otherwise), flags for columns that are no use as
features, the target and task the data suggests, and why a column cannot be a target. Plain pandas, no Django.

The profile is stored on the Dataset row (its `columns`), so the wizard can guess, propose and refuse without
reading the file again. docs/datasets.md says what each flag means.

pandas and numpy are imported in the functions that read a frame, not at the top: the pages import this module
for the profile-only rules (guess_task, target_problem, suggest), and pandas would add a second to every web
process's django.setup() (tests/test_light_setup.py).
"""

import math

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
HISTOGRAM_BINS = 10
TOP_VALUES = 5
SHOWN_VALUE_LENGTH = 40
# Below this many rows every column of a small table is "unique per row"; an ID flag there says nothing.
MIN_ID_ROWS = 20
# A column missing in more than this share of its rows is flagged: filling it in would mostly invent it.
MOSTLY_MISSING = 0.5
# Names data sets commonly give the column to predict (scikit-learn's frames, Kaggle's and R's classic sets).
# Only a tie-breaker: without one of these the suggestion is the last usable column.
TARGET_NAMES = ("target", "label", "labels", "class", "y", "outcome", "species", "survived", "price", "quality")
FLAG_ORDER = ("id_like", "constant", "mostly_missing", "high_cardinality")


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
    """[{"name", "dtype", "kind", "missing", "distinct", "min_class", "whole", "stats", "flags"}] per column.

    `min_class` is the size of the smallest group of values (for refusing a target with a class smaller than
    the folds); None when the column has more than MAX_CLASSES values. `stats` holds min, mean, max and a
    histogram for numbers, the top values otherwise; `flags` names what makes the column a poor feature
    (FLAG_ORDER)."""
    import pandas as pd

    columns = []
    for name in frame.columns:
        series = frame[name]
        counts = series.value_counts(dropna=True)
        column = {
            "name": str(name),
            "dtype": str(series.dtype),
            "kind": column_kind(series),
            "missing": int(series.isna().sum()),
            "distinct": len(counts),
            "min_class": int(counts.min()) if 0 < len(counts) <= MAX_CLASSES else None,
            "whole": bool(pd.api.types.is_integer_dtype(series)
                          or (pd.api.types.is_float_dtype(series) and (series.dropna() % 1 == 0).all())),
        }
        column["stats"] = _numeric_stats(series) if column["kind"] == "numeric" else _top_values(counts)
        column["flags"] = _flags(series, column, len(frame))
        columns.append(column)
    return columns


def is_current(columns):
    """Whether a stored profile has everything this module now computes (older uploads lack the statistics)."""
    return bool(columns) and "flags" in columns[0]


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None  # JSON (and PostgreSQL's jsonb) has no NaN or Infinity


def _numeric_stats(series):
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
    values = values[np.isfinite(values)]
    if not len(values):
        return {}
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS if values.min() < values.max() else 1)
    return {"min": _finite(values.min()), "mean": _finite(values.mean()), "max": _finite(values.max()),
            "histogram": [int(c) for c in counts], "edges": [_finite(edges[0]), _finite(edges[-1])]}


def _top_values(counts):
    return {"top": [[_short(value), int(n)] for value, n in counts.head(TOP_VALUES).items()]}


def _short(value):
    text = str(value)
    return text if len(text) <= SHOWN_VALUE_LENGTH else text[: SHOWN_VALUE_LENGTH - 1] + "…"


def _flags(series, column, n_rows):
    flags = []
    unique_per_row = n_rows >= MIN_ID_ROWS and column["missing"] == 0 and column["distinct"] == n_rows
    if unique_per_row and column["kind"] != "numeric":
        flags.append("id_like")  # a name or a key: one value per row teaches a model nothing about new rows
    elif unique_per_row and (series.is_monotonic_increasing or series.is_monotonic_decreasing):
        flags.append("id_like")  # a row index: it orders the rows, and sorted data makes it predict the target
    if column["distinct"] == 1:
        flags.append("constant")
    if n_rows and column["missing"] > MOSTLY_MISSING * n_rows:
        flags.append("mostly_missing")
    if column["kind"] == "text" and "id_like" not in flags:
        flags.append("high_cardinality")
    return flags


def flag_notes(column):
    """One sentence per flag of a column's profile entry, in the words the pages and the wizard use."""
    notes = {
        "id_like": ("unique in every row and in order: a row index or ID, not a feature" if column["kind"] == "numeric"
                    else "unique in every row: a name or an ID, not a feature"),
        "constant": "the same value in every row: nothing to learn from",
        "mostly_missing": f"missing in {column['missing']:,} rows, more than half",
        "high_cardinality": (f"{column['distinct']:,} different text values: too many to one-hot encode usefully"),
    }
    return [notes[f] for f in FLAG_ORDER if f in column.get("flags", ())]


def suggest(columns, n_rows, folds=5):
    """(target column name, task) the profile suggests, or (None, None) when no column can be a target.

    A column named like a target (TARGET_NAMES) first, else the last one; flagged columns and columns that
    could not be a target with `folds` folds are passed over."""
    usable = [c for c in columns if "kind" in c and not c.get("flags")
              and target_problem(c, guess_task(c), folds, n_rows) is None]
    named = [c for c in usable if c["name"].strip().lower() in TARGET_NAMES]
    chosen = (named or usable[-1:] or [None])[0]
    return (chosen["name"], guess_task(chosen)) if chosen else (None, None)


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
