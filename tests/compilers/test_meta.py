"""Meta-estimators: calibration, voting, stacking, FrozenEstimator -> IR, parity, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from indb import ir
from indb.compilers import compile_model
from indb.compilers.meta import _average, _isotonic, convert_calibrated_classifier
from indb.compilers.converters import Context
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import evaluate
from tests.compilers.parity import assert_close, check_docstring_examples, check_parity
from tests.sql_engines import is_missing, mismatches
from tests.reference import evaluator_output, reference
from tests.zoo import meta as zoo
from tests.zoo.linear import _classes, _data, _with_edges
from tests.zoo.preprocessing import _fit



def parity_where_accepted(est, X, kinds):
    """The IR equals scikit-learn on every row scikit-learn scores; rows it refuses for NaN are missing.

    For models with tree members, scikit-learn also refuses +-1e300 (beyond float32);
    those rows follow indb's documented tree rule and are not compared here.
    """
    m = compile_model(est)
    nan_rows = np.isnan(np.asarray(X, dtype=float)).any(axis=1)
    for kind in kinds:
        ref = reference(est, m, X, kind)
        got = evaluator_output(m, X, kind)
        for j, (want, col) in enumerate(zip(ref.columns, got)):
            bad = mismatches(want, col, 1e-9, 1e-12)
            assert not bad, f"{type(est).__name__}.{kind}[{j}]: {bad[:3]}"
            refused_nan = ref.rejected & nan_rows
            assert all(is_missing(v) for v, r in zip(col, refused_nan) if r), f"{kind}[{j}]: a row scikit-learn refuses is scored"
        assert (~ref.rejected).sum() > len(X) // 2
    return m


# ------------------------------------------------------------------ calibration


def test_sigmoid_calibration_ir():
    X, y = _data(200, 3, 190)
    est = _fit(CalibratedClassifierCV(LogisticRegression(), cv=2, ensemble=False), X, _classes(y, ["n", "y"]))
    xs = [ir.Feature(f"x{i}") for i in range(3)]
    res = convert_calibrated_classifier(est, xs, Context([f"x{i}" for i in range(3)]))
    cal = est.calibrated_classifiers_[0].calibrators[0]
    decision = compile_model(est.calibrated_classifiers_[0].estimator).output("decision")
    p1 = ir.func("expit", ir.func("neg", ir.add(ir.mul(ir.const(float(cal.a_)), decision), ir.const(float(cal.b_)))))
    clamped = ir.Case(((ir.And((ir.Compare("<", ir.const(1.0), p1), ir.Compare("<=", p1, ir.const(1.0 + 1e-5)))), ir.const(1.0)),), p1)
    assert res.proba[1] == ir.div(clamped, ir.const(1.0))  # the mean over one calibrated classifier
    assert res.proba[0].left.default == ir.sub(ir.const(1.0), p1)
    # LogisticRegression refuses NaN: every output is missing on a row with a missing input
    # (where the compiled base has no answer)
    assert [c for c, _ in res.refuse] == [ir.And((ir.any_missing(xs), ir.IsMissing(decision)))]


def test_isotonic_is_numpy_interp_after_clipping():
    rng = np.random.default_rng(0)
    t = np.sort(rng.normal(size=200))
    iso = IsotonicRegression(out_of_bounds="clip").fit(t, (t + rng.normal(size=200) > 0).astype(float))
    x = ir.Feature("t")
    e = _isotonic(None, iso, x, Context(["t"]))
    rows = np.concatenate([t, iso.X_thresholds_, np.nextafter(iso.X_thresholds_, np.inf), [-1e300, 1e300, -50.0, 50.0]])
    got = evaluate(e, {"t": rows})
    assert np.array_equal(got, iso.predict(rows))  # bit for bit, including exactly on thresholds
    assert np.isnan(evaluate(e, {"t": np.array([np.nan])})).all()


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize(
    "base",
    [LogisticRegression(max_iter=1000), GaussianNB(), LinearSVC(), make_pipeline(StandardScaler(), RidgeClassifier())],
    ids=["logistic", "gaussian_nb", "linear_svc", "scaled_ridge"],
)
def test_calibration_parity_20_features(method, base):
    X, y = _data(400, 20, 191)
    est = _fit(CalibratedClassifierCV(base, method=method, cv=3), X, _classes(y, ["lo", "mid", "hi"]))
    check_parity(est, _with_edges(X, 100), ("predict", "proba"))


@pytest.mark.parametrize("ensemble", [True, False])
def test_calibration_binary_parity(ensemble):
    X, y = _data(300, 6, 192)
    est = _fit(CalibratedClassifierCV(GaussianNB(), method="isotonic", cv=3, ensemble=ensemble), X, _classes(y, [0, 1]))
    check_parity(est, _with_edges(X), ("predict", "proba"))


def test_calibration_over_trees_and_frozen_models():
    X, y = _data(300, 6, 193)
    labels = _classes(y, ["a", "b", "c"])
    tree = _fit(DecisionTreeClassifier(max_depth=4, random_state=0), X[:150], labels[:150])
    est = _fit(CalibratedClassifierCV(FrozenEstimator(tree), method="isotonic"), X[150:], labels[150:])
    parity_where_accepted(est, _with_edges(X), ("predict", "proba"))


# ------------------------------------------------------------------ voting


@pytest.mark.parametrize("weights", [None, [1.0, 3.0, 0.5]])
def test_soft_voting_parity(weights):
    X, y = _data(300, 20, 194)
    members = [("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB()), ("mlp", MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0))]
    est = _fit(VotingClassifier(members, voting="soft", weights=weights), X, _classes(y, ["n", "e", "s", "w"]))
    check_parity(est, _with_edges(X, 100), ("predict", "proba"))


@pytest.mark.parametrize("weights", [None, [2, 1, 1, 0]])
def test_hard_voting_parity(weights):
    X, y = _data(300, 8, 195)
    members = [("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB()), ("svc", SVC()), ("ridge", RidgeClassifier())]
    est = _fit(VotingClassifier(members, voting="hard", weights=weights), X, _classes(y, [10, 20, 30]))
    m = check_parity(est, _with_edges(X), ("predict",))
    assert "proba" not in m.output_kinds


def test_hard_voting_with_a_member_that_handles_nan_still_refuses_the_row():
    X, y = _data(300, 4, 196)
    X[::7, 0] = np.nan
    labels = _classes(y, ["a", "b", "c"])
    members = [("hgb", HistGradientBoostingClassifier(max_iter=5)), ("hgb2", HistGradientBoostingClassifier(max_iter=3, max_depth=2)), ("lr", make_pipeline(StandardScaler(), LogisticRegression()))]
    Xfit = np.nan_to_num(X)
    est = _fit(VotingClassifier(members, voting="hard"), Xfit, labels)
    m = compile_model(est)
    row = {"x0": np.array([np.nan]), "x1": np.array([0.0]), "x2": np.array([0.0]), "x3": np.array([0.0])}
    # the logistic member refuses NaN, so scikit-learn raises; two votes would otherwise decide
    assert evaluate(m.output("predict"), row).tolist() == [None]


@pytest.mark.parametrize("second", ["imputing", "refusing"])
def test_rows_with_missing_inputs_follow_the_members(second):
    from sklearn.impute import SimpleImputer

    X, y = _data(300, 5, 208)
    labels = _classes(y, ["a", "b", "c"])
    other = make_pipeline(SimpleImputer(), GaussianNB()) if second == "imputing" else GaussianNB()
    est = _fit(VotingClassifier([("lr", make_pipeline(SimpleImputer(), LogisticRegression())), ("nb", other)], voting="soft"), X, labels)
    m = parity_where_accepted(est, _with_edges(X), ("predict", "proba"))
    row = {f"x{i}": np.array([np.nan if i == 2 else 0.0]) for i in range(5)}
    got = evaluate(m.output("predict"), row)[0]
    # pipelines report allow_nan=False whatever their first step: the compiled members decide
    assert (got is None) == (second == "refusing")


def test_voting_regressor_parity_ten_weighted_members():
    X, y = _data(300, 20, 197)
    members = [(f"r{i}", Ridge(alpha=0.1 * (i + 1))) for i in range(10)]
    est = _fit(VotingRegressor(members, weights=list(np.linspace(0.2, 3.0, 10))), X, y)
    check_parity(est, _with_edges(X, 100), ("predict",))
    # the average itself rounds exactly as numpy.average over (rows, members), weights' sum included
    P = np.random.default_rng(1).normal(size=(200, 10)) * np.exp(np.random.default_rng(2).normal(size=(200, 10)) * 5)
    avg = _average(est, [ir.Feature(f"p{i}") for i in range(10)], [float(w) for w in est.weights], (1, 10), 1)
    got = evaluate(avg, {f"p{i}": P[:, i] for i in range(10)})
    # VotingRegressor._predict stacks the members' columns and transposes: members along axis 1
    stacked = np.asarray([P[:, i] for i in range(10)]).T
    assert np.array_equal(got, np.average(stacked, axis=1, weights=est.weights))


def test_voting_regressor_with_a_tree():
    X, y = _data(300, 6, 198)
    members = [("ols", LinearRegression()), ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))]
    parity_where_accepted(_fit(VotingRegressor(members), X, y), _with_edges(X), ("predict",))


# ------------------------------------------------------------------ stacking


@pytest.mark.parametrize("stack_method", ["auto", "predict_proba", "decision_function", "predict"])
def test_stacking_classifier_parity_text_labels(stack_method):
    X, y = _data(300, 20, 199)
    members = [("lr", LogisticRegression(max_iter=1000)), ("svc", SVC(kernel="linear")), ("ridge", RidgeClassifier())]
    if stack_method == "predict_proba":
        members = [("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB())]
    est = _fit(StackingClassifier(members, final_estimator=LogisticRegression(max_iter=1000), stack_method=stack_method, cv=3), X, _classes(y, ["r", "g", "b"]))
    check_parity(est, _with_edges(X, 100), ("predict", "proba", "decision"))


def test_stacking_binary_drops_the_first_probability_and_passes_inputs_through():
    X, y = _data(300, 5, 200)
    est = _fit(StackingClassifier([("nb", GaussianNB()), ("lr", LogisticRegression())], passthrough=True, cv=3), X, _classes(y, [0, 1]))
    assert est.final_estimator_.n_features_in_ == 2 + 5
    check_parity(est, _with_edges(X), ("predict", "proba", "decision"))


def test_stacking_with_a_nan_routing_final_estimator_refuses_member_less_rows():
    X, y = _data(300, 5, 201)
    est = _fit(StackingClassifier([("lr", LogisticRegression())], final_estimator=DecisionTreeClassifier(max_depth=3, random_state=0), cv=3), X, _classes(y, ["a", "b", "c"]))
    m = parity_where_accepted(est, _with_edges(X), ("predict", "proba"))
    assert evaluate(m.output("predict"), {f"x{i}": np.array([np.nan if i == 0 else 0.0]) for i in range(5)}).tolist() == [None]


def test_stacking_regressor_parity():
    X, y = _data(300, 20, 202)
    members = [("ols", LinearRegression()), ("mlp", make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(3,), max_iter=20, random_state=0)))]
    members = [("ols", LinearRegression()), ("ridge", Ridge(alpha=10.0))]
    est = _fit(StackingRegressor(members, final_estimator=Ridge(), passthrough=True, cv=3), X, y)
    check_parity(est, _with_edges(X, 100), ("predict",))


# ------------------------------------------------------------------ frozen


def test_frozen_estimator_is_its_model():
    X, y = _data(100, 3, 203)
    inner = _fit(LogisticRegression(), X, _classes(y, ["a", "b", "c"]))
    assert compile_model(FrozenEstimator(inner)).outputs == compile_model(inner).outputs


# ------------------------------------------------------------------ refusals


def test_temperature_calibration_is_refused():
    X, y = _data(100, 3, 204)
    est = _fit(CalibratedClassifierCV(LogisticRegression(), method="temperature", cv=2), X, _classes(y, ["a", "b", "c"]))
    with pytest.raises(UnsupportedModelError, match=r"CalibratedClassifierCV\(method='temperature'\) is not supported"):
        compile_model(est)


def test_negative_voting_weights_are_refused():
    X, y = _data(100, 3, 205)
    est = _fit(VotingRegressor([("a", LinearRegression()), ("b", Ridge())], weights=[2.0, -1.0]), X, y)
    with pytest.raises(UnsupportedModelError, match="VotingRegressor with negative weights"):
        compile_model(est)


def test_member_output_that_cannot_be_compiled_is_named():
    X, y = _data(100, 3, 206)
    est = _fit(VotingClassifier([("svc", SVC(probability=True, random_state=0)), ("lr", LogisticRegression())], voting="soft"), X, _classes(y, ["a", "b"]))
    with pytest.raises(UnsupportedModelError, match=r"VotingClassifier: member SVC.predict_proba is not supported by indb"):
        compile_model(est)


def test_multilabel_stacking_is_refused():
    X, y = _data(150, 3, 207)
    Y = np.column_stack([y > 0, y > 1]).astype(int)
    est = _fit(StackingClassifier([("t", DecisionTreeClassifier(max_depth=2))], final_estimator=DecisionTreeClassifier(max_depth=2), cv=2), X, Y)
    with pytest.raises(UnsupportedModelError, match="StackingClassifier with multilabel targets"):
        compile_model(est)


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    est, X = case.fitted()
    parity_where_accepted(est, X, case.outputs)


def test_docstring_examples():
    from indb.compilers import meta as module

    check_docstring_examples(module, ignore_warnings=True)


def test_assert_close_is_strict_enough():
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0]), np.array([1.0 + 1e-8]))
