"""Outlier detectors: model -> IR structure, IR parity with scikit-learn (thresholds, NaN, inf)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.svm import OneClassSVM

from indb import ir
from indb.compilers import compile_model
from indb.compilers.outlier import iforest_score_samples, ocsvm_score_samples
from indb.compilers.converters import Context
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import assert_close, check_docstring_examples, check_parity, check_zoo_case
from tests.zoo import outlier as zoo
from tests.zoo.outlier import _extremes, split_probes
from tests.zoo.preprocessing import _fit



def _data(n=400, d=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 10.0, d)
    X[: n // 20] += rng.normal(size=(n // 20, d)) * 50  # a few outliers
    return X


def _inputs(d):
    names = [f"x{i}" for i in range(d)]
    return [ir.Feature(n) for n in names], Context(names)


# ------------------------------------------------------------------ structure


def test_decision_ir_is_sklearns_formula():
    est = _fit(IsolationForest(n_estimators=3, random_state=0), _data(50, 2))
    m = compile_model(est)
    decision = m.output("decision")
    denominator = 3 * _average_path_length([est._max_samples])[0]
    assert decision.op == "-" and decision.right == ir.const(float(est.offset_))
    scores = decision.left.args[0]
    assert scores.name == "pow" and scores.args[0] == ir.const(2.0)
    ratio = scores.args[1].args[0]
    assert ratio.op == "/" and ratio.right == ir.const(float(denominator))
    depths = ratio.left
    assert isinstance(depths, ir.Index) and isinstance(depths.vector, ir.TreeEnsemble) and len(depths.vector.trees) == 3
    assert m.output("predict") == ir.Case(((ir.Compare("<", decision, ir.const(0.0)), ir.const(-1.0)),), ir.const(1.0))


def test_leaf_values_are_path_length_plus_average_minus_one():
    est = _fit(IsolationForest(n_estimators=2, random_state=0), _data(80, 3))
    ens = compile_model(est).output("decision").left.args[0].args[1].args[0].left.vector
    for tree, member, depth, avg in zip(ens.trees, est.estimators_, est._decision_path_lengths, est._average_path_length_per_tree):
        leaves = np.flatnonzero(member.tree_.children_left < 0)
        assert [tree.value[n][0] for n in leaves] == (depth + avg - 1.0)[leaves].tolist()


# ------------------------------------------------------------------ parity


@pytest.mark.parametrize(
    "kw",
    [dict(n_estimators=40), dict(n_estimators=20, max_features=0.5, max_samples=100, contamination=0.05), dict(n_estimators=10, max_features=3, bootstrap=True)],
    ids=["default", "subsampled_features", "bootstrap"],
)
def test_isolation_forest_parity_on_thresholds_nan_and_infinities(kw):
    X = _data()
    est = _fit(IsolationForest(random_state=0, **kw), X)
    rows = np.vstack([X[:100], split_probes(est, X, max_probes=2000), _extremes(X)])
    m = check_parity(est, rows, ("predict", "decision"))
    # scikit-learn scores every row: NaN follows the trees, +-inf and +-1e300 are compared in float32
    assert not np.isnan(evaluate(m.output("decision"), columns_from_matrix(m, rows))).any()


def test_score_samples_is_bit_identical():
    X = _data(d=8)
    est = _fit(IsolationForest(n_estimators=60, max_features=0.7, random_state=0), X)
    rows = np.vstack([X, split_probes(est, X, max_probes=1000), _extremes(X)])
    xs, ctx = _inputs(8)
    got = evaluate(iforest_score_samples(est, xs, ctx), columns_from_matrix(compile_model(est), rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = est.score_samples(rows)
    assert np.array_equal(got, want)  # same leaves, same sums in the same order, same pow


def test_threshold_probes_cross_the_split():
    """The probe rows really sit on both sides of the float32 comparisons."""
    X = _data(100, 4)
    est = _fit(IsolationForest(n_estimators=5, random_state=0), X)
    rows = split_probes(est, X, max_probes=10_000)
    tree = est.estimators_[0].tree_
    t = tree.threshold[0]
    f = rows[:, tree.feature[0]]
    assert (f.astype(np.float32) <= t).any() and (f.astype(np.float32) > t).any()
    assert (f == float(np.float32(t))).any()


def test_single_sample_forest_scores_one_half():
    est = _fit(IsolationForest(n_estimators=2, max_samples=1, random_state=0), _data(30, 2))
    rows = _data(5, 2, seed=1)
    m = check_parity(est, rows, ("predict", "decision"))
    xs, ctx = _inputs(2)
    assert evaluate(iforest_score_samples(est, xs, ctx), columns_from_matrix(m, rows)).tolist() == [-0.5] * 5


@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly", "sigmoid"])
def test_one_class_svm_parity(kernel):
    X = _data(300, 6) / 10
    est = _fit(OneClassSVM(kernel=kernel, nu=0.15, gamma=0.1, coef0=0.2), X[:150])
    rows = np.vstack([X, [r for r in _extremes(X) if not np.isinf(r).any()]])
    m = check_parity(est, rows, ("predict", "decision"))
    xs, ctx = _inputs(6)
    assert_close(evaluate(ocsvm_score_samples(est, xs, ctx), columns_from_matrix(m, X)), est.score_samples(X), what="score_samples")


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    check_zoo_case(case)


def test_docstring_examples():
    from indb.compilers import outlier as module

    check_docstring_examples(module)
