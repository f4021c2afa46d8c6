"""Zoo cases: preprocessing transformers and column compositions (output: transform).

Edge rows per case: all zeros; each numeric feature in turn at +1e300, -1e300 and NaN;
for encoders, unseen categories, NULL text and the empty string; for
KBinsDiscretizer, values exactly on every bin edge and one double-precision ulp either
side. Rows scikit-learn refuses (NaN into Normalizer, Binarizer, KBinsDiscretizer,
PolynomialFeatures, PCA; unknown categories with ``handle_unknown='error'``) must come
back entirely NULL. Infinite inputs are left out: every transformer here refuses them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.zoo import ZooCase
from tests.zoo.linear import _fit, customer_edge_rows, customers, edge_rows, frame_edge_rows, lazy

SEED = 20240612


def _numeric(n: int = 200, d: int = 5, k: int = 0, nan_rate: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(SEED + k)
    X = rng.normal(size=(n, d)) * rng.uniform(0.01, 100, size=d) + rng.normal(size=d) * 50
    X[:, 0] = np.round(X[:, 0])  # ties for RobustScaler's quantiles and the binning
    if nan_rate:
        X[rng.random(X.shape) < nan_rate] = np.nan
    return X


def _transformer(factory, k: int = 0, nan_rate: float = 0.0, d: int = 5, extra=None):
    def make():
        X = _numeric(d=d, k=k, nan_rate=nan_rate)
        est = _fit(factory(), X)
        rows = [X[:50], edge_rows(np.nan_to_num(X[1]).copy())]
        if extra is not None:
            rows.append(extra(est, X))
        return est, np.vstack(rows)

    return make


def _ulps(v: float) -> list[float]:
    return [np.nextafter(v, -np.inf), v, np.nextafter(v, np.inf)]


def _on_bin_edges(est, X) -> np.ndarray:
    """For every bin edge of every feature: rows at the edge and one ulp either side."""
    rows = []
    base = np.nan_to_num(X[2]).copy()
    for j, edges in enumerate(est.bin_edges_):
        for e in edges:
            for v in _ulps(float(e)):
                r = base.copy()
                r[j] = v
                rows.append(r)
    return np.vstack(rows)


def _near_zero_norms(est, X) -> np.ndarray:
    d = X.shape[1]
    return np.array([[1e-300] * d, [2e-16] + [0.0] * (d - 1), [3e-16] + [0.0] * (d - 1), [-1e-17] * d])


def _on_threshold(est, X) -> np.ndarray:
    t = float(est.threshold)
    return np.array([[v] * X.shape[1] for v in _ulps(t)])


def _p(name: str):
    return lazy("sklearn.preprocessing", name)


_imp = lazy("sklearn.impute", "SimpleImputer")
_pca = lazy("sklearn.decomposition", "PCA")


# ------------------------------------------------------------------ categorical data


def _shop(n: int = 300, k: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(SEED + 50 + k)
    df = pd.DataFrame(
        {
            "color": rng.choice(["red", "green", "blue", "teal", "plum", "rust"], n, p=[0.3, 0.25, 0.2, 0.15, 0.06, 0.04]),
            "size": rng.choice(["S", "M", "L"], n),
            "stars": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], n, p=[0.05, 0.1, 0.25, 0.3, 0.3]),
            "price": np.round(rng.gamma(2.0, 20.0, n), 2),
        }
    )
    df.loc[rng.random(n) < 0.08, "color"] = np.nan
    df.loc[rng.random(n) < 0.05, "stars"] = np.nan
    return df


def _shop_edges(df: pd.DataFrame) -> pd.DataFrame:
    return frame_edge_rows(
        df,
        {
            "color": ["unseen", np.nan, "", "Red"],
            "size": ["XL", np.nan],
            "stars": [0.0, 2.5, np.nan, 1e300, -1e300],
            "price": [0.0, np.nan, 1e300, -1e300],
        },
    )


def _encoder(factory, columns=("color", "size", "stars"), k: int = 0):
    def make():
        df = _shop(k=k)[list(columns)]
        est = _fit(factory(), df)
        return est, pd.concat([df.iloc[:60], _shop_edges(_shop(k=k))[list(columns)]], ignore_index=True)

    return make


def _text_imputer(**kwargs):
    def make():
        from sklearn.impute import SimpleImputer

        df = _shop()[["color", "size"]]
        est = _fit(SimpleImputer(**kwargs), df)
        return est, pd.concat([df.iloc[:40], _shop_edges(_shop())[["color", "size"]]], ignore_index=True)

    return make


def _shop_column_transformer(handle_unknown: str, remainder: str):
    def make():
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        df = _shop()
        ct = ColumnTransformer(
            [
                ("onehot", OneHotEncoder(handle_unknown=handle_unknown, min_frequency=15 if handle_unknown != "error" else None), ["color", "size"]),
                ("scale", StandardScaler(), [3]),
                ("dropped", "drop", ["stars"]),
            ],
            remainder=remainder,
            transformer_weights={"scale": 2.0},
        )
        est = _fit(ct, df)
        return est, pd.concat([df.iloc[:60], _shop_edges(df)], ignore_index=True)

    return make


def _customers_transform():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    df = customers(300, k=5)
    numeric = [c for c in df.columns if c.startswith("m")]
    ct = ColumnTransformer(
        [
            ("plan", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan"]),
            ("cats", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=4, drop="if_binary"), ["region", "channel"]),
            ("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), numeric[:11]),
        ],
        remainder="passthrough",
    )
    est = _fit(ct, df)
    return est, pd.concat([df.iloc[:60], customer_edge_rows(df)], ignore_index=True)


def _pipeline_transform():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures

    X = _numeric(d=3, k=40)
    est = _fit(Pipeline([("scale", MinMaxScaler(clip=True)), ("skip", "passthrough"), ("poly", PolynomialFeatures(3, interaction_only=True))]), X)
    return est, np.vstack([X[:40], edge_rows(X[0].copy())])


CASES: list[ZooCase] = [
    # scalers (NaN passes through)
    ZooCase("standard_scaler", _transformer(_p("StandardScaler")(), k=1, nan_rate=0.05), outputs=("transform",)),
    ZooCase("standard_scaler_no_mean", _transformer(_p("StandardScaler")(with_mean=False), k=2), outputs=("transform",)),
    ZooCase("min_max_scaler", _transformer(_p("MinMaxScaler")(feature_range=(-1, 1)), k=3, nan_rate=0.05), outputs=("transform",)),
    ZooCase("min_max_scaler_clip", _transformer(_p("MinMaxScaler")(clip=True), k=4), outputs=("transform",)),
    ZooCase("max_abs_scaler", _transformer(_p("MaxAbsScaler")(), k=5), outputs=("transform",)),
    ZooCase("robust_scaler", _transformer(_p("RobustScaler")(quantile_range=(10.0, 90.0)), k=6, nan_rate=0.05), outputs=("transform",)),
    # row-wise and thresholding (NaN refused)
    ZooCase("normalizer_l2", _transformer(_p("Normalizer")(), k=7, extra=_near_zero_norms), outputs=("transform",)),
    ZooCase("normalizer_l1", _transformer(_p("Normalizer")(norm="l1"), k=8, extra=_near_zero_norms), outputs=("transform",)),
    ZooCase("normalizer_max", _transformer(_p("Normalizer")(norm="max"), k=9, extra=_near_zero_norms), outputs=("transform",)),
    ZooCase("binarizer", _transformer(_p("Binarizer")(threshold=1.5), k=10, extra=_on_threshold), outputs=("transform",)),
    # imputation
    ZooCase("simple_imputer_mean_indicator", _transformer(_imp(add_indicator=True), k=11, nan_rate=0.1), outputs=("transform",)),
    ZooCase("simple_imputer_median", _transformer(_imp(strategy="median"), k=12, nan_rate=0.1), outputs=("transform",)),
    ZooCase("simple_imputer_most_frequent", _transformer(_imp(strategy="most_frequent"), k=13, nan_rate=0.1), outputs=("transform",)),
    ZooCase("simple_imputer_constant", _transformer(_imp(strategy="constant", fill_value=-7.5), k=14, nan_rate=0.1), outputs=("transform",)),
    ZooCase("simple_imputer_text_most_frequent", _text_imputer(strategy="most_frequent", add_indicator=True), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("simple_imputer_text_constant", _text_imputer(strategy="constant", fill_value="missing"), outputs=("transform",), tags=frozenset({"text"})),
    # encoders
    ZooCase("one_hot_ignore", _encoder(_p("OneHotEncoder")(handle_unknown="ignore")), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("one_hot_error", _encoder(_p("OneHotEncoder")(handle_unknown="error")), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("one_hot_drop_first", _encoder(_p("OneHotEncoder")(drop="first", handle_unknown="ignore")), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("one_hot_drop_if_binary", _encoder(_p("OneHotEncoder")(drop="if_binary", handle_unknown="ignore", min_frequency=80)), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("one_hot_drop_values", _encoder(_p("OneHotEncoder")(drop=["blue", "M", 3.0], handle_unknown="ignore")), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("one_hot_infrequent_min_frequency", _encoder(_p("OneHotEncoder")(handle_unknown="infrequent_if_exist", min_frequency=30)), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("one_hot_infrequent_max_categories", _encoder(_p("OneHotEncoder")(handle_unknown="infrequent_if_exist", max_categories=3)), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("one_hot_numeric", _encoder(_p("OneHotEncoder")(handle_unknown="ignore"), columns=("stars",)), outputs=("transform",)),
    ZooCase("ordinal_error", _encoder(_p("OrdinalEncoder")()), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase(
        "ordinal_encoded_values",
        _encoder(_p("OrdinalEncoder")(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2, min_frequency=20)),
        outputs=("transform",),
        tags=frozenset({"text"}),
    ),
    ZooCase("ordinal_unknown_nan", _encoder(_p("OrdinalEncoder")(handle_unknown="use_encoded_value", unknown_value=np.nan)), outputs=("transform",), tags=frozenset({"text"})),
    # binning
    ZooCase("kbins_uniform_ordinal", _transformer(_p("KBinsDiscretizer")(n_bins=4, encode="ordinal", strategy="uniform"), k=20, extra=_on_bin_edges), outputs=("transform",)),
    ZooCase("kbins_quantile_onehot", _transformer(_p("KBinsDiscretizer")(n_bins=5, encode="onehot", strategy="quantile"), k=21, extra=_on_bin_edges), outputs=("transform",)),
    ZooCase("kbins_kmeans_onehot_dense", _transformer(_p("KBinsDiscretizer")(n_bins=3, encode="onehot-dense", strategy="kmeans"), k=22, extra=_on_bin_edges), outputs=("transform",)),
    # polynomials and PCA
    ZooCase("polynomial_degree2", _transformer(_p("PolynomialFeatures")(degree=2), k=30, d=4), outputs=("transform",)),
    ZooCase("polynomial_interaction_only", _transformer(_p("PolynomialFeatures")(degree=3, interaction_only=True, include_bias=False), k=31, d=4), outputs=("transform",)),
    ZooCase("polynomial_degree_range", _transformer(_p("PolynomialFeatures")(degree=(2, 3)), k=32, d=3), outputs=("transform",)),
    ZooCase("pca", _transformer(_pca(n_components=3), k=33, d=8), outputs=("transform",)),
    ZooCase("pca_whiten", _transformer(_pca(n_components=4, whiten=True), k=34, d=8), outputs=("transform",)),
    # compositions
    ZooCase("column_transformer_passthrough", _shop_column_transformer("infrequent_if_exist", "passthrough"), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("column_transformer_error_drop", _shop_column_transformer("error", "drop"), outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("column_transformer_customers", _customers_transform, outputs=("transform",), tags=frozenset({"text"})),
    ZooCase("pipeline_minmax_poly", _pipeline_transform, outputs=("transform",)),
]
