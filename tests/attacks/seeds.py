"""Real models whose IRs the attack tests start from, and a row to score them on."""

from __future__ import annotations

import functools
import warnings

import numpy as np

from indb.registry.versions import prepare


@functools.lru_cache(maxsize=None)
def seeds() -> dict:
    """name -> (ir.Model, a few rows as {feature: values}): a GradientBoosting, a tree
    ensemble with categorical splits, an MLP, a pipeline with a OneHotEncoder."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    out = {}
    gb = GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0).fit(X, y)
    Xc = np.column_stack([rng.integers(0, 5, 200).astype(float), X[:, 1]])
    hgb = HistGradientBoostingRegressor(max_iter=3, max_depth=3, categorical_features=[0], random_state=0).fit(Xc, Xc[:, 0] * 2 + X[:, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPRegressor(hidden_layer_sizes=(4,), max_iter=30, random_state=0).fit(X, X[:, 0] - X[:, 2])
    df = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], 200), "size": X[:, 0]})
    pipe = make_pipeline(ColumnTransformer([("oh", OneHotEncoder(handle_unknown="ignore"), ["color"])], remainder="passthrough"),
                         LogisticRegression()).fit(df, (df["color"] == "red") ^ (df["size"] > 0))
    rows = {"x0": np.array([0.5, -1.0, np.nan]), "x1": np.array([-1.0, 2.0, 0.25]), "x2": np.array([2.0, 0.0, -3.0])}
    for name, est, cols in (("gb", gb, rows), ("hgb_cat", hgb, {"x0": np.array([1.0, 3.0, np.nan]), "x1": rows["x1"]}),
                            ("mlp", mlp, rows),
                            ("onehot", pipe, {"color": np.array(["red", "blue", None], dtype=object), "size": rows["x0"]})):
        m, _, _ = prepare(est)
        out[name] = (m, cols)
    return out
