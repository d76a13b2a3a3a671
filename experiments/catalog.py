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
SYNTHETIC_LIMITS = {"n_samples": (20, 2_000_000), "n_features": (1, 2_000)}

# name: (module, class, {param: kind}) ; kinds: "bool", "number", "int", "choice:a|b"
PREPROCESSING = {
    "standard_scaler": ("sklearn.preprocessing", "StandardScaler", {"with_mean": "bool", "with_std": "bool"}),
    "minmax_scaler": ("sklearn.preprocessing", "MinMaxScaler", {}),
    "robust_scaler": ("sklearn.preprocessing", "RobustScaler", {}),
    "simple_imputer": (
        "sklearn.impute",
        "SimpleImputer",
        {"strategy": "choice:mean|median|most_frequent|constant"},
    ),
    "one_hot_encoder": ("sklearn.preprocessing", "OneHotEncoder", {}),
    "pca": ("sklearn.decomposition", "PCA", {"n_components": "number"}),
    "polynomial_features": ("sklearn.preprocessing", "PolynomialFeatures", {"degree": "int"}),
    "select_k_best": ("sklearn.feature_selection", "SelectKBest", {"k": "int"}),
}
# Steps that turn text categories into numbers, and steps that fill in missing values.
ENCODERS = {"one_hot_encoder"}
IMPUTERS = {"simple_imputer"}

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

# Metrics recorded for every fold, by task. The first is the default primary metric.
# name: (greater is better, needs probabilities/decision scores)
METRICS = {
    "classification": {"accuracy": (True, False), "f1_macro": (True, False), "roc_auc": (True, True)},
    "regression": {"r2": (True, False), "rmse": (False, False), "mae": (False, False)},
}
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "f1_macro": "F1 (macro)",
    "roc_auc": "ROC AUC",
    "r2": "R2",
    "rmse": "RMSE",
    "mae": "MAE",
}

CV_KINDS = {"kfold", "stratified_kfold", "shuffle_split"}
RUNNERS = {"cv", "training", "evaluation"}


def load_class(module, name):
    import importlib

    return getattr(importlib.import_module(module), name)
