"""Single decision trees: the float32 split bound, model -> IR structure, and IR parity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from indb import ir
from indb.compilers import compile_model
from indb.compilers.trees_shared import float32_le_bound, float32_le_bounds
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import assert_close
from tests.zoo.tree import CASES, FLT_MAX, check_ir_parity, sklearn_reference

F32_INF = np.float32(np.inf)


def _f32(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float64).astype(np.float32)


# ------------------------------------------------------------------ the float32 bound


def _thresholds() -> np.ndarray:
    """Thresholds of every kind: float32 values, float32 midpoints, random float64, tiny, huge."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=20000, dtype=np.uint64).astype(np.uint32)
    f = bits.view(np.float32)
    f = f[np.isfinite(f)]
    g = np.nextafter(f, F32_INF)
    mids = (f.astype(np.float64) + np.where(np.isinf(g), 2.0**128, g.astype(np.float64))) / 2
    sub = np.arange(0, 40, dtype=np.uint32).view(np.float32).astype(np.float64)  # zero and subnormals
    tiny = np.array([2.0**-149, 2.0**-150, 3 * 2.0**-151, 2.0**-151, 1e-300, 5e-324, 2.0**-126, 2.0**-126 - 2.0**-150])
    big = np.array([FLT_MAX, 2.0**128 - 2.0**103, np.nextafter(2.0**128 - 2.0**103, 0), 2.0**128, 3.5e38, 1e39, 1e300, np.finfo(np.float64).max])
    special = np.array([0.0, 1.0, 1.5, 0.1, 2.5, 1.0 + 2.0**-23, 1.0 + 2.0**-24, 1.0 + 3 * 2.0**-24, 16777217.0, np.inf, -np.inf])
    rand64 = rng.normal(size=5000) * 10.0 ** rng.integers(-40, 40, size=5000)
    t = np.concatenate([f.astype(np.float64), mids, sub, tiny, big, special, rand64])
    return np.concatenate([t, -t])


def _probes(t: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inputs around each threshold and its bound, in float64 and on float32's grid (n, k)."""
    with np.errstate(over="ignore"):
        return _probe_columns(t, b)


def _probe_columns(t: np.ndarray, b: np.ndarray) -> np.ndarray:
    cols = []
    for base in (b, t):
        x = base
        up, down = base, base
        cols.append(x)
        for _ in range(3):
            up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
            cols += [up, down]
    f = _f32(t)
    f_up, f_down = np.nextafter(f, F32_INF), np.nextafter(f, -F32_INF)
    cols += [f.astype(np.float64), f_up.astype(np.float64), f_down.astype(np.float64)]
    n = len(t)
    for v in (0.0, -0.0, 1e300, -1e300, np.inf, -np.inf, FLT_MAX, -FLT_MAX, 2.0**-150, -(2.0**-150)):
        cols.append(np.full(n, v))
    return np.column_stack(cols)


def test_bound_is_the_largest_value_that_rounds_under_the_threshold():
    # float32 rounding is monotonic, so these two facts pin x <= B <=> float32(x) <= t for all x
    t = _thresholds()
    b = float32_le_bounds(t)
    assert (_f32(b) <= t).all()
    finite = ~np.isposinf(b)
    assert (_f32(np.nextafter(b[finite], np.inf)) > t[finite]).all()
    assert (np.isposinf(b) == np.isposinf(t)).all()


def test_bound_agrees_with_the_float32_cast_on_every_probe():
    t = _thresholds()
    b = float32_le_bounds(t)
    x = _probes(t, b)
    want = _f32(x) <= t[:, None]
    got = x <= b[:, None]
    bad = np.argwhere(got != want)
    assert not len(bad), f"{len(bad)} disagreements, e.g. t={t[bad[0][0]]!r} x={x[tuple(bad[0])]!r}"


@pytest.mark.parametrize(
    "t, bound",
    [
        (1.5, 1.5 + 2.0**-24),  # float32 exactly, even mantissa: the midpoint above rounds down to it
        (1.0 + 2.0**-23, np.nextafter(1.0 + 3 * 2.0**-24, 0)),  # odd mantissa: the midpoint rounds up, away
        (1.0 + 2.0**-24, 1.0 + 2.0**-24),  # a float32 midpoint: float32(t) ties to 1.0 (even)
        (1.0 + 3 * 2.0**-24, 1.0 + 3 * 2.0**-24 - 2.0**-52),  # midpoint above an odd float32: ties go up, so stop one ulp short
        (0.1, 0.09999999776482582),  # float32(0.1) rounds up past 0.1, so the bound is below 0.1
        (0.0, 2.0**-150),
        (-0.0, 2.0**-150),
        (-(2.0**-151), np.nextafter(-(2.0**-150), -1)),  # rounds to -0.0, which is above t; the float32 below is odd
        (FLT_MAX, np.nextafter(2.0**128 - 2.0**103, 0)),  # past here float32 overflows to inf
        (1e300, np.nextafter(2.0**128 - 2.0**103, 0)),
        (np.inf, np.inf),  # scikit-learn's "all non-missing values go left" split
        (-np.inf, -(2.0**128 - 2.0**103)),  # only values that round to -inf
    ],
)
def test_bound_by_hand(t, bound):
    assert float32_le_bound(t) == bound
    assert float32_le_bounds([t])[0] == bound


def test_bound_refuses_nan():
    with pytest.raises(ValueError):
        float32_le_bounds([1.0, np.nan])


# ------------------------------------------------------------------ structure

X4 = np.array([[0.0], [1.0], [2.0], [3.0]])


def _tree(feature, threshold, left, right, missing_left, value):
    return ir.Tree(tuple(feature), tuple(threshold), tuple(left), tuple(right), tuple(missing_left), tuple(tuple(v) for v in value))


def test_regressor_structure():
    est = DecisionTreeRegressor(random_state=0).fit(X4, [1.0, 1.0, 3.0, 7.0])
    m = compile_model(est)
    # best split 2.5 (left {1,1,3}), then 1.5; with no NaN in training, NaN goes to the larger child
    tree = _tree(
        feature=(0, 0, -1, -1, -1),
        threshold=(2.5 + 2.0**-23, 1.5 + 2.0**-24, 0.0, 0.0, 0.0),
        left=(1, 2, -1, -1, -1),
        right=(4, 3, -1, -1, -1),
        missing_left=(True, True, False, False, False),
        value=((0.0,), (0.0,), (1.0,), (3.0,), (7.0,)),
    )
    ens = ir.TreeEnsemble((ir.Feature("x0"),), (tree,), 1, (0.0,))
    assert m.output("predict") == ir.Index(ens, 0)
    assert m.output_kinds == ("predict",)


def test_classifier_structure_text_labels():
    est = DecisionTreeClassifier(random_state=0).fit(np.c_[X4, [5.0, 5.0, 5.0, 5.0]], ["b", "b", "a", "a"])
    m = compile_model(est)
    tree = _tree(
        feature=(0, -1, -1),
        threshold=(1.5 + 2.0**-24, 0.0, 0.0),
        left=(1, -1, -1),
        right=(2, -1, -1),
        missing_left=(False, False, False),
        value=((0.0, 0.0), (0.0, 1.0), (1.0, 0.0)),
    )
    # the constant column x1 is never split on, so it is not an input of the ensemble
    ens = ir.TreeEnsemble((ir.Feature("x0"),), (tree,), 2, (0.0, 0.0))
    proba = (ir.Index(ens, 0), ir.Index(ens, 1))
    assert m.output("proba") == ir.Vector(proba)
    assert m.output("predict") == ir.ArgMax(proba, ("a", "b"))
    assert m.classes == ("a", "b")


def test_model_without_nan_rule_guards_each_output_on_the_inputs_it_uses():
    est = ExtraTreeClassifier(splitter="best", random_state=0).fit(np.c_[X4, [5.0, 5.0, 5.0, 5.0]], [3, 3, 1, 1])
    m = compile_model(est)
    missing_x0 = ir.IsMissing(ir.Feature("x0"))
    predict = m.output("predict")
    assert isinstance(predict, ir.Case) and predict.whens == ((missing_x0, ir.Const(None, ir.FLOAT)),)
    assert isinstance(predict.default, ir.ArgMax) and predict.default.labels == (1.0, 3.0)
    for item in m.output("proba").items:
        assert isinstance(item, ir.Case) and item.whens[0][0] == missing_x0
    cols = {"x0": np.array([np.nan, 0.0, 3.0]), "x1": np.array([1.0, np.nan, np.nan])}
    assert_close(evaluate(predict, cols), np.array([np.nan, 3.0, 1.0]))
    with pytest.raises(ValueError, match="no rule for missing values"):
        evaluate(compile_model(est, on_missing="error").output("predict"), cols)


@pytest.mark.parametrize("est", [DecisionTreeRegressor(), DecisionTreeClassifier(), RandomForestRegressor(n_estimators=2)])
def test_multi_output_is_refused(est):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    Y = (X[:, :2] > 0).astype(int)
    est.fit(X, Y)
    with pytest.raises(UnsupportedModelError, match=f"{type(est).__name__}.*multi-output"):
        compile_model(est)


# ------------------------------------------------------------------ semantics beyond what sklearn accepts


def _route_by_hand(tree, x: np.ndarray) -> int:
    """Leaf of one row by scikit-learn's rule, casting to float32 without its range check."""
    n = 0
    while tree.children_left[n] >= 0:
        v = _f32(x[tree.feature[n]])
        if np.isnan(v):
            go_left = bool(tree.missing_go_to_left[n])
        else:
            go_left = bool(v <= tree.threshold[n])
        n = tree.children_left[n] if go_left else tree.children_right[n]
    return n


def _nan_separating_tree():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3)) * 100
    X[:100, 0] = np.nan
    y = np.where(np.isnan(X[:, 0]), 10.0, X[:, 1])
    return DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, y), X


def test_huge_values_follow_float32_infinity_through_the_tree():
    est, X = _nan_separating_tree()
    assert np.isposinf(est.tree_.threshold).any(), "the test needs a split whose threshold is +inf"
    rows = []
    for j in range(3):
        for v in (1e300, -1e300, np.inf, -np.inf, 3.5e38, -3.5e38, FLT_MAX, np.nan):
            for base in X[[0, 150, 299]]:
                r = base.copy()
                r[j] = v
                rows.append(r)
    rows = np.array(rows)
    m = compile_model(est)
    got = evaluate(m.output("predict"), columns_from_matrix(m, rows))
    by_hand = np.array([est.tree_.value[_route_by_hand(est.tree_, r), 0, 0] for r in rows])
    np.testing.assert_array_equal(got, by_hand)
    # the stand-in the zoo uses: scikit-learn itself on the row with +-FLT_MAX
    want, refused = sklearn_reference(est, rows, "predict")
    np.testing.assert_array_equal(got, want[:, 0])
    assert refused.sum() == 3 * 3 * 6  # every row with a value beyond float32 (not NaN: this tree routes it)
    # and scikit-learn refuses these rows, so there is no answer of its own to compare with
    with pytest.raises(ValueError, match="too large for dtype\\('float32'\\)"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.predict(rows)


def test_rows_on_every_threshold_route_like_sklearn():
    est, X = _nan_separating_tree()
    t = est.tree_
    rows = []
    for n in np.flatnonzero(t.children_left >= 0):
        f = np.float32(t.threshold[n])
        if not np.isfinite(f):
            continue
        b = float32_le_bound(t.threshold[n])
        for v in (f, np.nextafter(f, -F32_INF), np.nextafter(f, F32_INF), b, np.nextafter(b, np.inf), t.threshold[n]):
            r = X[200].copy()
            r[t.feature[n]] = v
            rows.append(r)
    rows = np.array(rows)
    m = compile_model(est)
    got = evaluate(m.output("predict"), columns_from_matrix(m, rows))
    np.testing.assert_array_equal(got, est.predict(rows))


# ------------------------------------------------------------------ zoo parity

SINGLE_TREES = {"DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"}
TREE_CASES = [c for c in CASES if c.id.split("-")[0] in SINGLE_TREES]


@pytest.mark.parametrize("case", TREE_CASES, ids=[c.id for c in TREE_CASES])
def test_zoo_case_matches_sklearn(case):
    check_ir_parity(case)


def test_zoo_covers_every_tree_estimator():
    assert {c.id.split("-")[0] for c in TREE_CASES} == SINGLE_TREES


def test_extra_tree_regressor_random_splitter_routes_nan():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4))
    X[rng.random(X.shape) < 0.2] = np.nan
    est = ExtraTreeRegressor(random_state=0).fit(X, rng.normal(size=200))
    m = compile_model(est)
    got = evaluate(m.output("predict"), columns_from_matrix(m, X))
    np.testing.assert_array_equal(got, est.predict(X))
