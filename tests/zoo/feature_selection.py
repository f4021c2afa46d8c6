"""Zoo cases: feature selection (``sklearn.feature_selection``), alone and in compositions.

Edge rows per case: all zeros; each feature in turn at +1e300, -1e300 and NaN -- a NaN
in a column the selector drops is refused by the univariate filters (scikit-learn
validates the whole row) and accepted by VarianceThreshold and by selectors whose
estimator accepts NaN (HistGradientBoosting), where it must not change the outputs;
unseen categories and NULL text in the ColumnTransformer case.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.zoo import ZooCase
from tests.zoo.linear import _data, _fit, _labels, customer_edge_rows, customers, edge_rows

SEED = 20240614


def _xy(kind: str, d: int = 10, k: int = 0, nan_rate: float = 0.0):
    """Rows with a target: ``kind`` 'reg' (continuous), 'bin' or 'multi' (string labels)."""
    X, y = _data(300, d, SEED % 1000 + k)
    if kind == "bin":
        y = _labels(y, ["no", "yes"], [0.5])
    elif kind == "multi":
        y = _labels(y, ["a", "b", "c"], [1 / 3, 2 / 3])
    if nan_rate:
        X = X.copy()
        X[np.random.default_rng(SEED + k).random(X.shape) < nan_rate] = np.nan
    return X, y


def _case(factory, kind: str, d: int = 10, k: int = 0, nan_rate: float = 0.0):
    def make():
        X, y = _xy(kind, d, k, nan_rate)
        est = _fit(factory(), X, y)
        return est, np.vstack([X[:60], edge_rows(np.nan_to_num(X[0]))])

    return make


def _fs(name: str):
    import importlib

    return getattr(importlib.import_module("sklearn.feature_selection"), name)


def _pipe(*steps):
    from sklearn.pipeline import make_pipeline

    return lambda: make_pipeline(*[s() for s in steps])


def _k_best_linear():
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("select", _fs("SelectKBest")(k=5)), ("model", LinearRegression())])


def _customers_selected():
    """ColumnTransformer: one-hot text, a SelectKBest over the numbers; then LogisticRegression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from tests.zoo.linear import _churn_target

    df = customers(300, k=14)
    y = _churn_target(df, ["stay", "churn"])
    numeric = [c for c in df.columns if c.startswith("m")]
    pre = ColumnTransformer(
        [
            ("cats", OneHotEncoder(handle_unknown="ignore"), ["plan", "region", "channel"]),
            ("num", make_pipeline(SimpleImputer(), SelectKBest(f_classif, k=6)), numeric),
            ("raw", _fs("VarianceThreshold")(threshold=30.0), numeric[10:]),
        ]
    )
    est = _fit(make_pipeline(pre, LogisticRegression(max_iter=2000)), df, y)
    return est, pd.concat([df.iloc[:60], customer_edge_rows(df)], ignore_index=True)


def _split_counts(est) -> np.ndarray:
    """HistGradientBoosting has no ``feature_importances_``: how often each feature splits."""
    counts = np.zeros(est.n_features_in_)
    for iteration in est._predictors:
        for pred in iteration:
            nodes = pred.nodes[~pred.nodes["is_leaf"].astype(bool)]
            np.add.at(counts, nodes["feature_idx"], 1.0)
    return counts


def _lr():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


def _hgb_clf():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=15, max_depth=3, random_state=0)


def _tree_reg():
    from sklearn.tree import DecisionTreeRegressor

    return DecisionTreeRegressor(max_depth=4, random_state=0)


def _linreg():
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _lasso():
    from sklearn.linear_model import Lasso

    return Lasso(alpha=0.05)


def _scaler():
    from sklearn.preprocessing import StandardScaler

    return StandardScaler()


T = ("transform",)

CASES: list[ZooCase] = [
    ZooCase("select_k_best_pipeline_linear", _case(_k_best_linear, "reg", k=1), outputs=("predict",)),
    ZooCase("select_k_best_f_regression", _case(lambda: _fs("SelectKBest")(_fs("f_regression"), k=4), "reg", k=2), outputs=T),
    ZooCase("select_percentile_f_classif", _case(lambda: _fs("SelectPercentile")(percentile=30), "multi", k=3), outputs=T),
    ZooCase("generic_univariate_select_fwe", _case(lambda: _fs("GenericUnivariateSelect")(_fs("f_regression"), mode="fwe", param=0.01), "reg", k=4), outputs=T),
    ZooCase("select_fpr", _case(lambda: _fs("SelectFpr")(alpha=0.01), "bin", k=5), outputs=T),
    ZooCase("select_fdr", _case(lambda: _fs("SelectFdr")(alpha=0.05), "bin", k=6), outputs=T),
    ZooCase("select_fwe_pipeline_logistic", _case(_pipe(_scaler, lambda: _fs("SelectFwe")(alpha=0.05), _lr), "multi", k=7), outputs=("predict", "proba", "decision")),
    ZooCase("variance_threshold_nan", _case(lambda: _fs("VarianceThreshold")(threshold=4.0), "reg", k=8, nan_rate=0.05), outputs=T),
    ZooCase("select_from_model_lasso_linear", _case(_pipe(_scaler, lambda: _fs("SelectFromModel")(_lasso()), _linreg), "reg", k=9), outputs=("predict",)),
    ZooCase("select_from_model_hgb_nan", _case(lambda: _fs("SelectFromModel")(_hgb_clf(), importance_getter=_split_counts, threshold=-np.inf, max_features=3), "bin", k=10, nan_rate=0.05), outputs=T),
    ZooCase("rfe_logistic", _case(lambda: _fs("RFE")(_lr(), n_features_to_select=4), "multi", k=11), outputs=("predict", "proba", "decision", "transform")),
    ZooCase("rfecv_tree_regressor", _case(lambda: _fs("RFECV")(_tree_reg(), step=2, cv=3), "reg", k=12), outputs=("predict", "transform")),
    ZooCase("rfe_hgb_nan", _case(lambda: _fs("RFE")(_hgb_clf(), n_features_to_select=5, importance_getter=_split_counts), "bin", k=13, nan_rate=0.05), outputs=("predict", "proba", "transform")),
    ZooCase("sequential_selector_pipeline_linear", _case(_pipe(lambda: _fs("SequentialFeatureSelector")(_linreg(), n_features_to_select=3, cv=3), _linreg), "reg", k=14), outputs=("predict",)),
    ZooCase("column_transformer_select_k_best_logistic", _customers_selected, outputs=("predict", "proba"), tags=frozenset({"text"})),
]
