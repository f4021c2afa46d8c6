"""Zoo cases: outlier detectors (predict: +1/-1, decision_function).

IsolationForest rows: ordinary rows; for a deterministic sample of the split nodes of
every tree, a row that reaches the node with the split feature set to the threshold in
float32, one float32 ulp either side, and the float64 bound the compiler folds the
threshold into and the next double above it; then 0, +-1e300, +-inf and NaN in every
feature (IsolationForest accepts them all: NaN follows each node's missing-value
direction, values beyond float32 become +-inf). OneClassSVM rows: ordinary rows, zeros,
+-1e300 and NaN per feature (it refuses NaN: NULL outputs; infinite inputs left out).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tests.zoo import ZooCase
from tests.zoo.linear import _rng, _with_edges, lazy

EXTREMES = (0.0, 1e300, -1e300, np.inf, -np.inf, np.nan)


def split_probes(est: Any, X: np.ndarray, max_probes: int = 400, seed: int = 0) -> np.ndarray:
    """Rows on every sampled split of an IsolationForest, and one float32 ulp either side."""
    from indb.compilers.trees_shared import float32_le_bound
    from tests.zoo.tree import _first_sample_per_node

    subsample = est._max_features != est.n_features_in_
    X32 = X.astype(np.float32)
    probes = []
    for member, features in zip(est.estimators_, est.estimators_features_):
        tree = member.tree_
        columns = np.asarray(features) if subsample else np.arange(X.shape[1])
        first = _first_sample_per_node(tree.children_left, tree.children_right, tree.apply(X32[:, columns]))
        for n in np.flatnonzero((tree.children_left >= 0) & (first >= 0)).tolist():
            t = float(tree.threshold[n])
            f = np.float32(t)
            bound = float32_le_bound(t)
            for v in (float(f), float(np.nextafter(f, np.float32(-np.inf))), float(np.nextafter(f, np.float32(np.inf))), bound, float(np.nextafter(bound, np.inf))):
                probes.append((int(first[n]), int(columns[tree.feature[n]]), v))
    if len(probes) > max_probes:
        keep = np.sort(np.random.default_rng(seed).choice(len(probes), max_probes, replace=False))
        probes = [probes[i] for i in keep]
    rows = X[[p[0] for p in probes]].copy()
    rows[np.arange(len(probes)), [p[1] for p in probes]] = [p[2] for p in probes]
    return rows


def _extremes(X: np.ndarray) -> np.ndarray:
    rows = []
    for j in range(X.shape[1]):
        for v in EXTREMES:
            r = X[j % len(X)].copy()
            r[j] = v
            rows.append(r)
    return np.array(rows)


def _data(d: int, k: int) -> np.ndarray:
    rng = _rng(k)
    X = rng.normal(size=(300, d)) * rng.uniform(0.5, 10.0, d)
    X[:15] += rng.normal(size=(15, d)) * 40  # a few outliers
    return X


def _iforest(k: int, d: int, **kw):
    def make():
        X = _data(d, k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = lazy("sklearn.ensemble", "IsolationForest")(random_state=0, **kw)().fit(X)
        return est, np.vstack([X[:80], split_probes(est, X), _extremes(X)])

    return make


def _ocsvm(k: int, d: int, **kw):
    def make():
        X = _data(d, k)
        X = X / X.std(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = lazy("sklearn.svm", "OneClassSVM")(**kw)().fit(X[:150])
        return est, _with_edges(X)

    return make


OUTPUTS = ("predict", "decision")

CASES: list[ZooCase] = [
    ZooCase("isolation_forest", _iforest(80, 6, n_estimators=25, max_samples=64), outputs=OUTPUTS),
    ZooCase("isolation_forest_max_features_20f", _iforest(81, 20, n_estimators=15, max_samples=48, max_features=0.5, contamination=0.1), outputs=OUTPUTS),
    ZooCase("one_class_svm_rbf", _ocsvm(82, 5, nu=0.1, gamma=0.2), outputs=OUTPUTS),
    ZooCase("one_class_svm_poly", _ocsvm(83, 4, nu=0.2, kernel="poly", degree=2), outputs=OUTPUTS),
]
