"""What one fit of a catalog estimator costs on one core, by the size of the data: the Review step's estimate
when there is no history, and the ETA's guess for an estimator a run has not fitted yet (scaled by how fast
this machine fits the ones it has: engine.eta).

COSTS was measured by bench/calibrate_costs.py: one fit and its scoring, default parameters, a fold of five
(four fifths of the rows), one thread, with the wizard's preprocessing (impute, scale, one-hot), on a
penguins-like frame (344 rows) and a diamonds-like one at 4,000 and 16,000 rows (about 10 columns each once
encoded). A fit's seconds are then the small-frame time (what a fit costs whatever the size: imports, checks,
the pipeline) plus the rest, grown as rows ** exponent (from the 4,000 and 16,000-row fits: about 0.5-0.9 for
most, 2.3-2.6 for the kernel SVMs) and linearly in the columns. The machine was shared and loaded; the Review
step shows the estimate as a range for that reason.
"""

import os


REFERENCE_ROWS = 16_000
REFERENCE_COLUMNS = 10
SMALL_ROWS = 344

COSTS = {  # estimator: (seconds at 344 rows, seconds at 16,000 rows, exponent of the rows)
    "LogisticRegression": (0.0554, 0.074, 0.66),
    "RidgeClassifier": (0.0246, 0.074, 0.50),
    "SGDClassifier": (0.0285, 0.300, 0.78),
    "Perceptron": (0.0215, 0.089, 0.50),
    "KNeighborsClassifier": (0.0242, 0.081, 0.59),
    "DecisionTreeClassifier": (0.0193, 0.059, 0.50),
    "RandomForestClassifier": (0.2234, 1.737, 0.68),
    "GradientBoostingClassifier": (0.5245, 4.763, 0.84),
    "HistGradientBoostingClassifier": (0.1547, 0.174, 0.50),
    "SVC": (0.0143, 9.181, 2.28),
    "GaussianNB": (0.0490, 0.081, 0.50),
    "MLPClassifier": (0.4680, 4.575, 0.50),
    "LinearRegression": (0.0184, 0.052, 0.50),
    "Ridge": (0.0367, 0.037, 0.50),
    "Lasso": (0.0193, 0.020, 0.50),
    "ElasticNet": (0.0175, 0.031, 0.50),
    "SGDRegressor": (0.0353, 0.036, 0.50),
    "KNeighborsRegressor": (0.0128, 0.048, 0.62),
    "DecisionTreeRegressor": (0.0131, 0.046, 0.74),
    "RandomForestRegressor": (0.1473, 1.928, 0.74),
    "GradientBoostingRegressor": (0.0645, 0.620, 0.90),
    "HistGradientBoostingRegressor": (0.0588, 0.195, 0.50),
    "SVR": (0.0171, 11.802, 2.61),
    "MLPRegressor": (0.2136, 2.857, 0.50),
}
UNKNOWN = (0.1, 1.0, 1.0)  # an estimator added to the catalog and not measured yet


# Parameters that multiply a model's work: the number of trees, boosting rounds or passes. max_iter only where
# it is the rounds or passes made; for the linear solvers it is a cap they seldom reach.
WORK_PARAMS = ("n_estimators", "max_iter")
ITERATING = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "MLPClassifier", "MLPRegressor")


def work_factor(params, estimator=""):
    """How much more work than the estimator's default-sized fit these parameters ask for: n_estimators and
    (for `estimator`s that iterate that often) max_iter, relative to 100 (most of scikit-learn's defaults;
    MLP's max_iter is 200, whose fits seldom run to the end)."""
    factor = 1.0
    for name in WORK_PARAMS if estimator in ITERATING else WORK_PARAMS[:1]:
        value = (params or {}).get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            factor *= value / 100
    return factor


def fit_seconds(estimator, params, rows, columns):
    """Expected seconds of one fold's fit and scoring of `estimator` with `params` on data of `rows` x
    `columns` (the whole dataset's; a fold trains on most of it), on one core."""
    small, reference, exponent = COSTS.get(estimator, UNKNOWN)
    rows, columns = max(rows or SMALL_ROWS, 1), max(columns or REFERENCE_COLUMNS, 1)
    grown = max(reference - small, 0.0) * (rows / REFERENCE_ROWS) ** exponent * columns / REFERENCE_COLUMNS
    return (small + grown) * work_factor(params, estimator)


def usable_cores():
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def effective_jobs(n_jobs, tasks):
    """How many fit processes a run starts: -1 is every usable core; never more than there are tasks or cores.
    Here, not in engine.parallel, so the web side's estimate counts them without importing joblib."""
    cores = usable_cores()
    wanted = cores if n_jobs is None or n_jobs < 0 else n_jobs
    return max(1, min(wanted, cores, tasks))
