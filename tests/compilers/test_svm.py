"""Kernel SVMs: model -> IR structure, IR parity with scikit-learn (libsvm), vote rules, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics.pairwise import polynomial_kernel, rbf_kernel, sigmoid_kernel
from sklearn.svm import SVC, SVR, NuSVC, NuSVR

from indb import ir
from indb.compilers import compile_model
from indb.compilers.converters import Context
from indb.compilers.svm import _powi, _vote_label, kernel_values, libsvm_scores, ovr_decision
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import evaluate
from tests.compilers.parity import assert_close, check_docstring_examples, check_parity, check_zoo_case
from tests.zoo import svm as zoo
from tests.zoo.linear import _classes, _data, _with_edges
from tests.zoo.preprocessing import _fit

KERNELS = ("linear", "poly", "rbf", "sigmoid")



def _standard(n=250, d=20, k=0):
    X, y = _data(n, d, k)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _names(n):
    return [f"x{i}" for i in range(n)]


# ------------------------------------------------------------------ structure


def test_powi_is_libsvms_square_and_multiply():
    b = ir.Feature("b")
    b2 = ir.mul(b, b)
    assert _powi(b, 0) == ir.const(1.0)
    assert _powi(b, 1) == b
    assert _powi(b, 3) == ir.mul(b, b2)
    assert _powi(b, 4) == ir.mul(b2, b2)
    assert _powi(b, 5) == ir.mul(b, ir.mul(b2, b2))


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_values_match_sklearns_kernels(kernel):
    X, y = _standard(120, 6, 170)
    est = _fit(SVR(kernel=kernel, degree=3, coef0=0.5, gamma=0.2), X, y)
    ks = evaluate(ir.vector(kernel_values(est, [ir.Feature(n) for n in _names(6)])), dict(zip(_names(6), X.T)))
    sv = est.support_vectors_
    want = {
        "linear": lambda: X @ sv.T,
        "poly": lambda: polynomial_kernel(X, sv, degree=3, gamma=0.2, coef0=0.5),
        "rbf": lambda: rbf_kernel(X, sv, gamma=0.2),
        "sigmoid": lambda: sigmoid_kernel(X, sv, gamma=0.2, coef0=0.5),
    }[kernel]()
    assert_close(ks, want, rtol=1e-12, atol=1e-13, what=kernel)


def test_kernel_values_are_shared_by_every_class_pair():
    X, y = _standard(150, 4, 171)
    est = _fit(SVC(), X, _classes(y, ["a", "b", "c"]))
    m = compile_model(est)
    kernels = {id(n) for n in ir.walk(m.output("decision")) if isinstance(n, ir.Func) and n.name == "exp"}
    assert len(kernels) == len(est.support_vectors_)


def test_binary_decision_is_minus_libsvms_score():
    X, y = _standard(100, 3, 172)
    est = _fit(SVC(kernel="linear"), X, _classes(y, ["no", "yes"]))
    m = compile_model(est)
    assert m.output("decision").name == "neg"
    assert m.output_kinds == ("predict", "decision")


def test_vote_rule_first_class_wins_a_three_way_tie_and_nan_votes_for_j():
    a, b, c = ir.Feature("a"), ir.Feature("b"), ir.Feature("c")
    label = _vote_label([a, b, c], ("x", "y", "z"))
    # pairs (0,1), (0,2), (1,2): +1 votes x, -1 votes z, +1 votes y: one vote each
    cols = {"a": np.array([1.0, np.nan, -1.0]), "b": np.array([-1.0, np.nan, -1.0]), "c": np.array([1.0, np.nan, 0.0])}
    # row 2: NaN never beats 0, so j wins every pair: y, z, z
    assert evaluate(label, cols).tolist() == ["x", "z", "z"]


def test_ovr_decision_matches_sklearns_helper():
    from sklearn.utils.multiclass import _ovr_decision_function

    rng = np.random.default_rng(0)
    dec = rng.normal(size=(50, 6))
    dec[:5] = 0.0
    dec[5, 2] = np.nan
    items = ovr_decision([ir.Feature(f"d{p}") for p in range(6)], 4)
    got = evaluate(ir.vector(items), {f"d{p}": dec[:, p] for p in range(6)})
    want = _ovr_decision_function(dec < 0, -dec, 4)
    assert_close(got, want, rtol=0.0, atol=0.0, what="ovr")  # bit for bit


# ------------------------------------------------------------------ parity


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shape", ["ovr", "ovo", "break_ties"])
def test_multiclass_svc_parity_20_features_text_labels(kernel, shape):
    X, y = _standard(250, 20, 173)
    kw = {"decision_function_shape": "ovo"} if shape == "ovo" else {"break_ties": shape == "break_ties"}
    est = _fit(SVC(kernel=kernel, C=2.0, gamma=0.05, coef0=0.3, **kw), X, _classes(y, ["n", "e", "s", "w"]))
    check_parity(est, _with_edges(X, 100), ("predict", "decision"))


@pytest.mark.parametrize("kernel", KERNELS)
def test_binary_and_nu_svc_parity(kernel):
    X, y = _standard(200, 8, 174)
    check_parity(_fit(SVC(kernel=kernel, gamma=0.1), X, _classes(y, [0, 1])), _with_edges(X), ("predict", "decision"))
    check_parity(_fit(NuSVC(kernel=kernel, nu=0.3, gamma=0.1), X, _classes(y, [3, 5, 7])), _with_edges(X), ("predict", "decision"))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("cls", [SVR, NuSVR])
def test_regressor_parity(kernel, cls):
    X, y = _standard(200, 20, 175)
    check_parity(_fit(cls(kernel=kernel, degree=2, gamma=0.05), X, y), _with_edges(X, 100), ("predict",))


def test_probability_model_offers_predict_and_decision_but_not_proba():
    X, y = _standard(150, 5, 176)
    est = _fit(SVC(probability=True, random_state=0), X, _classes(y, ["a", "b", "c"]))
    m = check_parity(est, _with_edges(X), ("predict", "decision"))
    assert "proba" not in m.output_kinds
    assert hasattr(est, "predict_proba")


def test_missing_input_gives_null_label():
    X, y = _standard(100, 3, 177)
    est = _fit(SVC(), X, _classes(y, ["a", "b"]))
    m = compile_model(est)
    cols = {"x0": np.array([np.nan]), "x1": np.array([0.0]), "x2": np.array([0.0])}
    assert evaluate(m.output("predict"), cols).tolist() == [None]
    with pytest.raises(ValueError, match="NULL or NaN"):
        evaluate(compile_model(est, on_missing="error").output("predict"), cols)


# ------------------------------------------------------------------ refusals


def test_precomputed_and_callable_kernels_are_refused():
    X, y = _standard(60, 3, 178)
    with pytest.raises(UnsupportedModelError, match=r"SVC\(kernel='precomputed'\) is not supported; supported kernels: linear, poly, rbf, sigmoid"):
        compile_model(_fit(SVC(kernel="precomputed"), X @ X.T, y > 0))
    with pytest.raises(UnsupportedModelError, match=r"SVR\(kernel='my_kernel'\) is not supported"):

        def my_kernel(a, b):
            return a @ b.T

        compile_model(_fit(SVR(kernel=my_kernel), X, y), features=["a", "b", "c"])


def test_sparse_fit_is_refused():
    X, y = _standard(60, 3, 179)
    with pytest.raises(UnsupportedModelError, match="SVR fitted on a sparse matrix"):
        compile_model(_fit(SVR(), sp.csr_matrix(X), y))


def test_break_ties_with_ovo_is_refused():
    X, y = _standard(60, 3, 180)
    est = _fit(SVC(break_ties=True, decision_function_shape="ovo"), X, _classes(y, ["a", "b", "c"]))
    with pytest.raises(UnsupportedModelError, match="break_ties=True, decision_function_shape='ovo'"):
        compile_model(est)


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    check_zoo_case(case)


def test_docstring_examples():
    from indb.compilers import svm as module

    check_docstring_examples(module)


def test_libsvm_score_of_a_regressor_is_its_prediction():
    X, y = _standard(40, 2, 181)
    est = _fit(SVR(), X, y)
    (score,) = libsvm_scores(est, [ir.Feature("x0"), ir.Feature("x1")], Context(_names(2)))
    assert_close(evaluate(score, {"x0": X[:, 0], "x1": X[:, 1]}), est.predict(X), what="SVR score")
