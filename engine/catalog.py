"""What a run spec may name: datasets, preprocessing steps, estimators, metrics.

The spec stores names and plain parameters, never pickled objects, so a spec is safe to accept from the
API and stays readable in the admin. Everything here maps a name to the scikit-learn thing it builds.
"""

BUILTIN_DATASETS = {
    # name: (task, loader name in sklearn.datasets)
    "iris": ("classification", "load_iris"),
    "wine": ("classification", "load_wine"),
    "breast_cancer": ("classification", "load_breast_cancer"),
    "digits": ("classification", "load_digits"),
    "diabetes": ("regression", "load_diabetes"),
}

SYNTHETIC_GENERATORS = {
    # name: (task, sklearn.datasets function)
    "classification": ("classification", "make_classification"),
    "regression": ("regression", "make_regression"),
}
SYNTHETIC_LIMITS = {"n_samples": (20, 2_000_000), "n_features": (1, 2_000), "noise": (0, 1_000)}
# Rows and feature columns of the built-in datasets, so the validator can size a step's output before any
# data is loaded (see MAX_MATRIX_VALUES).
BUILTIN_SHAPES = {"iris": (150, 4), "wine": (178, 13), "breast_cancer": (569, 30), "digits": (1797, 64),
                  "diabetes": (442, 10)}
# The largest feature matrix a dataset or a preprocessing step may produce: 50 million float64 values, 400 MB.
# A synthetic dataset of 2,000,000 x 2,000, or polynomial features of degree 50, would need far more.
MAX_MATRIX_VALUES = 50_000_000

# name: (module, class, {param: kind}) ; kinds: "bool", "choice:a|b", ("int", low, high), ("number", low, high)
PREPROCESSING = {
    "standard_scaler": ("sklearn.preprocessing", "StandardScaler", {"with_mean": "bool", "with_std": "bool"}),
    "minmax_scaler": ("sklearn.preprocessing", "MinMaxScaler", {}),
    "robust_scaler": ("sklearn.preprocessing", "RobustScaler", {}),
    "simple_imputer": (
        "sklearn.impute",
        "SimpleImputer",
        {"strategy": "choice:mean|median|most_frequent|constant"},
    ),
    # Fills the missing values of the text (categorical) columns before they are encoded; simple_imputer fills
    # the numeric ones. Two steps, so each kind of column gets its own strategy.
    "categorical_imputer": ("sklearn.impute", "SimpleImputer", {"strategy": "choice:most_frequent|constant"}),
    "one_hot_encoder": ("sklearn.preprocessing", "OneHotEncoder", {}),
    # Leaves the text columns out and keeps the numeric ones (a ColumnTransformer's "drop"; no class of its own).
    "drop_text_columns": ("", "", {}),
    # A whole number of components, or a fraction (0 to 1) of the variance to keep.
    "pca": ("sklearn.decomposition", "PCA", {"n_components": ("number", 0, 2_000)}),
    # Degree 5 of 20 features is already 53,130 columns; the output is also held to MAX_MATRIX_VALUES.
    "polynomial_features": ("sklearn.preprocessing", "PolynomialFeatures", {"degree": ("int", 1, 5)}),
    "select_k_best": ("sklearn.feature_selection", "SelectKBest", {"k": ("int", 1, 100_000)}),
}
# Steps that deal with text columns (turn them into numbers, or leave them out), steps that fill in missing
# numbers, and steps that fill in missing text values (only before an encoder: they work on its columns).
ENCODERS = {"one_hot_encoder", "drop_text_columns"}
IMPUTERS = {"simple_imputer"}
CATEGORICAL_IMPUTERS = {"categorical_imputer"}

# name: (module, class, tasks, supports partial_fit)
ESTIMATORS = {
    "LogisticRegression": ("sklearn.linear_model", "LogisticRegression", {"classification"}, False),
    "RidgeClassifier": ("sklearn.linear_model", "RidgeClassifier", {"classification"}, False),
    "SGDClassifier": ("sklearn.linear_model", "SGDClassifier", {"classification"}, True),
    "Perceptron": ("sklearn.linear_model", "Perceptron", {"classification"}, True),
    "KNeighborsClassifier": ("sklearn.neighbors", "KNeighborsClassifier", {"classification"}, False),
    "DecisionTreeClassifier": ("sklearn.tree", "DecisionTreeClassifier", {"classification"}, False),
    "RandomForestClassifier": ("sklearn.ensemble", "RandomForestClassifier", {"classification"}, False),
    "GradientBoostingClassifier": ("sklearn.ensemble", "GradientBoostingClassifier", {"classification"}, False),
    "HistGradientBoostingClassifier": (
        "sklearn.ensemble",
        "HistGradientBoostingClassifier",
        {"classification"},
        False,
    ),
    "SVC": ("sklearn.svm", "SVC", {"classification"}, False),
    "GaussianNB": ("sklearn.naive_bayes", "GaussianNB", {"classification"}, True),
    "MLPClassifier": ("sklearn.neural_network", "MLPClassifier", {"classification"}, True),
    "LinearRegression": ("sklearn.linear_model", "LinearRegression", {"regression"}, False),
    "Ridge": ("sklearn.linear_model", "Ridge", {"regression"}, False),
    "Lasso": ("sklearn.linear_model", "Lasso", {"regression"}, False),
    "ElasticNet": ("sklearn.linear_model", "ElasticNet", {"regression"}, False),
    "SGDRegressor": ("sklearn.linear_model", "SGDRegressor", {"regression"}, True),
    "KNeighborsRegressor": ("sklearn.neighbors", "KNeighborsRegressor", {"regression"}, False),
    "DecisionTreeRegressor": ("sklearn.tree", "DecisionTreeRegressor", {"regression"}, False),
    "RandomForestRegressor": ("sklearn.ensemble", "RandomForestRegressor", {"regression"}, False),
    "GradientBoostingRegressor": ("sklearn.ensemble", "GradientBoostingRegressor", {"regression"}, False),
    "HistGradientBoostingRegressor": (
        "sklearn.ensemble",
        "HistGradientBoostingRegressor",
        {"regression"},
        False,
    ),
    "SVR": ("sklearn.svm", "SVR", {"regression"}, False),
    "MLPRegressor": ("sklearn.neural_network", "MLPRegressor", {"regression"}, True),
}

# --- Bounds on estimator parameters --------------------------------------------------------------------
# Every numeric value a spec gives an estimator must lie in the range below (both ends included), on top of
# scikit-learn's own checks, so an accepted spec cannot ask for a billion trees or a 5 GB network. A numeric
# parameter missing here cannot be set to a number at all (tests/test_spec_bounds.py checks the table covers
# every numeric parameter of every estimator above).
PARAM_RANGES = {
    # Work and memory grow with these.
    "n_estimators": (1, 2_000),
    "max_iter": (1, 100_000),
    "max_fun": (1, 100_000),
    "max_depth": (1, 100),
    "max_leaf_nodes": (2, 100_000),
    "n_neighbors": (1, 1_000),
    "leaf_size": (1, 10_000),
    "degree": (1, 10),  # of SVC/SVR's polynomial kernel
    "cache_size": (1, 2_048),  # megabytes of SVC/SVR kernel cache
    "batch_size": (1, 100_000),
    "n_iter_no_change": (1, 10_000),
    "max_bins": (2, 255),
    "average": (1, 1_000_000),
    "max_samples": (0, 2_000_000),  # a fraction, or a number of rows
    "max_features": (0, 100_000),  # a fraction, or a number of columns
    "min_samples_split": (0, 2_000_000),
    "min_samples_leaf": (0, 2_000_000),
    # Regularisation and step sizes: far outside these the solvers overflow or never converge.
    "C": (0, 1e6),
    "alpha": (0, 1e6),
    "l2_regularization": (0, 1e6),
    "ccp_alpha": (0, 1e6),
    "min_impurity_decrease": (0, 1e6),
    "var_smoothing": (0, 1e6),
    "gamma": (0, 1e6),
    "coef0": (-1e3, 1e3),
    "epsilon": (0, 1e3),
    "eta0": (0, 1e3),
    "learning_rate": (0, 1e3),
    "learning_rate_init": (0, 10),
    "power_t": (-10, 10),
    "intercept_scaling": (0, 1e6),
    "tol": (0, 1e3),
    "p": (1, 100),
    # Fractions.
    "l1_ratio": (0, 1),
    "beta_1": (0, 1),
    "beta_2": (0, 1),
    "momentum": (0, 1),
    "subsample": (0, 1),
    "validation_fraction": (0, 1),
    "min_weight_fraction_leaf": (0, 0.5),
    "quantile": (0, 1),
    "random_state": (0, 2**32 - 1),
}
# Tighter ranges for one estimator: HistGradientBoosting's max_iter is its number of trees.
ESTIMATOR_PARAM_RANGES = {
    "HistGradientBoostingClassifier": {"max_iter": (1, 2_000)},
    "HistGradientBoostingRegressor": {"max_iter": (1, 2_000)},
    "MLPClassifier": {"max_iter": (1, 10_000)},
    "MLPRegressor": {"max_iter": (1, 10_000)},
}
# Set by Runwatch, never by a spec: parallel jobs would take more than the worker's one core, and verbose
# output would bypass the run log.
FIXED_PARAMS = {"n_jobs", "verbose", "warm_start"}
# MLP hidden_layer_sizes: a whole number (one layer) or a list of them (one per layer).
MAX_HIDDEN_LAYERS = 10
MAX_LAYER_UNITS = 2_048
MAX_HIDDEN_UNITS = 4_096


def param_range(estimator, param):
    """The (low, high) a numeric value of `param` must lie in, or None if it may not be numeric."""
    return ESTIMATOR_PARAM_RANGES.get(estimator, {}).get(param) or PARAM_RANGES.get(param)


# Metrics recorded for every fold, by task. The first is the default primary metric.
# name: (greater is better, needs probabilities/decision scores)
# Precision and recall are macro averages for two classes as for more (scikit-learn's "precision_macro" and
# "recall_macro" scorers, like f1_macro): one rule whatever the labels, with no positive class to guess.
# Log loss and average precision need scores, so a model without them records None (engine.pipeline).
METRICS = {
    "classification": {
        "accuracy": (True, False), "balanced_accuracy": (True, False), "f1_macro": (True, False),
        "precision_macro": (True, False), "recall_macro": (True, False), "roc_auc": (True, True),
        "average_precision": (True, True), "log_loss": (False, True),
    },
    "regression": {"r2": (True, False), "rmse": (False, False), "mae": (False, False), "mape": (False, False)},
}
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "f1_macro": "F1 (macro)",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "roc_auc": "ROC AUC",
    "average_precision": "Average precision",
    "log_loss": "Log loss",
    "r2": "R2",
    "rmse": "RMSE",
    "mae": "MAE",
    "mape": "MAPE",
}


def greater_is_better(task, metric):
    """Whether a higher value of `metric` is better; unknown metrics count as scores (higher is better).

    The one answer: the engine's ranking (engine/scoring.py), the leaderboard, the wizard and the
    readable spec all ask here."""
    return METRICS.get(task, {}).get(metric, (True, False))[0]

CV_KINDS = {"kfold", "stratified_kfold", "shuffle_split"}
RUNNERS = {"cv", "training", "evaluation"}


def load_class(module, name):
    import importlib

    return getattr(importlib.import_module(module), name)
