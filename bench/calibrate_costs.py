"""Measures one fit (and its scoring) of every catalog estimator, default parameters, on a penguins-like and two
sizes of a diamonds-like frame, on one core: the figures engine/costs.py is calibrated from.

    .venv/bin/python bench/calibrate_costs.py     (prints the COSTS table to paste; a few minutes)
"""

import io
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine import catalog  # noqa: E402
from tests.datasets_like import diamonds_like, penguins_like  # noqa: E402


def frame(kind, rows):
    if kind == "penguins":
        df = pd.read_csv(io.StringIO(penguins_like()))
        return df.drop(columns=["species"]), df["species"], df["body_mass_g"].fillna(4000)
    df = pd.read_csv(io.StringIO(diamonds_like(n=rows))).drop(columns=["rownames"])
    return df.drop(columns=["price", "cut"]), df["cut"], df["price"]


def seconds(name, X, y):
    module, cls, _, _ = catalog.ESTIMATORS[name]
    estimator = getattr(__import__(module, fromlist=[cls]), cls)()
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include="number")),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_exclude="number"))])
    model = make_pipeline(prep, estimator)
    cut = len(X) * 4 // 5  # a fold of five: fit on four parts, score on one
    started = time.perf_counter()
    model.fit(X.iloc[:cut], y.iloc[:cut])
    model.predict(X.iloc[cut:])
    return time.perf_counter() - started


def main():
    sizes = [("penguins", 344), ("diamonds", 4000), ("diamonds", 16000)]
    frames = {s: frame(*s) for s in sizes}
    print("COSTS = {  # estimator: (seconds at 344 rows, seconds at 16,000 rows, exponent of the rows)")
    with threadpool_limits(1):
        for name, (_, _, tasks, _) in catalog.ESTIMATORS.items():
            times = []
            for size in sizes:
                X, y_class, y_reg = frames[size]
                times.append(seconds(name, X, y_class if "classification" in tasks else y_reg))
            exponent = math.log(max(times[2], 1e-4) / max(times[1], 1e-4)) / math.log(16000 / 4000)
            print(f"    {name!r}: ({times[0]:.4f}, {times[2]:.3f}, {max(exponent, 0.5):.2f}),")
    print("}")


if __name__ == "__main__":
    np.random.seed(0)
    main()
