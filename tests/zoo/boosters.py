"""Zoo cases: XGBoost and LightGBM models compiled from their own dumps (``compile_model``).

The reference is the booster's own ``predict`` / ``predict_proba`` (float32 for
XGBoost, float64 for LightGBM). Rows: ordinary rows (NaN in two features, so the
boosters learn missing directions), zeros, each feature in turn at NaN (sent as NaN and
as NULL), +-1e30, +-1e300 and +-inf (XGBoost rounds to float32, where 1e300 is +inf;
LightGBM compares in float64), and for every split a row that reaches it (by the
booster's own ``pred_leaf``) with the split feature on the threshold and one ulp
either side in the booster's precision (float32 for XGBoost, plus the float64 bounds
the compiler folds ``float32(x) < t`` into; float64 for LightGBM), NaN (the node's
learned or rule-given missing direction), the values around
LightGBM's zero band (+-1e-35) for ``zero_as_missing`` models, and for categorical
splits every category, fractions of them (LightGBM truncates), -0.5, -1, and 2**31.

Tolerances: XGBoost adds leaves and applies its link in float32, so 1e-6 relative with
an absolute floor of 1e-7 for probabilities (float32's resolution near 1 is 6e-8) and
1e-6 for regressions of unit scale; LightGBM computes in float64: 1e-12 relative.
Labels are exact (the data has no float32 ties between classes).
"""

from __future__ import annotations

import json
import zlib
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from tests.zoo import ZooCase

SEED = 20241001
LGB_ZERO = float(np.float32(1e-35))


def _rng(k: int) -> np.random.Generator:
    return np.random.default_rng(SEED + k)


def _data(n: int = 400, d: int = 6, k: int = 0, classes: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(k)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 4.0, size=d)
    score = X @ rng.normal(size=(d, max(classes, 1))) + np.sin(X[:, :1]) * 2
    X[rng.random(n) < 0.15, 2] = np.nan
    X[rng.random(n) < 0.05, 0] = np.nan
    if classes:
        y = np.argmax(score + rng.normal(scale=0.5, size=score.shape), axis=1) if classes > 2 else (score[:, 0] > np.median(score[:, 0])).astype(int)
    else:
        y = score[:, 0] + rng.normal(scale=0.3, size=n)
    return X, y


def fit_booster(kind: str, float32_input: bool = False) -> tuple[Any, np.ndarray]:
    """A small fitted booster of ``kind`` and its training data (float32-representable when asked)."""
    import lightgbm as lgb  # noqa: PLC0415
    import xgboost as xgb  # noqa: PLC0415

    lib, _, task = kind.partition("_")
    classes = {"binary": 2, "multi": 3, "ova": 3}.get(task, 0)
    X, y = _data(classes=classes, k=zlib.crc32(kind.encode()) % 97)
    if float32_input:
        X = X.astype(np.float32).astype(np.float64)
    if task == "poisson" or task == "gamma":
        y = np.exp(y / 4)
    if task == "categorical":
        X[:, 5] = _rng(3).integers(0, 12, len(X))
        y = y + np.where(X[:, 5] % 3 == 0, 4.0, 0.0)
    if task == "multi" and lib == "lgb":
        y = np.asarray(["low", "mid", "High"], dtype=object)[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # multiclass softmax repeats every tree in SQL: fewer rounds keep those cases quick
        rounds = 5 if task in ("multi", "softmax", "ova") else 12
        if lib == "xgb":
            params: dict[str, Any] = {"n_estimators": rounds, "max_depth": 3, "random_state": 0, "n_jobs": 1}
            if task == "poisson":
                params["objective"] = "count:poisson"
            if task == "gamma":
                params["objective"] = "reg:gamma"
            if task == "softmax":
                params.update(objective="multi:softmax", num_class=3)
                y = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
            if task == "basescore":
                params["base_score"] = 0.3
            if task == "early":
                params.update(n_estimators=60, early_stopping_rounds=3, learning_rate=0.5)
                cls = xgb.XGBRegressor
                est = cls(**params).fit(X[:300], y[:300], eval_set=[(X[300:], y[300:])], verbose=False)
                return est, X
            cls = xgb.XGBClassifier if classes or task in ("softmax", "basescore") else xgb.XGBRegressor
            if task == "basescore":
                y = (y > np.quantile(y, 0.7)).astype(int)
            return cls(**params).fit(X, y), X
        params = {"n_estimators": rounds, "num_leaves": 8, "min_child_samples": 5, "random_state": 0, "verbose": -1, "n_jobs": 1}
        if task == "zero":
            params["zero_as_missing"] = True
        if task == "nomissing":
            params["use_missing"] = False
        if task == "poisson":
            params["objective"] = "poisson"
        if task == "ova":
            params["objective"] = "multiclassova"
        if task == "rf":
            params.update(boosting_type="rf", bagging_freq=1, bagging_fraction=0.7)
        if task == "categorical":
            params.update(min_data_per_group=5, cat_smooth=1.0, cat_l2=1.0)
            est = lgb.LGBMRegressor(**params).fit(X, y, categorical_feature=[5])
            return est, X
        cls = lgb.LGBMClassifier if classes else lgb.LGBMRegressor
        return cls(**params).fit(X, y), X


# --------------------------------------------------------------------------- splits and rows


def _first_reaching(paths: list[list[Any]]) -> dict[Any, int]:
    first: dict[Any, int] = {}
    for i, path in enumerate(paths):
        for node in path:
            first.setdefault(node, i)
    return first


def xgb_splits(est: Any, X: np.ndarray) -> list[tuple[int, int, Any]]:
    """(first sample reaching it, feature, float32 threshold) for every XGBoost split."""
    import xgboost as xgb  # noqa: PLC0415

    booster = est.get_booster()
    names = booster.feature_names or [f"f{i}" for i in range(X.shape[1])]
    leaves = booster.predict(xgb.DMatrix(X, missing=np.nan), pred_leaf=True).reshape(len(X), -1)
    out = []
    for k, text in enumerate(booster.get_dump(dump_format="json")):
        nodes, parent = {}, {}
        stack = [json.loads(text)]
        while stack:
            n = stack.pop()
            nodes[n["nodeid"]] = n
            for c in n.get("children", []):
                parent[c["nodeid"]] = n["nodeid"]
                stack.append(c)

        def path(leaf: int) -> list[int]:
            p = []
            while leaf in parent:
                leaf = parent[leaf]
                p.append(leaf)
            return p

        first = _first_reaching([path(int(leaf)) for leaf in leaves[:, k]])
        for nid, i in first.items():
            n = nodes[nid]
            out.append((i, names.index(n["split"]), float(n["split_condition"])))
    return out


def lgb_splits(est: Any, X: np.ndarray) -> list[tuple[int, int, Any]]:
    """(first sample reaching it, feature, threshold or categorical node) for every LightGBM split."""
    booster = est.booster_
    leaves = booster.predict(X, pred_leaf=True).reshape(len(X), -1)
    out = []
    for k, info in enumerate(booster.dump_model()["tree_info"]):
        ancestors: dict[int, list[dict]] = {}
        stack: list[tuple[dict, list[dict]]] = [(info["tree_structure"], [])]
        while stack:
            n, above = stack.pop()
            if "leaf_value" in n:
                ancestors[int(n.get("leaf_index", 0))] = above
            else:
                stack.append((n["left_child"], above + [n]))
                stack.append((n["right_child"], above + [n]))
        first = _first_reaching([[id(a) for a in ancestors[int(leaf)]] for leaf in leaves[:, k]])
        for nodes in ancestors.values():
            for n in nodes:
                if id(n) in first:
                    out.append((first.pop(id(n)), int(n["split_feature"]), n))
    return out


def float64_probes(t: float) -> list[float]:
    return [t, float(np.nextafter(t, -np.inf)), float(np.nextafter(t, np.inf)), np.nan]


ZERO_BAND = [0.0, -0.0, LGB_ZERO, -LGB_ZERO, float(np.nextafter(LGB_ZERO, np.inf)), float(np.nextafter(-LGB_ZERO, -np.inf)), 1e-36, -1e-36]
CATEGORY_EXTRAS = [-0.5, -1.0, -1.5, 0.5, 2.0**31, 2.0**31 - 1, 1e10, 1e300, -1e300]


def _lgb_probes(n: dict, float32_probes: Callable | None) -> list[float]:
    if n["decision_type"] == "==":
        cats = [float(c) for c in str(n["threshold"]).split("||")]
        return [v for c in cats for v in (c, c + 0.5, c - 0.5)] + CATEGORY_EXTRAS + [np.nan]
    t = float(n["threshold"])
    out = float64_probes(t) if float32_probes is None else float32_probes(t)
    return out + (ZERO_BAND if n["missing_type"] == "Zero" or abs(t) <= LGB_ZERO else [])


def booster_rows(est: Any, X: np.ndarray, float32_probes: Callable | None = None, n_test: int = 60, extremes: Sequence[float] = (1e30, -1e30)) -> np.ndarray:
    """Test rows: ordinary rows, edge rows and per-split threshold probes.

    ``float32_probes``: the probes of a float32 threshold (XGBoost, and any booster seen
    through a float32 ONNX graph); without it LightGBM splits get float64 probes.
    """
    from tests.zoo.onnx import float32_probes as f32_probes  # noqa: PLC0415

    rows = [X[:n_test], np.zeros((1, X.shape[1]))]
    for j in range(X.shape[1]):
        for v in (np.nan, *extremes):
            r = X[1].copy()
            r[j] = v
            rows.append(r[None, :])
    is_xgb = hasattr(est, "get_booster")
    for sample, feature, node in (xgb_splits(est, X) if is_xgb else lgb_splits(est, X)):
        values = (float32_probes or f32_probes)(node) if is_xgb else _lgb_probes(node, float32_probes)
        for v in values:
            r = X[sample].copy()
            r[feature] = v
            rows.append(r[None, :])
    return np.vstack(rows)


# --------------------------------------------------------------------------- cases


def _case(kind: str, outputs: tuple[str, ...], rtol: float, atol: float, extremes: Sequence[float] = (1e30, -1e30, 1e300, -1e300, np.inf, -np.inf)) -> ZooCase:
    def make():
        est, X = fit_booster(kind)
        return est, booster_rows(est, X, extremes=extremes)

    return ZooCase(f"booster_{kind}", make, outputs, rtol=rtol, atol=atol, tags=frozenset({"booster"}))


def _cases() -> list[ZooCase]:
    try:
        import lightgbm  # noqa: F401, PLC0415
        import xgboost  # noqa: F401, PLC0415
    except ImportError:
        return []
    both = ("predict", "proba")
    return [
        _case("xgb_binary", both, 1e-6, 1e-7),
        _case("xgb_multi", both, 1e-6, 1e-7),
        _case("xgb_softmax", both, 1e-6, 1e-7),
        _case("xgb_basescore", both, 1e-6, 1e-7),
        _case("xgb_regression", ("predict",), 1e-6, 1e-6),
        _case("xgb_poisson", ("predict",), 1e-6, 1e-6),
        _case("xgb_early", ("predict",), 1e-6, 1e-6),
        _case("lgb_binary", both, 1e-12, 1e-15),
        _case("lgb_multi", both, 1e-12, 1e-15),
        _case("lgb_ova", both, 1e-12, 1e-15),
        _case("lgb_regression", ("predict",), 1e-12, 1e-13),
        _case("lgb_poisson", ("predict",), 1e-12, 1e-13),
        _case("lgb_rf", ("predict",), 1e-12, 1e-13),
        _case("lgb_zero", ("predict",), 1e-12, 1e-13),
        _case("lgb_nomissing", ("predict",), 1e-12, 1e-13),
        _case("lgb_categorical", ("predict",), 1e-12, 1e-13),
    ]


CASES = _cases()


# --------------------------------------------------------------------------- benchmark factories


def bench_xgboost(X: np.ndarray, y: np.ndarray) -> Any:
    """XGBoost with 200 trees of depth 6 (for ``bench/``): a classifier when ``y`` has at most
    10 distinct values, else a regressor. Compile it with ``compile_model``."""
    import xgboost as xgb  # noqa: PLC0415

    classify = len(np.unique(y)) <= 10
    cls = xgb.XGBClassifier if classify else xgb.XGBRegressor
    return cls(n_estimators=200, max_depth=6, random_state=0, n_jobs=1).fit(X, y)
