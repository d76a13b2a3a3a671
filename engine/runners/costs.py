"""What one fit of a catalog estimator costs on one core, by the size of the data: the Review step's estimate
when there is no history, and the ETA's guess for an estimator a run has not fitted yet (scaled by how fast
this machine fits the ones it has: engine.runners.eta).

COSTS was measured by bench/calibrate_costs.py the way a run fits (engine.runners.cv, n_jobs 1, one thread): a fold's
fit, its scoring and its diagnostics (what the ETA observes; for the neighbours and the kernels the scoring is
much of it), default parameters, a fold of three (two thirds of the rows), on synthetic data of 344, 4,000 and
16,000 rows x 10 columns, with standard scaling. Between two of those sizes a fit's seconds follow the power law
through them; beyond 16,000 rows from the 16,000-row time, as the last segment grows but at least as the square
root (HistGradientBoosting at 40,000 rows: 1.6-1.9x its 16,000-row time); below 344 the 344-row
time (what a fit costs whatever its size: checks, the pipeline, the scoring). The part above the 344-row time
grows linearly in the columns. Piecewise, since a model's growth is not one power: HistGradientBoosting stops
early above 10,000 rows, so its 16,000-row fit is no dearer than its 4,000-row one. The machine was shared and
loaded; only the ratios between estimators matter to the ETA (it scales them by the fits it has seen), and the
Review step shows its estimate as a range. `calibrate_costs.py --check` (5,000 rows, one thread) puts every
estimator's measured/predicted within 0.84-1.18x of the median; its earlier 12-42x for HistGradientBoosting was
the check's own error: its thread limit was set before OpenMP was loaded, so it limited nothing.
"""

import math
import os


SIZES = (344, 4000, 16000)
REFERENCE_COLUMNS = 10
MIN_EXPONENT = 0.5  # beyond the largest size: a fit grows at least as the square root of the rows

COSTS = {  # estimator: seconds of one fold at 344, 4,000 and 16,000 rows
    "LogisticRegression": (0.0277, 0.0360, 0.0477),
    "RidgeClassifier": (0.0222, 0.0261, 0.0415),
    "SGDClassifier": (0.0216, 0.0380, 0.0579),
    "Perceptron": (0.0191, 0.0242, 0.0393),
    "KNeighborsClassifier": (0.0312, 0.1968, 1.3582),
    "DecisionTreeClassifier": (0.0255, 0.0602, 0.2550),
    "RandomForestClassifier": (0.2173, 0.7720, 3.8439),
    "GradientBoostingClassifier": (0.1326, 0.8894, 3.7693),
    "HistGradientBoostingClassifier": (0.1110, 0.3598, 0.3490),
    "SVC": (0.0356, 0.2512, 2.6995),
    "GaussianNB": (0.0224, 0.0287, 0.0485),
    "MLPClassifier": (0.1955, 1.4029, 5.7749),
    "LinearRegression": (0.0044, 0.0060, 0.0104),
    "Ridge": (0.0046, 0.0059, 0.0095),
    "Lasso": (0.0052, 0.0067, 0.0102),
    "ElasticNet": (0.0054, 0.0063, 0.0100),
    "SGDRegressor": (0.0055, 0.0078, 0.0149),
    "KNeighborsRegressor": (0.0063, 0.0913, 0.9801),
    "DecisionTreeRegressor": (0.0097, 0.0322, 0.1285),
    "RandomForestRegressor": (0.1847, 1.6948, 7.3019),
    "GradientBoostingRegressor": (0.1222, 0.8421, 3.2987),
    "HistGradientBoostingRegressor": (0.0628, 0.2161, 0.4154),
    "SVR": (0.0136, 0.4914, 7.4894),
    "MLPRegressor": (0.1561, 1.0815, 4.3332),
}
UNKNOWN = (0.1, 0.5, 1.5)  # an estimator added to the catalog and not measured yet


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
    times = COSTS.get(estimator, UNKNOWN)
    rows, columns = max(rows or SIZES[0], SIZES[0]), max(columns or REFERENCE_COLUMNS, 1)
    at = _at_rows(times, rows)
    grown = max(at - times[0], 0.0) * columns / REFERENCE_COLUMNS
    return (times[0] + grown) * work_factor(params, estimator)


def _at_rows(times, rows):
    """Seconds at `rows` on the power law between the two measured sizes around it (past the last: from the
    last size, at the last segment's power, at least MIN_EXPONENT)."""
    for i in range(1, len(SIZES)):
        if rows <= SIZES[i] or i == len(SIZES) - 1:
            lo, hi = max(times[i - 1], 1e-4), max(times[i], 1e-4)
            exponent = math.log(hi / lo) / math.log(SIZES[i] / SIZES[i - 1])
            if rows > SIZES[i]:
                # From the last point: a flatter last segment (HistGradientBoosting's early stop) raised to
                # MIN_EXPONENT from the size before would start 3x above its own 16,000-row time.
                return hi * (rows / SIZES[i]) ** max(exponent, MIN_EXPONENT)
            return lo * (rows / SIZES[i - 1]) ** exponent
    return times[0]


def usable_cores():
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def effective_jobs(n_jobs, tasks):
    """How many fit processes a run starts: -1 is every usable core; never more than there are tasks or cores.
    Here, not in engine.runners.parallel, so the web side's estimate counts them without importing joblib."""
    cores = usable_cores()
    wanted = cores if n_jobs is None or n_jobs < 0 else n_jobs
    return max(1, min(wanted, cores, tasks))
