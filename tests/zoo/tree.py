"""Zoo cases: trees and tree ensembles, with the rows that catch a wrong split.

Every case scores ordinary rows plus, for each split node of the model, a row that
reaches that node with the split feature set exactly on the threshold and one ulp
either side in the model's own comparison precision: float32 for scikit-learn's trees
(``float32(threshold)`` and its float32 neighbours, plus the float64 bound the compiler
folds the threshold into and the next float64 above it), float64 for
HistGradientBoosting. Then NaN in every feature, 0, +-1e300 and +-inf in every numeric
feature, and for categorical features every known category, an unseen one and NaN.

scikit-learn refuses some of these rows. Every case's ``reference``
(``sklearn_reference``) scores the whole batch at once and marks those rows; its
answers for them are what indb promises, built from scikit-learn's own predictions: for a model that rejects NaN, a missing output where an input the model
splits on is missing (a missing input it never splits on is replaced by 0); for a
float32 model, values that overflow float32 (+-1e300, +-inf) are replaced by
+-FLT_MAX, which every split scikit-learn can make treats like +-inf (see
``indb/compilers/tree.py``); for HistGradientBoosting, +-inf in a categorical column
(which scikit-learn's encoder refuses) is replaced by 1e300, another unknown category.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from indb.compilers import compile_model
from indb.compilers.tree import allows_nan
from indb.compilers.trees_shared import float32_le_bound
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import assert_close
from tests.zoo import ZooCase

FLT_MAX = float(np.finfo(np.float32).max)
EXTREMES = (0.0, 1e300, -1e300, np.inf, -np.inf)
UNSEEN = "zz_unseen"


# ------------------------------------------------------------------ model structure


def _is_hgb(est: Any) -> bool:
    return hasattr(est, "_predictors")


def sklearn_trees(est: Any) -> list:
    """The ``tree_`` objects of a float32 tree model, in the order it adds them."""
    if hasattr(est, "tree_"):
        return [est.tree_]
    ests = np.asarray(est.estimators_, dtype=object).ravel()
    return [e.tree_ for e in ests]


def used_columns(est: Any) -> np.ndarray:
    """Indices of the input columns a float32 tree model splits on."""
    feats = [t.feature[t.children_left >= 0] for t in sklearn_trees(est)]
    return np.unique(np.concatenate(feats)).astype(int)


def _first_sample_per_node(left: np.ndarray, right: np.ndarray, leaf_of_sample: np.ndarray) -> np.ndarray:
    """For every node, the first sample whose path passes through it (-1 if none)."""
    n_nodes = len(left)
    none = len(leaf_of_sample)
    first = np.full(n_nodes, none)
    np.minimum.at(first, leaf_of_sample, np.arange(len(leaf_of_sample)))
    for n in range(n_nodes - 1, -1, -1):  # children always come after their parent
        if left[n] >= 0:
            assert left[n] > n and right[n] > n
            first[n] = min(first[left[n]], first[right[n]])
    return np.where(first == none, -1, first)


def _float32_split_probes(est: Any, X: np.ndarray) -> list[tuple[int, int, float]]:
    """(sample, column, value) for every split of a float32 tree model."""
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    probes = []
    for tree in sklearn_trees(est):
        first = _first_sample_per_node(tree.children_left, tree.children_right, tree.apply(X32))
        for n in np.flatnonzero((tree.children_left >= 0) & (first >= 0)).tolist():
            t = float(tree.threshold[n])
            f = np.float32(t)
            bound = float32_le_bound(t)
            values = [float(f), float(np.nextafter(f, np.float32(-np.inf))), float(np.nextafter(f, np.float32(np.inf))), bound, float(np.nextafter(bound, np.inf))]
            probes.extend((int(first[n]), int(tree.feature[n]), v) for v in values)
    return probes


def _hgb_leaves(pred: Any, Xp: np.ndarray, known: Any) -> np.ndarray:
    """The leaf each preprocessed row reaches, by scikit-learn's own routing."""
    nodes = pred.nodes.copy()
    nodes["value"] = np.arange(len(nodes))
    tagged = TreePredictor(nodes, pred.binned_left_cat_bitsets, pred.raw_left_cat_bitsets)
    return tagged.predict(Xp, known[0], known[1], 1).astype(np.intp)


def _hgb_source_columns(est: Any) -> np.ndarray:
    if est._preprocessor is None:
        return np.arange(est.n_features_in_)
    is_cat = np.asarray(est.is_categorical_, dtype=bool)
    return np.concatenate([np.flatnonzero(is_cat), np.flatnonzero(~is_cat)])


def _hgb_split_probes(est: Any, X: Any) -> list[tuple[int, int, Any]]:
    """(sample, column, value) for every split of a HistGradientBoosting model."""
    Xp = est._preprocess_X(X, reset=False)
    known = est._bin_mapper.make_known_categories_bitsets()
    source = _hgb_source_columns(est)
    categories = _categories(est)
    probes: list[tuple[int, int, Any]] = []
    for iteration in est._predictors:
        for pred in iteration:
            nodes = pred.nodes
            left = np.where(nodes["is_leaf"], -1, nodes["left"].astype(np.intp))
            right = np.where(nodes["is_leaf"], -1, nodes["right"].astype(np.intp))
            first = _first_sample_per_node(left, right, _hgb_leaves(pred, Xp, known))
            for n in np.flatnonzero((left >= 0) & (first >= 0)).tolist():
                col = int(source[nodes["feature_idx"][n]])
                if nodes["is_categorical"][n]:
                    values = list(categories[col]) + [_unseen_like(categories[col]), None]
                else:
                    t = float(nodes["num_threshold"][n])
                    values = [t, float(np.nextafter(t, -np.inf)), float(np.nextafter(t, np.inf))]
                probes.extend((int(first[n]), col, v) for v in values)
    return probes


def _categories(est: Any) -> dict[int, list]:
    """Known categories (no NaN) of each categorical input column of a HistGradientBoosting model."""
    if not _is_hgb(est) or est._preprocessor is None:
        return {}
    cols = np.flatnonzero(np.asarray(est.is_categorical_, dtype=bool)).tolist()
    enc = est._preprocessor.named_transformers_["encoder"]
    return {c: [v for v in cats if not (isinstance(v, float) and v != v)] for c, cats in zip(cols, enc.categories_)}


def _unseen_like(known: list) -> Any:
    return UNSEEN if isinstance(known[0], str) else float(max(known)) + 0.5


# ------------------------------------------------------------------ rows


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _set_values(rows: Any, cols: list[int], values: list) -> Any:
    """Row i of ``rows`` gets ``values[i]`` in column ``cols[i]`` (categorical columns turn to object)."""
    cols_arr = np.asarray(cols)
    if not isinstance(rows, pd.DataFrame):
        rows[np.arange(len(rows)), cols_arr] = [np.nan if v is None else v for v in values]
        return rows
    for j in np.unique(cols_arr).tolist():
        name = rows.columns[j]
        at = np.flatnonzero(cols_arr == j)
        col = rows[name].astype(object) if isinstance(rows[name].dtype, pd.CategoricalDtype) else rows[name]
        col = col.to_numpy(copy=True)
        for i in at.tolist():
            col[i] = (None if col.dtype == object else np.nan) if _is_missing(values[i]) else values[i]
        rows[name] = col
    return rows


def hard_rows(est: Any, X: Any, n_base: int = 3, max_probes: int | None = None, seed: int = 0) -> Any:
    """``X``'s rows changed one value at a time to hit every split and every edge value.

    ``max_probes`` caps the split rows (a deterministic sample) for very large models.
    """
    probes = _hgb_split_probes(est, X) if _is_hgb(est) else _float32_split_probes(est, np.asarray(X, dtype=np.float64))
    if max_probes is not None and len(probes) > max_probes:
        keep = np.sort(np.random.default_rng(seed).choice(len(probes), max_probes, replace=False))
        probes = [probes[i] for i in keep]
    categories = _categories(est)
    for j in range(X.shape[1]):
        if j in categories:
            values = list(categories[j]) + [_unseen_like(categories[j]), None]
            if not isinstance(categories[j][0], str):
                values += list(EXTREMES) + [-1.0, 2.5]
        else:
            values = [None, *EXTREMES]
        probes.extend((i * 7 % len(X), j, v) for i in range(n_base) for v in values)
    samples = [p[0] for p in probes]
    if isinstance(X, pd.DataFrame):
        rows = X.iloc[samples].reset_index(drop=True)
    else:
        rows = np.asarray(X, dtype=np.float64)[samples].copy()
    return _set_values(rows, [p[1] for p in probes], [p[2] for p in probes])


def with_hard_rows(est: Any, X: Any, n_plain: int = 200, **kw: Any) -> Any:
    """The first ``n_plain`` rows of ``X`` followed by ``hard_rows``.

    Categorical columns keep a categorical dtype whose categories grow by the new values.
    """
    hard = hard_rows(est, X, **kw)
    if not isinstance(X, pd.DataFrame):
        return np.vstack([np.asarray(X, dtype=np.float64)[:n_plain], hard])
    out = pd.concat([X.iloc[:n_plain].astype({c: object for c in hard.columns if hard[c].dtype != X[c].dtype}), hard], ignore_index=True)
    for name in X.columns:
        if isinstance(X[name].dtype, pd.CategoricalDtype):
            known = list(X[name].cat.categories)
            new = [v for v in pd.unique(out[name].to_numpy(dtype=object)) if not _is_missing(v) and v not in known]
            out[name] = pd.Categorical(out[name].to_numpy(dtype=object), categories=known + new)
    return out


# ------------------------------------------------------------------ expected outputs

_METHODS = {"predict": "predict", "proba": "predict_proba", "decision": "decision_function"}


def _stand_ins(est: Any, X: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """X with the stand-ins for values scikit-learn refuses, the refused rows, and the
    rows whose answer must be missing."""
    refused = np.zeros(len(X), dtype=bool)
    missing = np.zeros(len(X), dtype=bool)
    if _is_hgb(est):
        Xs = X.copy()
        for j in _categories(est):
            col = np.asarray(Xs.iloc[:, j] if isinstance(Xs, pd.DataFrame) else Xs[:, j], dtype=object)
            inf = np.array([isinstance(v, float) and np.isinf(v) for v in col])
            refused |= inf
            if isinstance(Xs, pd.DataFrame):
                Xs.iloc[np.flatnonzero(inf), j] = 1e300
            else:
                Xs[inf, j] = 1e300
        return Xs, refused, missing
    Xs = np.array(X, dtype=np.float64)
    with np.errstate(over="ignore"):
        overflow = np.isinf(Xs.astype(np.float32))
    refused |= overflow.any(axis=1)
    Xs[overflow] = np.sign(Xs[overflow]) * FLT_MAX
    if not allows_nan(est):
        nan = np.isnan(Xs)
        refused |= nan.any(axis=1)
        missing = nan[:, used_columns(est)].any(axis=1)
        Xs[nan] = 0.0
    return Xs, refused, missing


def sklearn_reference(est: Any, X: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's own ``kind`` output (n, k) with the stand-ins described above, and
    the mask of the rows scikit-learn itself refuses (``ZooCase.reference``)."""
    Xs, refused, missing = _stand_ins(est, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(getattr(est, _METHODS[kind])(Xs))
    out = out.astype(object) if out.dtype.kind in "OUSb" else out.astype(np.float64)
    out[missing] = None if out.dtype == object else np.nan
    return out.reshape(len(X), -1), refused


def check_ir_parity(case: ZooCase) -> float:
    """Compile ``case``'s model, compare every output the IR evaluator gives with
    ``sklearn_reference`` (labels exactly, numbers within the case's tolerance); returns the
    model -> IR compile time in seconds."""
    est, X = case.fitted()
    t0 = time.perf_counter()
    m = compile_model(est)
    seconds = time.perf_counter() - t0
    cols = columns_from_matrix(m, X)
    for kind in case.outputs:
        want, _ = sklearn_reference(est, X, kind)
        assert_close(evaluate(m.output(kind), cols), want, rtol=case.rtol, atol=case.atol, what=f"{case.id} {kind}")
    return seconds


# ------------------------------------------------------------------ the cases


def _numeric_data(n: int, n_features: int, seed: int, nan_rate: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)) * rng.uniform(0.5, 20.0, size=n_features) + rng.normal(size=n_features)
    z = (X - X.mean(0)) / X.std(0)
    score = z[:, 0] + 0.8 * z[:, 1] * (z[:, 2] > 0) + 0.5 * np.sin(2 * z[:, 3]) + 0.3 * rng.normal(size=n)
    if nan_rate:
        X[rng.random(X.shape) < nan_rate] = np.nan
    return X, score


def _labels(score: np.ndarray, names: list) -> np.ndarray:
    edges = np.quantile(score, np.linspace(0, 1, len(names) + 1)[1:-1])
    return np.asarray(names)[np.searchsorted(edges, score)]


def _categorical_frame(n: int, seed: int, n_numeric: int = 6) -> tuple[pd.DataFrame, np.ndarray]:
    """A frame with numeric columns (with NaN), a 14-category string column (with NaN) and an int-coded one."""
    rng = np.random.default_rng(seed)
    X, score = _numeric_data(n, n_numeric, seed, nan_rate=0.05)
    df = pd.DataFrame(X, columns=[f"num{i}" for i in range(n_numeric)])
    cities = [f"city_{c}" for c in "abcdefghijklmn"]
    city = rng.choice(cities, n)
    effect = dict(zip(cities, rng.normal(size=len(cities)) * 1.5))
    score = score + np.array([effect[c] for c in city])
    city = city.astype(object)
    city[rng.random(n) < 0.05] = None
    # UNSEEN is in the dtype but never in training: scikit-learn's encoder treats it as unknown
    df.insert(2, "city", pd.Categorical(city, categories=cities + [UNSEEN]))
    grade = rng.choice([-2.0, 0.0, 1.0, 3.0, 4.0, 7.0, 9.0, 12.0, 15.0, 20.0, 31.0], n)
    score = score + 0.3 * (grade % 3)
    df["grade"] = pd.Categorical(grade)
    return df, score


def _fit(est: Any, X: Any, y: np.ndarray, **kw: Any) -> tuple[Any, Any]:
    est.fit(X, y)
    return est, with_hard_rows(est, X, **kw)


def _dt_classifier():
    X, s = _numeric_data(400, 22, seed=1, nan_rate=0.05)
    return _fit(DecisionTreeClassifier(max_depth=6, random_state=0), X, _labels(s, ["low", "mid", "high"]))


def _dt_regressor():
    X, s = _numeric_data(300, 8, seed=2, nan_rate=0.05)
    return _fit(DecisionTreeRegressor(max_depth=6, random_state=0), X, 100 * s)


def _extra_tree_classifier_best():
    # splitter="best": scikit-learn refuses NaN at predict, so rows with NaN are NULL
    X, s = _numeric_data(300, 10, seed=3)
    return _fit(ExtraTreeClassifier(splitter="best", max_depth=6, random_state=0), X, _labels(s, [10, 20, 30, 40]))


def _extra_tree_regressor():
    X, s = _numeric_data(300, 8, seed=4, nan_rate=0.05)
    return _fit(ExtraTreeRegressor(max_depth=7, random_state=0), X, s)


def _rf_classifier():
    X, s = _numeric_data(400, 24, seed=5, nan_rate=0.03)
    return _fit(RandomForestClassifier(n_estimators=25, max_depth=5, random_state=0), X, _labels(s, ["Alpha", "beta", "Gamma", "delta"]))


def _rf_regressor():
    X, s = _numeric_data(300, 10, seed=6, nan_rate=0.05)
    return _fit(RandomForestRegressor(n_estimators=20, max_depth=5, random_state=0), X, s)


def _et_classifier():
    X, s = _numeric_data(300, 10, seed=7, nan_rate=0.05)
    return _fit(ExtraTreesClassifier(n_estimators=20, max_depth=5, random_state=0), X, _labels(s, [0, 1, 2]))


def _et_regressor():
    X, s = _numeric_data(300, 10, seed=8, nan_rate=0.05)
    return _fit(ExtraTreesRegressor(n_estimators=20, max_depth=5, random_state=0), X, s)


def _gb_regressor():
    X, s = _numeric_data(300, 20, seed=9)
    return _fit(GradientBoostingRegressor(n_estimators=30, max_depth=3, learning_rate=0.2, random_state=0), X, 50 * s)


def _gb_regressor_zero_init():
    X, s = _numeric_data(300, 8, seed=10)
    return _fit(GradientBoostingRegressor(n_estimators=20, max_depth=3, loss="huber", init="zero", random_state=0), X, s)


def _gb_binary():
    X, s = _numeric_data(300, 20, seed=11)
    return _fit(GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0), X, _labels(s, ["no", "yes"]))


def _gb_exponential():
    X, s = _numeric_data(300, 8, seed=12)
    return _fit(GradientBoostingClassifier(n_estimators=20, max_depth=2, loss="exponential", random_state=0), X, _labels(s, [-1, 1]))


def _gb_multiclass():
    X, s = _numeric_data(400, 20, seed=13)
    return _fit(GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0), X, _labels(s, ["setosa", "versicolor", "virginica"]))


def _hgb_regressor():
    X, s = _categorical_frame(400, seed=14)
    return _fit(HistGradientBoostingRegressor(max_iter=30, max_leaf_nodes=8, categorical_features="from_dtype", random_state=0), X, 10 * s)


def _hgb_poisson_numeric():
    # categorical column given by index on a plain array: negative and sparse codes
    rng = np.random.default_rng(15)
    X, s = _numeric_data(400, 6, seed=15, nan_rate=0.05)
    codes = rng.choice([-5.0, -1.0, 0.0, 2.0, 3.0, 8.0, 13.0, 21.0, 34.0, 55.0, 300.0], len(X))
    X[:, 4] = codes
    X[rng.random(len(X)) < 0.05, 4] = np.nan
    y = np.exp(0.5 * s + 0.1 * (codes % 4))
    return _fit(HistGradientBoostingRegressor(loss="poisson", max_iter=25, max_depth=4, categorical_features=[4], random_state=0), X, y)


def _hgb_binary():
    X, s = _categorical_frame(400, seed=16)
    return _fit(HistGradientBoostingClassifier(max_iter=25, max_leaf_nodes=8, random_state=0), X, _labels(s, ["churn", "stay"]))


def _hgb_multiclass():
    X, s = _categorical_frame(450, seed=17, n_numeric=20)
    return _fit(HistGradientBoostingClassifier(max_iter=12, max_leaf_nodes=6, random_state=0), X, _labels(s, ["bronze", "silver", "gold", "platinum"]))


def _rf_large():
    # 20,000 rows fill every tree to depth 8 as 100,000 did (the model's size is what is
    # large), at a fifth of the fitting time; 1,500 sampled split rows keep every engine's
    # run short (the suite's time)
    X, s = _numeric_data(20_000, 20, seed=18)
    est = RandomForestRegressor(n_estimators=100, max_depth=8, max_features=0.3, n_jobs=-1, random_state=0)
    return _fit(est, X, s, n_plain=500, max_probes=1500)


def _gb_large():
    X, s = _numeric_data(5000, 20, seed=19)
    est = GradientBoostingClassifier(n_estimators=200, max_depth=4, random_state=0)
    return _fit(est, X, _labels(s, ["neg", "pos"]), n_plain=1000, max_probes=3000)


_CLF = ("predict", "proba")
_BOOST = ("predict", "proba", "decision")


def _case(case_id: str, make: Any, outputs: tuple[str, ...] = ("predict",), *tags: str) -> ZooCase:
    return ZooCase(case_id, make, outputs, tags=frozenset(tags), reference=sklearn_reference)


CASES: list = [
    _case("DecisionTreeClassifier-text-labels-nan", _dt_classifier, _CLF),
    _case("DecisionTreeRegressor-nan", _dt_regressor),
    _case("ExtraTreeClassifier-best-splitter-no-nan", _extra_tree_classifier_best, _CLF),
    _case("ExtraTreeRegressor-nan", _extra_tree_regressor),
    _case("RandomForestClassifier-4-classes", _rf_classifier, _CLF),
    _case("RandomForestRegressor", _rf_regressor),
    _case("ExtraTreesClassifier-int-labels", _et_classifier, _CLF),
    _case("ExtraTreesRegressor", _et_regressor),
    _case("GradientBoostingRegressor", _gb_regressor),
    _case("GradientBoostingRegressor-huber-zero-init", _gb_regressor_zero_init),
    _case("GradientBoostingClassifier-binary", _gb_binary, _BOOST),
    _case("GradientBoostingClassifier-exponential", _gb_exponential, _BOOST),
    _case("GradientBoostingClassifier-multiclass", _gb_multiclass, _BOOST),
    _case("HistGradientBoostingRegressor-categorical", _hgb_regressor, ("predict",), "text"),
    _case("HistGradientBoostingRegressor-poisson-coded-categories", _hgb_poisson_numeric),
    _case("HistGradientBoostingClassifier-binary-categorical", _hgb_binary, _BOOST, "text"),
    _case("HistGradientBoostingClassifier-multiclass-categorical", _hgb_multiclass, _BOOST, "text"),
    _case("RandomForestRegressor-100x8-large", _rf_large, ("predict",), "large"),
    _case("GradientBoostingClassifier-200x4-large", _gb_large, _BOOST, "large"),
]
