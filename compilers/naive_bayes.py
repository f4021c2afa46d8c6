"""Converters for scikit-learn's naive Bayes classifiers.

Supported: ``GaussianNB``, ``BernoulliNB``, ``MultinomialNB`` and ``ComplementNB``,
with ``predict`` and ``predict_proba`` (numeric or string class labels, two or more
classes). Each model first computes a joint log likelihood ``jll`` per class, as
scikit-learn's ``_joint_log_likelihood`` does:

* GaussianNB: ``log(prior_k) + (c_k - 0.5 * sum_j (x_j - theta_kj)**2 / var_kj)``
  with ``c_k = -0.5 * sum_j log(2 pi var_kj)`` folded at compile time (with numpy, so
  the constant is bit-identical). The per-feature sum is added in numpy's own
  pairwise order (``ir.pairwise_sum``), so on ordinary rows the IR rounds exactly as
  scikit-learn does.
* BernoulliNB: ``binarize`` (``x > threshold`` gives 1, else 0; ``binarize=None`` uses
  x as it is), then ``X @ (log p - log(1 - p)).T + (log prior + sum log(1 - p))``.
* MultinomialNB: ``X @ feature_log_prob_.T + class_log_prior_``; ComplementNB:
  ``X @ feature_log_prob_.T`` (plus the prior when it has one class).

The dot products of the discrete models run through BLAS in scikit-learn; the IR adds
them left to right, which can differ in the last bits (well inside 1e-9 relative).

``predict`` is ``classes_[argmax(jll)]`` (the first class on ties). ``predict_proba``
is ``exp(jll - logsumexp(jll))`` with scikit-learn's own ``_logsumexp``: subtract the
row maximum (0 when it is infinite), leave the maximal entries out of the sum of
exponentials and count them instead (``m``), and add back ``log1p(s / m) + log(m)``.
The IR has no ``log1p``: it writes ``log(1 + s / m)``, which differs by at most one
rounding of ``1 + s / m`` (about 1e-16 absolute in the log probability).

Missing values: none of these models accepts NaN (scikit-learn raises), so a row with a
missing input has no output. The Gaussian and the unbinarized discrete arithmetic
propagates NaN by itself; BernoulliNB's binarization would turn NaN into 0, so there
every output is guarded (``Context.guard_missing``). A label is never invented for a
row whose scores are missing. +-1e300 inputs follow IEEE-754 like numpy: a Gaussian
likelihood of ``-inf`` for every class gives scikit-learn's answers (the first class,
and NaN probabilities).

    >>> from sklearn.naive_bayes import GaussianNB
    >>> from indb.compilers import compile_model
    >>> m = compile_model(GaussianNB().fit([[0.0], [1.0], [3.0], [4.0]], ["a", "a", "b", "b"]))
    >>> m.output_kinds
    ('predict', 'proba')
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB

from indb import ir
from indb.compilers.converters import Compiled, Context, class_labels, estimator_name, label_guard, python_scalar, register
from indb.errors import UnsupportedModelError

_INF = float("inf")


def _check_classes(est: Any) -> tuple:
    labels = class_labels(est)
    if len(labels) < 2:
        raise UnsupportedModelError(f"{estimator_name(est)} fitted on a single class is not supported; supported: two or more classes")
    return labels


def _one_if(cond: ir.Expr) -> ir.Expr:
    return ir.Case(((cond, ir.const(1.0)),), ir.const(0.0))


def logsumexp_proba(jll: Sequence[ir.Expr]) -> list[ir.Expr]:
    """``exp(jll_k - logsumexp(jll))`` per class, with scikit-learn's ``_logsumexp``.

    >>> ps = logsumexp_proba([ir.Feature("a"), ir.Feature("b")])
    >>> len(ps), ps[0].name
    (2, 'exp')
    """
    jll = list(jll)
    top = ir.func("max", *jll)
    is_top = [ir.Compare("==", j, top) for j in jll]
    count = ir.pairwise_sum([_one_if(t) for t in is_top])
    finite_top = ir.Compare("<", ir.func("abs", top), ir.const(_INF))
    shift = ir.Case(((finite_top, top),), ir.const(0.0))
    exps = [ir.Case(((t, ir.const(0.0)),), ir.func("exp", ir.sub(j, shift))) for j, t in zip(jll, is_top)]
    s = ir.pairwise_sum(exps)
    s = ir.Case(((ir.Compare("==", s, ir.const(0.0)), s),), ir.div(s, count))
    lse = ir.add(ir.func("log", ir.add(ir.const(1.0), s)), ir.func("log", count), top)
    return [ir.func("exp", ir.sub(j, lse)) for j in jll]


def _outputs(est: Any, jll: list[ir.Expr], ctx: Context, guard_inputs: Sequence[ir.Expr] | None = None) -> Compiled:
    """predict and predict_proba from the joint log likelihoods.

    ``guard_inputs``: make every output missing where one of these is missing (for
    models whose arithmetic would otherwise turn a missing input into a value).
    """
    labels = _check_classes(est)
    name = estimator_name(est)
    predict = label_guard(ctx, jll, ir.ArgMax(tuple(jll), labels), f"{name}.predict")
    proba = logsumexp_proba(jll)
    if guard_inputs is not None:
        predict = ctx.guard_missing(guard_inputs, predict, f"{name}.predict")
        proba = [ctx.guard_missing(guard_inputs, p, f"{name}.predict_proba") for p in proba]
    return Compiled(predict=predict, proba=proba, classes=tuple(python_scalar(c) for c in est.classes_))


def _floats(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> list[ir.Expr]:
    return [ctx.as_float(x, estimator_name(est)) for x in inputs]


@register(GaussianNB)
def convert_gaussian_nb(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and predict_proba of a GaussianNB.

    >>> from indb.compilers.converters import Context
    >>> est = GaussianNB().fit([[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1])
    >>> len(convert_gaussian_nb(est, [ir.Feature("a")], Context(["a"])).proba)
    2
    """
    xs = _floats(est, inputs, ctx)
    theta = np.asarray(est.theta_, dtype=np.float64)
    var = np.asarray(est.var_, dtype=np.float64)
    jll = []
    for k in range(theta.shape[0]):
        joint = float(np.log(est.class_prior_[k]))
        norm = float(-0.5 * np.sum(np.log(2.0 * np.pi * var[k, :])))
        terms = []
        for x, t, v in zip(xs, theta[k], var[k]):
            d = ir.sub(x, ir.const(float(t)))
            terms.append(ir.div(ir.mul(d, d), ir.const(float(v))))
        spread = ir.sub(ir.const(norm), ir.mul(ir.const(0.5), ir.pairwise_sum(terms)))
        jll.append(ir.add(ir.const(joint), spread))
    return _outputs(est, jll, ctx)


def _dot_scores(xs: Sequence[ir.Expr], weights: np.ndarray, intercepts: np.ndarray | None) -> list[ir.Expr]:
    """``X @ weights.T (+ intercepts)``, one score per row of ``weights``."""
    out = []
    for k, row in enumerate(weights):
        terms: list[ir.Expr] = [ir.mul(x, ir.const(float(w))) for x, w in zip(xs, row)]
        if intercepts is not None:
            terms.append(ir.const(float(intercepts[k])))
        out.append(ir.add(*terms))
    return out


@register(BernoulliNB)
def convert_bernoulli_nb(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and predict_proba of a BernoulliNB (binarized at ``binarize``, unless None).

    >>> from indb.compilers.converters import Context
    >>> est = BernoulliNB().fit([[0.0], [1.0], [0.0], [1.0]], ["a", "a", "b", "b"])
    >>> convert_bernoulli_nb(est, [ir.Feature("a")], Context(["a"])).predict.whens[0][0]
    IsMissing(operand=Feature(name='a', kind='float'))
    """
    xs = _floats(est, inputs, ctx)
    flp = np.asarray(est.feature_log_prob_, dtype=np.float64)
    neg_prob = np.log(1 - np.exp(flp))
    weights = flp - neg_prob
    intercepts = est.class_log_prior_ + neg_prob.sum(axis=1)
    if est.binarize is None:
        return _outputs(est, _dot_scores(xs, weights, intercepts), ctx)
    threshold = ir.const(float(est.binarize))
    binary = [_one_if(ir.Compare(">", x, threshold)) for x in xs]
    return _outputs(est, _dot_scores(binary, weights, intercepts), ctx, guard_inputs=xs)


@register(MultinomialNB)
def convert_multinomial_nb(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and predict_proba of a MultinomialNB.

    >>> from indb.compilers.converters import Context
    >>> est = MultinomialNB().fit([[0.0], [2.0]], [0, 1])
    >>> convert_multinomial_nb(est, [ir.Feature("a")], Context(["a"])).classes
    (0, 1)
    """
    xs = _floats(est, inputs, ctx)
    jll = _dot_scores(xs, np.asarray(est.feature_log_prob_, dtype=np.float64), np.asarray(est.class_log_prior_))
    return _outputs(est, jll, ctx)


@register(ComplementNB)
def convert_complement_nb(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and predict_proba of a ComplementNB.

    >>> from indb.compilers.converters import Context
    >>> est = ComplementNB().fit([[0.0, 1.0], [2.0, 0.0]], ["x", "y"])
    >>> len(convert_complement_nb(est, [ir.Feature("a"), ir.Feature("b")], Context(["a", "b"])).proba)
    2
    """
    xs = _floats(est, inputs, ctx)
    jll = _dot_scores(xs, np.asarray(est.feature_log_prob_, dtype=np.float64), None)
    return _outputs(est, jll, ctx)
