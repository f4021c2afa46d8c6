"""Linear models: model -> IR structure, IR parity with scikit-learn, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import (
    ElasticNet,
    ElasticNetCV,
    GammaRegressor,
    HuberRegressor,
    Lars,
    Lasso,
    LassoCV,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR

from indb import ir
from indb.compilers import compile_model
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import assert_close, check_docstring_examples, check_parity, check_zoo_case, expected, refused_rows
from tests.zoo import linear as zoo

x0, x1 = ir.Feature("x0"), ir.Feature("x1")


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _data(n=300, d=25, k=0):
    X, y = zoo._data(n, d, k)
    return X, y, zoo._with_edges(X)


# ------------------------------------------------------------------ structure


def test_linear_regression_ir_is_dot_product_then_intercept():
    est = LinearRegression().fit([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [1.0, 3.0, -1.0])
    m = compile_model(est)
    w0, w1 = (float(v) for v in est.coef_)
    want = ir.Sum((ir.BinOp("*", x0, ir.Const(w0)), ir.BinOp("*", x1, ir.Const(w1)), ir.Const(float(est.intercept_))))
    assert m.output("predict") == want
    assert m.output_kinds == ("predict",)
    assert m.features == (ir.FeatureSpec("x0"), ir.FeatureSpec("x1"))


def test_zero_weights_are_kept():
    est = Lasso(alpha=10.0).fit([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]], [0.0, 0.1, 0.2])
    assert np.all(est.coef_ == 0)
    z = compile_model(est).output("predict")
    assert [t.right.value for t in z.terms[:2]] == [0.0, 0.0]  # 0 * inf is NaN in the model too
    got = evaluate(z, {"x0": np.array([np.inf]), "x1": np.array([1.0])})
    assert np.isnan(got[0])  # numpy's X @ w gives NaN here too: np.array([[inf, 1.0]]) @ [0.0, 0.0] is nan


def test_glm_log_link_is_exp_of_linear_predictor():
    est = PoissonRegressor().fit([[0.0], [1.0], [2.0]], [1.0, 2.0, 4.0])
    z = ir.add(ir.mul(ir.Feature("x0"), ir.const(float(est.coef_[0]))), ir.const(float(est.intercept_)))
    assert compile_model(est).output("predict") == ir.func("exp", z)


def test_logistic_binary_ir():
    est = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], ["no", "no", "yes", "yes"])
    m = compile_model(est)
    z = ir.add(ir.mul(x0, ir.const(float(est.coef_[0, 0]))), ir.const(float(est.intercept_[0])))
    assert m.output("decision") == z
    assert m.output("predict") == ir.binary_label(z, ">", 0.0, "no", "yes")
    p = ir.func("expit", z)
    assert m.output("proba") == ir.vector([ir.sub(ir.const(1.0), p), p])
    assert m.classes == ("no", "yes")


def test_multiclass_predict_is_argmax_over_decisions():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 0.5], [0.5, 3.0], [2.5, 2.5]])
    est = RidgeClassifier().fit(X, [5, 7, 9, 7, 5, 9])
    m = compile_model(est)
    scores = [ir.linear([x0, x1], row, b) for row, b in zip(est.coef_, est.intercept_)]
    assert m.output("predict") == ir.ArgMax(tuple(scores), (5.0, 7.0, 9.0))
    assert m.output("decision") == ir.vector(scores)
    assert "proba" not in m.output_kinds


def test_on_missing_error_raises_for_every_output():
    est = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    m = compile_model(est, on_missing="error")
    with pytest.raises(ValueError, match="NULL or NaN"):
        evaluate(m.output("predict"), {"x0": np.array([0.5, np.nan])})
    assert evaluate(m.output("predict"), {"x0": np.array([0.5, 3.0])}).tolist() == est.predict([[0.5], [3.0]]).tolist()
    # one row, one rule: the probabilities and the decision raise too (issue 14.5)
    for kind in ("proba", "decision"):
        with pytest.raises(ValueError, match="NULL or NaN"):
            evaluate(m.output(kind), {"x0": np.array([np.nan])})
    # the default rule is unchanged: NaN in, NaN (NULL) out
    assert np.isnan(evaluate(compile_model(est).output("proba"), {"x0": np.array([np.nan])})).all()


# ------------------------------------------------------------------ parity

REGRESSORS = [
    LinearRegression(),
    Ridge(alpha=3.0),
    Lasso(alpha=0.05),
    LassoCV(cv=3),
    ElasticNet(alpha=0.05, l1_ratio=0.7),
    ElasticNetCV(cv=3, l1_ratio=[0.2, 0.8]),
    SGDRegressor(random_state=0, eta0=0.001),
    HuberRegressor(max_iter=1000),
    LinearSVR(random_state=0, max_iter=20000),
]


@pytest.mark.parametrize("est", REGRESSORS, ids=lambda e: type(e).__name__)
def test_regressor_parity(est):
    X, y, Xt = _data()
    _fit(est, X, y)
    check_parity(est, Xt)
    # the NaN rows are exactly the rows scikit-learn refuses, and they come back missing
    m = compile_model(est)
    got = evaluate(m.output("predict"), columns_from_matrix(m, Xt))
    refused = refused_rows(est, Xt, "predict")
    assert refused and np.isnan(got[refused]).all()
    assert not np.isnan(np.delete(got, refused)).any()


@pytest.mark.parametrize(
    "est",
    [PoissonRegressor(), GammaRegressor(alpha=0.1), TweedieRegressor(power=1.5), TweedieRegressor(power=3.0, link="log"), TweedieRegressor(power=0.0), TweedieRegressor(power=1.0, link="identity", alpha=0.0)],
    ids=lambda e: f"{type(e).__name__}-{getattr(e, 'power', '')}-{getattr(e, 'link', '')}",
)
def test_glm_parity(est):
    X, y, Xt = _data(d=8, k=1)
    target = np.exp(y / np.std(y)) if getattr(est, "link", "log") != "identity" else y - y.min() + 1.0
    _fit(est, X, target)
    check_parity(est, Xt)


CLASSIFIERS = [
    (LogisticRegression(max_iter=3000), ("predict", "proba", "decision")),
    (SGDClassifier(loss="hinge", random_state=0), ("predict", "decision")),
    (SGDClassifier(loss="log_loss", random_state=0), ("predict", "proba", "decision")),
    (SGDClassifier(loss="modified_huber", random_state=0), ("predict", "proba", "decision")),
    (RidgeClassifier(alpha=2.0), ("predict", "decision")),
    (LinearSVC(random_state=0, max_iter=20000), ("predict", "decision")),
]
LABELS = {
    "binary-text": ["stay", "churn"],
    "binary-numeric": [0, 1],
    "multi-text": ["low", "mid", "high", "top"],
    "multi-numeric": [-3, 10, 42],
}


@pytest.mark.parametrize("labels", list(LABELS), ids=str)
@pytest.mark.parametrize("est,kinds", CLASSIFIERS, ids=[f"{type(e).__name__}-{getattr(e, 'loss', '')}" for e, _ in CLASSIFIERS])
def test_classifier_parity(est, kinds, labels):
    names = LABELS[labels]
    X, y, Xt = _data(d=25, k=2)
    target = np.asarray(names, dtype=object)[np.digitize(y, np.quantile(y, np.linspace(0, 1, len(names) + 1)[1:-1]))]
    if not isinstance(names[0], str):
        target = target.astype(int)
    _fit(est, X, target)
    m = check_parity(est, Xt, kinds)
    assert m.classes == tuple(est.classes_.tolist())
    assert hasattr(est, "predict_proba") == ("proba" in m.output_kinds)
    # NaN rows: no label, no probability
    got = evaluate(m.output("predict"), columns_from_matrix(m, Xt))
    nan_rows = np.isnan(Xt).any(axis=1)
    assert all(v is None or (isinstance(v, float) and np.isnan(v)) for v in got[nan_rows])


def test_binary_decision_exactly_zero_predicts_first_class():
    est, X = zoo._tied_binary()
    m = check_parity(est, X, ("predict", "proba", "decision"))
    z = evaluate(m.output("decision"), columns_from_matrix(m, X))
    assert (z == 0).sum() >= 3
    assert set(evaluate(m.output("predict"), columns_from_matrix(m, X))[z == 0]) == {"no"}


def test_multiclass_tie_takes_first_class():
    est, X = zoo._tied_multiclass()
    m = check_parity(est, X, ("predict", "decision"))
    d = evaluate(m.output("decision"), columns_from_matrix(m, X))
    scored = ~np.isnan(d).any(axis=1)
    assert scored.sum() > 10 and (d[scored, 0] == d[scored, 2]).all()
    assert "c" not in set(evaluate(m.output("predict"), columns_from_matrix(m, X)))


def test_softmax_is_stable_for_huge_scores():
    X, y, _ = _data(d=4, k=3)
    est = _fit(LogisticRegression(), X, np.digitize(y, [-1, 1]))
    Xt = np.array([[1e300, 0, 0, 0], [-1e300, 0, 0, 0], [0, 1e300, 0, 0], [0.0, 0.0, 0.0, 0.0]])
    m = check_parity(est, Xt, ("predict", "proba", "decision"))
    p = evaluate(m.output("proba"), columns_from_matrix(m, Xt))
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0)


def test_parity_checker_detects_a_small_error():
    X, y, Xt = _data(d=6)
    est = _fit(LinearRegression(), X, y)
    m = compile_model(est)
    z = m.output("predict")
    wrong = ir.Sum(z.terms[:-1] + (ir.const(z.terms[-1].value * (1 + 1e-7) + 1e-7),))
    got = evaluate(wrong, columns_from_matrix(m, Xt))
    with pytest.raises(AssertionError, match="mismatches"):
        assert_close(got, expected(est, Xt, "predict"))


# ------------------------------------------------------------------ refusals


def test_multi_output_regression_is_refused():
    X, y, _ = _data(d=3)
    est = LinearRegression().fit(X, np.column_stack([y, -y]))
    with pytest.raises(UnsupportedModelError, match=r"LinearRegression: multi-output regression .*supported: one target"):
        compile_model(est)


def test_single_column_2d_target_is_one_output():
    X, y, Xt = _data(d=3)
    est = Ridge().fit(X, y.reshape(-1, 1))
    check_parity(est, Xt)


def test_multilabel_ridge_classifier_is_refused():
    X, y, _ = _data(d=3)
    est = RidgeClassifier().fit(X, np.column_stack([y > 0, y > 1]).astype(int))
    with pytest.raises(UnsupportedModelError, match="RidgeClassifier: multilabel"):
        compile_model(est)


def test_unregistered_estimator_is_refused_by_name():
    est = Lars().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    with pytest.raises(UnsupportedModelError, match=r"Lars is not supported.*LinearRegression"):
        compile_model(est)


def test_text_input_to_a_linear_model_is_refused():
    from indb.compilers.converters import Context, compile_estimator
    from indb.errors import CompileError

    est = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    with pytest.raises(CompileError, match="numeric input"):
        compile_estimator(est, [ir.Const("a")], Context(["a"]))


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    m = check_zoo_case(case)
    _, X = case.fitted()
    got = evaluate(m.output(case.outputs[0]), columns_from_matrix(m, X))
    missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in np.asarray(got).reshape(len(X), -1)[:, 0]])
    # most rows are scored, and the rows include missing inputs
    assert (~missing).sum() > len(X) // 2
    assert np.asarray(X.isna() if hasattr(X, "isna") else np.isnan(X)).any()


def test_zoo_is_not_toy():
    ids = {c.id for c in zoo.CASES}
    assert {"linear_regression_25f", "logistic_multinomial_25f_text", "customers_onehot_scaler_logistic"} <= ids
    est, _ = next(c for c in zoo.CASES if c.id == "customers_onehot_scaler_logistic").fitted()
    assert est.n_features_in_ >= 20 and len(est.classes_) >= 3 and isinstance(est.classes_[0], str)


def test_docstring_examples():
    import doctest

    from indb.compilers import linear as module

    check_docstring_examples(module, optionflags=doctest.NORMALIZE_WHITESPACE)
