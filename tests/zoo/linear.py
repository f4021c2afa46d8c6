"""Zoo cases: linear models, alone and at the end of preprocessing pipelines.

Every case scores ordinary rows plus edge rows: all zeros, each feature in turn at
+1e300, -1e300 and NaN (scikit-learn refuses NaN here, so those rows must come back
NULL), unseen categories and NULL text where the model has categorical inputs, and
rows whose decision is exactly 0 or tied between classes (the tie rules: binary
``classes_[1]`` iff decision > 0, multiclass the first largest). Infinite inputs are
left out: every model here refuses them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tests.zoo import ZooCase

SEED = 20240611


def _rng(k: int = 0) -> np.random.Generator:
    return np.random.default_rng(SEED + k)


def edge_rows(base: np.ndarray) -> np.ndarray:
    """Zeros, then per feature: base with that feature at +1e300, -1e300, NaN."""
    rows = [np.zeros_like(base)]
    for j in range(base.size):
        for v in (1e300, -1e300, np.nan):
            r = base.copy()
            r[j] = v
            rows.append(r)
    return np.vstack(rows)


def _data(n: int, d: int, k: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(k)
    scales = rng.uniform(0.1, 20.0, size=d)
    X = rng.normal(size=(n, d)) * scales + rng.normal(size=d) * 3
    w = rng.normal(size=d) / scales
    return X, X @ w + rng.normal(scale=0.3, size=n)


def _with_edges(X: np.ndarray, n_test: int = 60) -> np.ndarray:
    return np.vstack([X[:n_test], edge_rows(X[0].copy())])


def _labels(y: np.ndarray, names: list, cuts: list[float]) -> np.ndarray:
    return np.asarray(names, dtype=object)[np.digitize(y, np.quantile(y, cuts))]


def _classes(y: np.ndarray, names: list) -> np.ndarray:
    """``y`` cut at even quantiles into the classes ``names`` (numeric names keep their type)."""
    labels = _labels(y, names, [i / len(names) for i in range(1, len(names))])
    return labels if isinstance(names[0], str) else labels.astype(type(names[0]))


def _fit(est, X, y=None):
    """``est.fit(X, y)`` with scikit-learn's warnings (convergence, ...) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _regressor(est_factory, d: int = 6, target=None, k: int = 0):
    def make():
        X, y = _data(240, d, k)
        if target is not None:
            y = target(y)
        return _fit(est_factory(), X, y), _with_edges(X)

    return make


def _classifier(est_factory, names: list, d: int = 6, k: int = 0):
    def make():
        X, y = _data(300, d, k)
        return _fit(est_factory(), X, _classes(y, names)), _with_edges(X)

    return make


def _tied_binary():
    """decision == 0 exactly on the rows with x0 == x1: sklearn says classes_[0]."""
    from sklearn.linear_model import LogisticRegression

    X, y = _data(100, 2, 7)
    est = LogisticRegression().fit(X, np.where(y > np.median(y), "yes", "no"))
    est.coef_ = np.array([[1.0, -1.0]])
    est.intercept_ = np.array([0.0])
    rows = np.array([[0.0, 0.0], [2.5, 2.5], [-3.0, -3.0], [1.0, 1.0 + 2**-52], [1.0 + 2**-52, 1.0], [1e300, 1e300], [np.nan, 1.0]])
    return est, np.vstack([X[:20], rows])


def _tied_multiclass():
    """Classes 0 and 2 share a score row: argmax takes the first, as numpy does."""
    from sklearn.linear_model import RidgeClassifier

    X, y = _data(150, 3, 8)
    est = RidgeClassifier().fit(X, _labels(y, ["a", "b", "c"], [1 / 3, 2 / 3]))
    coef = est.coef_.copy()
    coef[2] = coef[0]
    est.coef_ = coef
    est.intercept_ = np.array([0.0, -1e9, 0.0])
    rows = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [np.nan, 0.0, 0.0]])
    return est, np.vstack([X[:20], rows])


# ----------------------------------------------------------- pipelines ending in a linear model


def customers(n: int, k: int = 0) -> pd.DataFrame:
    """A customer table: 3 text columns (with NULLs) and 22 numeric ones (with NaN)."""
    rng = _rng(100 + k)
    df = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "plus", "pro", "enterprise"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "region": rng.choice(["north", "south", "east", "west", "central"], n),
            "channel": rng.choice(["web", "store", "phone", "partner", "other"], n, p=[0.5, 0.25, 0.15, 0.07, 0.03]),
        }
    )
    for j in range(22):
        df[f"m{j}"] = rng.normal(size=n) * (j + 1) + j
    df.loc[rng.random(n) < 0.05, "plan"] = np.nan
    df.loc[rng.random(n) < 0.05, "m3"] = np.nan
    return df


def frame_edge_rows(df: pd.DataFrame, variants: dict) -> pd.DataFrame:
    """Copies of the first row with one column changed: every value of ``variants[col]``."""
    base = df.iloc[0]
    rows = []
    for col, values in variants.items():
        for v in values:
            r = base.copy()
            r[col] = v
            rows.append(r)
    return pd.DataFrame(rows).reset_index(drop=True).astype(df.dtypes.to_dict())


def customer_edge_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Unseen categories, NULL text, all numbers 0, and per numeric column +-1e300, NaN."""
    numeric = [c for c in df.columns if c.startswith("m")]
    zero = df.iloc[:1].copy()
    zero[numeric] = 0.0
    text = frame_edge_rows(df, {c: ["unseen", np.nan, ""] for c in ("plan", "region", "channel")})
    return pd.concat([text, zero, frame_edge_rows(df, {c: [1e300, -1e300, np.nan] for c in numeric})], ignore_index=True)


def _churn_target(df: pd.DataFrame, names: list[str]) -> np.ndarray:
    score = df["m0"] * 0.8 - df["m1"] * 0.3 + (df["plan"] == "pro") * 2.0 - (df["region"] == "west") * 1.5 + df["m5"].fillna(0) * 0.05
    return np.asarray(names, dtype=object)[np.digitize(score, np.quantile(score, np.linspace(0, 1, len(names) + 1)[1:-1]))]


def _customer_pipeline(final, names: list[str], handle_unknown: str = "ignore", k: int = 0):
    def make():
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        df = customers(400, k)
        y = _churn_target(df, names)
        numeric = [c for c in df.columns if c.startswith("m")]
        ct = ColumnTransformer(
            [
                ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="none"), OneHotEncoder(handle_unknown=handle_unknown)), ["plan", "region", "channel"]),
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = make_pipeline(ct, final()).fit(df, y)
        test = pd.concat([df.iloc[:80], customer_edge_rows(df)], ignore_index=True)
        return est, test

    return make


def _scaled_logistic():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data(300, 8, 11)
    labels = _labels(y, ["bronze", "silver", "gold"], [0.3, 0.7])
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, labels)
    return est, _with_edges(X)


def _poly_ridge():
    """Edge rows at +-1e150, not 1e300: a square of 1e300 overflows to inf between the
    steps, and scikit-learn's Ridge then refuses the row while the IR, following
    IEEE-754, carries inf on (a documented difference)."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    X, y = _data(200, 4, 12)
    est = make_pipeline(StandardScaler(), PolynomialFeatures(2), Ridge(alpha=0.5)).fit(X, y + X[:, 0] * X[:, 1] * 0.01)
    edges = edge_rows(X[0].copy())
    edges[np.abs(edges) == 1e300] = np.sign(edges[np.abs(edges) == 1e300]) * 1e150
    return est, np.vstack([X[:60], edges])


def _kbins_logistic():
    """KBinsDiscretizer refuses NaN: a later LogisticRegression must not score the row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import KBinsDiscretizer

    X, y = _data(300, 4, 13)
    est = make_pipeline(KBinsDiscretizer(n_bins=4, encode="onehot", strategy="quantile"), LogisticRegression()).fit(X, y > np.median(y))
    edges = est[0].bin_edges_
    on_edges = np.array([[edges[j][1 + (i % 3)] for j in range(4)] for i in range(3)])
    return est, np.vstack([_with_edges(X, 40), on_edges])


def lazy(module: str, name: str):
    """``lazy(m, C)(**kw)`` is a factory of ``C(**kw)`` that imports ``m`` only when called."""

    def factory(**kwargs):
        import importlib

        cls = getattr(importlib.import_module(module), name)
        return lambda: cls(**kwargs)

    return factory


def _lm(name: str):
    return lazy("sklearn.linear_model", name)


def _svm(name: str):
    return lazy("sklearn.svm", name)

CASES: list[ZooCase] = [
    # regressors
    ZooCase("linear_regression_25f", _regressor(_lm("LinearRegression")(), d=25, k=1)),
    ZooCase("ridge", _regressor(_lm("Ridge")(alpha=2.0), k=2)),
    ZooCase("ridge_cv", _regressor(_lm("RidgeCV")(), k=2)),
    ZooCase("lasso", _regressor(_lm("Lasso")(alpha=0.05), k=3)),
    ZooCase("elastic_net", _regressor(_lm("ElasticNet")(alpha=0.05, l1_ratio=0.3), k=4)),
    ZooCase("sgd_regressor", _regressor(_lm("SGDRegressor")(random_state=0, eta0=0.001), k=5)),
    ZooCase("huber_regressor", _regressor(_lm("HuberRegressor")(max_iter=1000), k=6)),
    ZooCase("linear_svr", _regressor(_svm("LinearSVR")(random_state=0, max_iter=10000), k=7)),
    ZooCase("poisson_regressor", _regressor(_lm("PoissonRegressor")(), target=lambda y: np.round(np.exp(y / np.std(y))), k=8)),
    ZooCase("gamma_regressor", _regressor(_lm("GammaRegressor")(), target=lambda y: np.exp(y / np.std(y)), k=9)),
    ZooCase("tweedie_log_link", _regressor(_lm("TweedieRegressor")(power=1.5), target=lambda y: np.exp(y / np.std(y)), k=10)),
    ZooCase("tweedie_identity_link", _regressor(_lm("TweedieRegressor")(power=0.0, alpha=0.1), k=11)),
    # classifiers
    ZooCase("logistic_binary_text", _classifier(_lm("LogisticRegression")(), ["stay", "churn"], k=20), outputs=("predict", "proba", "decision"), tags=frozenset({"text-labels"})),
    ZooCase("logistic_binary_numeric", _classifier(_lm("LogisticRegression")(C=0.5), [0, 1], k=21), outputs=("predict", "proba", "decision")),
    ZooCase(
        "logistic_multinomial_25f_text",
        _classifier(_lm("LogisticRegression")(max_iter=3000), ["low", "mid", "high", "top"], d=25, k=22),
        outputs=("predict", "proba", "decision"),
        tags=frozenset({"text-labels"}),
    ),
    ZooCase("logistic_multinomial_numeric", _classifier(_lm("LogisticRegression")(max_iter=2000), [3, 7, 11], k=23), outputs=("predict", "proba", "decision")),
    ZooCase("logistic_cv", _classifier(_lm("LogisticRegressionCV")(cv=3, max_iter=2000), ["a", "b", "c"], k=24), outputs=("predict", "proba", "decision")),
    ZooCase("sgd_hinge_multiclass", _classifier(_lm("SGDClassifier")(random_state=0), ["x", "y", "z"], k=25), outputs=("predict", "decision")),
    ZooCase("sgd_log_loss_binary", _classifier(_lm("SGDClassifier")(loss="log_loss", random_state=0), [-1, 1], k=26), outputs=("predict", "proba", "decision")),
    ZooCase("sgd_log_loss_multiclass", _classifier(_lm("SGDClassifier")(loss="log_loss", random_state=0), ["x", "y", "z", "w"], k=27), outputs=("predict", "proba", "decision")),
    ZooCase("sgd_modified_huber_binary", _classifier(_lm("SGDClassifier")(loss="modified_huber", random_state=0), ["no", "yes"], k=28), outputs=("predict", "proba", "decision")),
    ZooCase("sgd_modified_huber_multiclass", _classifier(_lm("SGDClassifier")(loss="modified_huber", random_state=0), [1, 2, 3], k=29), outputs=("predict", "proba", "decision")),
    ZooCase("ridge_classifier_text", _classifier(_lm("RidgeClassifier")(), ["red", "green", "blue"], k=30), outputs=("predict", "decision")),
    ZooCase("ridge_classifier_binary", _classifier(_lm("RidgeClassifierCV")(), [0, 1], k=31), outputs=("predict", "decision")),
    ZooCase("linear_svc_binary", _classifier(_svm("LinearSVC")(random_state=0), ["neg", "pos"], k=32), outputs=("predict", "decision")),
    ZooCase("linear_svc_multiclass", _classifier(_svm("LinearSVC")(random_state=0), [10, 20, 30, 40], k=33), outputs=("predict", "decision")),
    ZooCase("tie_binary_decision_zero", _tied_binary, outputs=("predict", "proba", "decision")),
    ZooCase("tie_multiclass_argmax_first", _tied_multiclass, outputs=("predict", "decision")),
    # pipelines
    ZooCase("scaler_logistic_text", _scaled_logistic, outputs=("predict", "proba", "decision")),
    ZooCase("poly_ridge", _poly_ridge),
    ZooCase("kbins_onehot_logistic", _kbins_logistic, outputs=("predict", "proba")),
    ZooCase(
        "customers_onehot_scaler_logistic",
        _customer_pipeline(_lm("LogisticRegression")(max_iter=3000), ["low", "medium", "high"]),
        outputs=("predict", "proba", "decision"),
        tags=frozenset({"text", "text-labels"}),
    ),
    ZooCase(
        "customers_onehot_error_linear_svc",
        _customer_pipeline(_svm("LinearSVC")(random_state=0, max_iter=20000), ["a", "b", "c", "d"], handle_unknown="error", k=1),
        outputs=("predict", "decision"),
        tags=frozenset({"text", "text-labels"}),
    ),
]
