"""Forests, GradientBoosting, HistGradientBoosting: model -> IR structure, tie rules,
bitwise sums, refusals, and IR parity with scikit-learn on the zoo's hard rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
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
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from indb import ir
from indb.compilers import compile_model
from indb.compilers.tree import allows_nan
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import assert_close
from tests.zoo.tree import CASES, check_ir_parity

X4 = np.array([[0.0], [1.0], [2.0], [3.0]])
B15 = 1.5 + 2.0**-24  # float32_le_bound(1.5)
B25 = 2.5 + 2.0**-23  # float32_le_bound(2.5)


def _eval(m: ir.Model, kind: str, X) -> np.ndarray:
    return evaluate(m.output(kind), columns_from_matrix(m, X))


def _tree(feature, threshold, left, right, missing_left, value, categories=()):
    return ir.Tree(tuple(feature), tuple(threshold), tuple(left), tuple(right), tuple(missing_left), tuple(tuple(v) for v in value), tuple(categories))


# ------------------------------------------------------------------ structure


def test_forest_classifier_structure():
    est = RandomForestClassifier(n_estimators=2, bootstrap=False, random_state=0).fit(X4, ["b", "b", "a", "a"])
    m = compile_model(est)
    tree = _tree((0, -1, -1), (B15, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (False, False, False), ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0)))
    ens = ir.TreeEnsemble((ir.Feature("x0"),), (tree, tree), 2, (0.0, 0.0))
    proba = (ir.div(ir.Index(ens, 0), ir.const(2.0)), ir.div(ir.Index(ens, 1), ir.const(2.0)))
    assert m.output("proba") == ir.Vector(proba)
    # argmax over the divided means, as scikit-learn does
    assert m.output("predict") == ir.ArgMax(proba, ("a", "b"))


def test_gradient_boosting_regressor_structure():
    est = GradientBoostingRegressor(n_estimators=2, max_depth=1, learning_rate=0.5, random_state=0).fit(X4, [1.0, 1.0, 3.0, 7.0])
    m = compile_model(est)
    first, second = (e.tree_ for e in est.estimators_[:, 0])
    # stage 1 splits residuals (-2, -2, 0, 4) at 2.5; stage 2 splits what is left at 1.5
    trees = (
        _tree((0, -1, -1), (B25, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (True, False, False), ((0.0,), (0.5 * first.value[1, 0, 0],), (0.5 * first.value[2, 0, 0],))),
        _tree((0, -1, -1), (B15, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (False, False, False), ((0.0,), (0.5 * second.value[1, 0, 0],), (0.5 * second.value[2, 0, 0],))),
    )
    assert first.value[1, 0, 0] == pytest.approx(-4 / 3) and first.value[2, 0, 0] == 4.0
    ens = ir.TreeEnsemble((ir.Feature("x0"),), trees, 1, (3.0,))  # the mean of y
    missing = ir.IsMissing(ir.Feature("x0"))
    assert m.output("predict") == ir.Case(((missing, ir.Const(None, ir.FLOAT)),), ir.Index(ens, 0))


def test_gradient_boosting_multiclass_one_ensemble_one_output_per_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = np.array(["x", "y", "z"])[np.argmax(X, axis=1)]
    est = GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0).fit(X, y)
    m = compile_model(est)
    raws = m.output("decision").items
    ens = raws[0].default.vector
    assert [r.default for r in raws] == [ir.Index(ens, k) for k in range(3)]
    assert ens.n_outputs == 3 and len(ens.trees) == 12
    for i, tree in enumerate(ens.trees):  # stage by stage, class k's tree feeds only output k
        leaves = [v for f, v in zip(tree.feature, tree.value) if f < 0]
        assert all(v[j] == 0.0 for v in leaves for j in range(3) if j != i % 3)


def test_hist_gradient_boosting_categorical_split_keeps_sklearn_sides():
    colors = ["red"] * 20 + ["blue"] * 20 + ["green"] * 20 + [None] * 20

    def fit(y_missing: float) -> HistGradientBoostingRegressor:
        y = [5.0] * 20 + [1.0] * 40 + [y_missing] * 20
        X = pd.DataFrame({"color": pd.Categorical(colors)})
        return HistGradientBoostingRegressor(max_iter=1, max_depth=2, min_samples_leaf=5, learning_rate=1.0).fit(X, y)

    color = ir.Feature("color", ir.TEXT)
    # missing values go right in scikit-learn: the set is the bitset's ("red")
    est = fit(1.0)
    assert not est._predictors[0][0].nodes["missing_go_to_left"][0]
    tree = _tree((0, -1, -1), (0.0, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (False, False, False), ((0.0,), (3.0,), (-1.0,)), (("red",), None, None))
    assert compile_model(est).output("predict") == ir.Index(ir.TreeEnsemble((color,), (tree,), 1, (2.0,)), 0)
    # missing values go left: children swapped, the set is the other known categories, so
    # NaN and unseen categories (outside the set) reach scikit-learn's left child
    est = fit(5.0)
    assert est._predictors[0][0].nodes["missing_go_to_left"][0]
    tree = _tree((0, -1, -1), (0.0, 0.0, 0.0), (2, -1, -1), (1, -1, -1), (False, False, False), ((0.0,), (2.0,), (-2.0,)), (("blue", "green"), None, None))
    m = compile_model(est)
    assert m.output("predict") == ir.Index(ir.TreeEnsemble((color,), (tree,), 1, (3.0,)), 0)
    assert m.features == (ir.FeatureSpec("color", ir.TEXT),)
    rows = pd.DataFrame({"color": pd.Categorical(["red", "blue", "green", None, "pink"])})
    np.testing.assert_array_equal(_eval(m, "predict", rows), est.predict(rows))
    np.testing.assert_array_equal(est.predict(rows), [5.0, 1.0, 1.0, 5.0, 5.0])


# ------------------------------------------------------------------ tie rules and exact sums


def test_forest_tie_picks_the_first_class():
    est = RandomForestClassifier(n_estimators=3, bootstrap=False, random_state=0).fit([[0.0], [0.0]], ["b", "a"])
    rows = np.array([[0.0], [5.0]])
    np.testing.assert_array_equal(est.predict_proba(rows), [[0.5, 0.5]] * 2)
    assert list(_eval(compile_model(est), "predict", rows)) == ["a", "a"] == list(est.predict(rows))


def _zero_gb(positive_rule_est):
    for tree in positive_rule_est.estimators_.ravel():
        tree.tree_.value[:] = 0.0
    return positive_rule_est


def test_gradient_boosting_binary_raw_zero_is_the_positive_class():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    est = GradientBoostingClassifier(n_estimators=3, init="zero", random_state=0).fit(X, np.where(X[:, 0] > 0, "pos", "neg"))
    _zero_gb(est)
    np.testing.assert_array_equal(est.decision_function(X[:3]), 0.0)
    assert list(est.predict(X[:3])) == ["pos"] * 3  # raw >= 0
    assert list(_eval(compile_model(est), "predict", X[:3])) == ["pos"] * 3


def test_hist_gradient_boosting_binary_raw_zero_is_the_negative_class():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2))
    est = HistGradientBoostingClassifier(max_iter=3).fit(X, np.where(X[:, 0] > 0, "pos", "neg"))
    est._baseline_prediction[:] = 0.0
    for (pred,) in est._predictors:
        pred.nodes["value"] = 0.0
    np.testing.assert_array_equal(est.decision_function(X[:3]), 0.0)
    assert list(est.predict(X[:3])) == ["neg"] * 3  # raw > 0 only
    assert list(_eval(compile_model(est), "predict", X[:3])) == ["neg"] * 3


def _bitwise_cases():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 12)) * 7
    y3 = np.array(["p", "q", "r"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 3)]
    yr = X[:, 0] * 3 + np.sin(X[:, 2]) + rng.normal(size=500)
    return X, [
        (RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0).fit(X, yr), "predict"),
        (ExtraTreesClassifier(n_estimators=30, max_depth=6, random_state=0).fit(X, y3), "proba"),
        (GradientBoostingRegressor(n_estimators=40, random_state=0).fit(X, yr), "predict"),
        (GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y3), "decision"),
        (HistGradientBoostingClassifier(max_iter=20).fit(X, y3), "decision"),
        (HistGradientBoostingRegressor(max_iter=30).fit(X, yr), "predict"),
    ]


def test_sums_are_bitwise_identical_to_sklearn():
    # the same additions in the same order from the same start give the same bits,
    # which is what makes argmax ties come out as scikit-learn's
    X, cases = _bitwise_cases()
    methods = {"predict": "predict", "proba": "predict_proba", "decision": "decision_function"}
    for est, kind in cases:
        got = _eval(compile_model(est), kind, X)
        want = getattr(est, methods[kind])(X)
        assert np.array_equal(got, want), f"{type(est).__name__}.{kind}: max diff {np.max(np.abs(got - want))}"


# ------------------------------------------------------------------ missing values and options


ALL_ESTIMATORS = [
    DecisionTreeClassifier(max_depth=3),
    DecisionTreeRegressor(max_depth=3),
    ExtraTreeClassifier(max_depth=3),
    ExtraTreeClassifier(max_depth=3, splitter="best"),
    ExtraTreeRegressor(max_depth=3),
    ExtraTreeRegressor(max_depth=3, splitter="best"),
    RandomForestClassifier(n_estimators=3, max_depth=3),
    RandomForestRegressor(n_estimators=3, max_depth=3, criterion="poisson"),
    ExtraTreesClassifier(n_estimators=3, max_depth=3),
    ExtraTreesRegressor(n_estimators=3, max_depth=3),
    GradientBoostingClassifier(n_estimators=3),
    GradientBoostingRegressor(n_estimators=3),
    HistGradientBoostingClassifier(max_iter=3),
    HistGradientBoostingRegressor(max_iter=3),
]


@pytest.mark.parametrize("est", ALL_ESTIMATORS, ids=lambda e: repr(e))
def test_nan_rows_follow_sklearn_or_are_missing(est):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 3)) + 2
    y = (X[:, 0] + X[:, 1] > 4).astype(int)
    est.fit(X, y)
    rows = X[:6].copy()
    rows[[0, 3], 0] = np.nan
    rows[[1, 4], 1] = np.nan
    m = compile_model(est)
    got = _eval(m, "predict", rows)
    try:
        want = est.predict(rows)
    except ValueError:
        want = None
    # the compiler's choice follows the tag; the tag says what predict really does
    assert allows_nan(est) == (want is not None)
    if want is not None:
        assert_close(got, want, what="NaN routed")
    else:
        used = {f.name for f in ir.walk(m.output("predict")) if isinstance(f, ir.Feature)}
        for i in range(6):
            row_missing = any(np.isnan(rows[i, j]) and f"x{j}" in used for j in range(3))
            assert np.isnan(got[i]) == row_missing, f"row {i}"
        clean = ~np.isnan(got)
        assert_close(got[clean], est.predict(np.nan_to_num(rows[clean])))


def test_gradient_boosting_custom_init_is_refused():
    X = np.random.default_rng(5).normal(size=(40, 2))
    est = GradientBoostingRegressor(n_estimators=2, init=LinearRegression()).fit(X, X[:, 0])
    with pytest.raises(UnsupportedModelError, match=r"GradientBoostingRegressor\(init=LinearRegression.*custom init"):
        compile_model(est)
    est = GradientBoostingClassifier(n_estimators=2, init=DummyClassifier(strategy="stratified")).fit(X, X[:, 0] > 0)
    with pytest.raises(UnsupportedModelError, match="custom init"):
        compile_model(est)


@pytest.mark.parametrize(
    "est",
    [
        GradientBoostingClassifier(n_estimators=5, init=DummyClassifier(strategy="most_frequent")),
        GradientBoostingClassifier(n_estimators=5, init=DummyClassifier(strategy="uniform")),
        GradientBoostingRegressor(n_estimators=5, init=DummyRegressor(strategy="median")),
        GradientBoostingRegressor(n_estimators=5, loss="quantile", alpha=0.8),
    ],
    ids=repr,
)
def test_gradient_boosting_constant_init(est):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(80, 3))
    y = np.array([0, 1, 2])[np.argmax(X, axis=1)] if isinstance(est, GradientBoostingClassifier) else X[:, 0] ** 2
    est.fit(X, y)
    m = compile_model(est)
    for kind in m.output_kinds:
        want = {"predict": est.predict, "proba": getattr(est, "predict_proba", None), "decision": getattr(est, "decision_function", None)}[kind](X)
        assert_close(_eval(m, kind, X), want, what=kind)


def test_unsupported_hist_gradient_boosting_is_named():
    X = np.random.default_rng(7).normal(size=(40, 2))
    est = HistGradientBoostingRegressor(max_iter=2).fit(X, X[:, 0])
    est._loss.link = object()  # a link indb does not know
    with pytest.raises(UnsupportedModelError, match="HistGradientBoostingRegressor.*link"):
        compile_model(est)


def test_ir_survives_its_json_round_trip():
    for case in CASES:
        if "large" in case.tags:
            continue
        m = compile_model(case.fitted()[0])
        again = ir.model_from_json(ir.model_to_json(m))
        assert again == m, case.id


# ------------------------------------------------------------------ zoo parity

ENSEMBLE_NAMES = {
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
}
ENSEMBLE_CASES = [c for c in CASES if c.id.split("-")[0] in ENSEMBLE_NAMES]


SMALL = [c for c in ENSEMBLE_CASES if "large" not in c.tags]
LARGE = [c for c in ENSEMBLE_CASES if "large" in c.tags]


@pytest.mark.parametrize("case", SMALL, ids=[c.id for c in SMALL])
def test_zoo_case_matches_sklearn(case):
    check_ir_parity(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", LARGE, ids=[c.id for c in LARGE])
def test_large_zoo_case_matches_sklearn(case, capsys):
    seconds = check_ir_parity(case)
    with capsys.disabled():
        print(f"\n{case.id}: model -> IR in {seconds:.3f} s")


def test_zoo_covers_every_ensemble_estimator_and_output():
    assert {c.id.split("-")[0] for c in SMALL} == ENSEMBLE_NAMES
    for name in ("GradientBoostingClassifier", "HistGradientBoostingClassifier"):
        assert any(c.id.startswith(name) and set(c.outputs) == {"predict", "proba", "decision"} for c in SMALL)
    hgb = [c for c in SMALL if c.id.startswith("HistGradientBoosting")]
    assert any("text" in c.tags for c in hgb)


def test_zoo_hist_gradient_boosting_rows_are_hard():
    case = next(c for c in SMALL if c.id == "HistGradientBoostingClassifier-multiclass-categorical")
    est, X = case.fitted()
    city = X["city"].astype(object)
    assert len(est._preprocessor.named_transformers_["encoder"].categories_[0]) >= 10 + 1  # + NaN
    assert (city == "zz_unseen").any() and city.isna().any()
    assert X.select_dtypes("number").isna().any().all()
    assert np.isinf(X.select_dtypes("number").to_numpy()).any()
    nodes = [p.nodes for it in est._predictors for p in it]
    assert any((n["is_categorical"] & n["missing_go_to_left"].astype(bool)).any() for n in nodes)
    assert any((n["is_categorical"] & ~n["missing_go_to_left"].astype(bool) & ~n["is_leaf"].astype(bool)).any() for n in nodes)
