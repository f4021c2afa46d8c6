"""Naive Bayes: model -> IR structure, IR parity with scikit-learn, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB

from indb import ir
from indb.compilers import compile_model
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import check_docstring_examples, check_parity, check_zoo_case
from tests.zoo import naive_bayes as zoo
from tests.zoo.linear import _data, _labels, _with_edges

x0, x1 = ir.Feature("x0"), ir.Feature("x1")


def _gaussian(d=25, names=("north", "east", "south", "west"), k=140):
    X, y = _data(300, d, k)
    labels = _labels(y, list(names), [i / len(names) for i in range(1, len(names))])
    return GaussianNB().fit(X, labels), X


# ------------------------------------------------------------------ structure


def test_gaussian_jll_ir_mirrors_sklearn_expression():
    est = GaussianNB().fit([[0.0, 1.0], [1.0, 3.0], [4.0, 0.0], [5.0, 1.0]], ["a", "a", "b", "b"])
    m = compile_model(est)
    jll = m.output("predict").items
    for k, got in enumerate(jll):
        terms = []
        for x, t, v in zip((x0, x1), est.theta_[k], est.var_[k]):
            d = ir.sub(x, ir.const(float(t)))
            terms.append(ir.div(ir.mul(d, d), ir.const(float(v))))
        norm = float(-0.5 * np.sum(np.log(2.0 * np.pi * est.var_[k])))
        want = ir.add(ir.const(float(np.log(est.class_prior_[k]))), ir.sub(ir.const(norm), ir.mul(ir.const(0.5), ir.Sum(tuple(terms)))))
        assert got == want
    assert m.output("predict") == ir.ArgMax(tuple(jll), ("a", "b"))
    assert m.output_kinds == ("predict", "proba") and m.classes == ("a", "b")


def test_gaussian_feature_sum_uses_numpys_pairwise_order():
    est, X = _gaussian(d=20)
    s = compile_model(est).output("predict").items[0].terms[1].right.right
    # 20 terms: 8 lanes of 2, combined pairwise, then the 4 leftovers
    assert isinstance(s, ir.Sum) and len(s.terms) == 5
    assert isinstance(s.terms[0], ir.Sum) and len(s.terms[0].terms) == 2


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 16, 25, 64, 127, 128, 129, 300, 1000])
def test_pairwise_sum_is_bit_identical_to_numpy_sum(n):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(40, n)) * np.exp(rng.normal(size=(40, n)) * 8)
    e = ir.pairwise_sum([ir.Feature(f"x{i}") for i in range(n)])
    got = evaluate(e, {f"x{i}": X[:, i] for i in range(n)})
    assert np.array_equal(got, X.sum(axis=1))
    if n >= 9:  # left to right would round differently somewhere
        seq = evaluate(ir.add(*[ir.Feature(f"x{i}") for i in range(n)]), {f"x{i}": X[:, i] for i in range(n)})
        assert not np.array_equal(seq, X.sum(axis=1))


def test_bernoulli_binarization_is_guarded_and_none_is_not():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    y = ["p", "q", "p", "q"]
    binarized = compile_model(BernoulliNB(binarize=0.5).fit(X, y))
    guard = ir.any_missing([x0, x1])
    assert binarized.output("predict").whens[0][0] == guard
    assert all(p.whens[0][0] == guard for p in binarized.output("proba").items)
    plain = compile_model(BernoulliNB(binarize=None).fit(X, y))
    assert isinstance(plain.output("predict"), ir.ArgMax)
    # NaN would binarize to 0: it must give NULL instead
    out = evaluate(binarized.output("proba"), {"x0": np.array([np.nan, 1.0]), "x1": np.array([1.0, 1.0])})
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


# ------------------------------------------------------------------ parity


def test_gaussian_joint_log_likelihood_is_bit_identical():
    est, X = _gaussian()
    m = compile_model(est)
    cols = columns_from_matrix(m, X)
    got = np.column_stack([evaluate(j, cols) for j in m.output("predict").items])
    assert np.array_equal(got, est.predict_joint_log_proba(X))
    # log(1 + s) for scikit-learn's log1p(s): equal on most rows; elsewhere one rounding
    # of 1 + s in the log, which exp() turns into a relative error of a few 1e-15
    p = evaluate(m.output("proba"), cols)
    want = est.predict_proba(X)
    assert np.mean(np.all(p == want, axis=1)) > 0.9
    assert np.allclose(p, want, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize(
    "est",
    [GaussianNB(), GaussianNB(priors=[0.1, 0.2, 0.3, 0.4], var_smoothing=1e-3), BernoulliNB(binarize=2.0), BernoulliNB(alpha=0.3, fit_prior=False, binarize=0.0)],
    ids=["gaussian", "gaussian_priors", "bernoulli", "bernoulli_uniform_prior"],
)
def test_parity_25_features_4_text_classes(est):
    X, y = _data(300, 25, 141)
    labels = _labels(y, ["n", "e", "s", "w"], [0.25, 0.5, 0.75])
    est.fit(X, labels)
    check_parity(est, _with_edges(X), ("predict", "proba"))


@pytest.mark.parametrize("cls", [MultinomialNB, ComplementNB])
def test_count_models_parity_numeric_labels(cls):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 300)
    X = rng.poisson(rng.uniform(0.5, 5.0, size=(3, 30))[y]).astype(float)
    est = cls().fit(X, y * 10)
    check_parity(est, np.vstack([_with_edges(X), -X[:5]]), ("predict", "proba"))


def test_every_class_at_minus_infinity_matches_sklearn():
    est, X = _gaussian(d=4, names=("a", "b", "c"))
    rows = np.array([[1e300, 0.0, 0.0, 0.0], [0.0, -1e300, 0.0, 0.0]])
    assert np.isneginf(est.predict_joint_log_proba(rows)).all()
    m = check_parity(est, rows, ("predict", "proba"))
    assert evaluate(m.output("predict"), columns_from_matrix(m, rows)).tolist() == ["a", "a"]
    assert np.isnan(evaluate(m.output("proba"), columns_from_matrix(m, rows))).all()


def test_tied_likelihoods_use_sklearns_count_of_maxima():
    est = GaussianNB().fit([[-1.0], [-2.0], [1.0], [2.0]], ["left", "left", "right", "right"])
    row = np.array([[0.0]])
    jll = est.predict_joint_log_proba(row)
    assert jll[0, 0] == jll[0, 1]  # an exact tie: m = 2 in _logsumexp
    m = check_parity(est, row, ("predict", "proba"))
    got = evaluate(m.output("proba"), {"x0": row[:, 0]})
    # bit for bit: (log1p(0) + log(2)) + max, subtracted from each likelihood
    assert got.tolist() == est.predict_proba(row).tolist() and got[0, 0] == got[0, 1]
    assert evaluate(m.output("predict"), {"x0": row[:, 0]}).tolist() == ["left"]


def test_on_missing_error_raises_for_labels():
    est, X = _gaussian(d=3, names=("a", "b"))
    m = compile_model(est, on_missing="error")
    with pytest.raises(ValueError, match="NULL or NaN"):
        evaluate(m.output("predict"), {"x0": np.array([np.nan]), "x1": np.array([0.0]), "x2": np.array([0.0])})


# ------------------------------------------------------------------ refusals


def test_single_class_is_refused():
    with pytest.raises(UnsupportedModelError, match="GaussianNB fitted on a single class"):
        compile_model(GaussianNB().fit([[0.0], [1.0]], ["a", "a"]))


def test_categorical_nb_is_refused_by_name():
    with pytest.raises(UnsupportedModelError, match="CategoricalNB is not supported"):
        compile_model(CategoricalNB().fit([[0], [1]], [0, 1]))


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    m = check_zoo_case(case)
    _, X = case.fitted()
    labels = evaluate(m.output("predict"), columns_from_matrix(m, X))
    missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in labels])
    assert missing.any() and (~missing).sum() > len(X) // 2


def test_zoo_is_not_toy():
    est, _ = next(c for c in zoo.CASES if c.id == "nb_gaussian_25f_text").fitted()
    assert est.n_features_in_ >= 20 and len(est.classes_) >= 3 and isinstance(est.classes_[0], str)


def test_docstring_examples():
    from indb.compilers import naive_bayes as module

    check_docstring_examples(module)
