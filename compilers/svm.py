"""Converters for scikit-learn's kernel support vector machines (libsvm).

Supported: ``SVC`` and ``NuSVC`` (``predict``, ``decision_function`` in both
``decision_function_shape`` forms, ``break_ties``), ``SVR`` and ``NuSVR``
(``predict``), with the ``linear``, ``poly``, ``rbf`` and ``sigmoid`` kernels, dense
training data, numeric or string class labels. ``OneClassSVM`` lives in
``outlier.py`` and uses the same scores.

The IR follows scikit-learn's bundled libsvm (``svm/src/libsvm/svm.cpp``,
``svm_predict_values``) operation by operation:

* one kernel value per support vector, built once and shared by every class pair:
  ``linear``: ``x . sv``; ``poly``: ``powi(gamma * (x . sv) + coef0, degree)`` with
  libsvm's own square-and-multiply ``powi``; ``rbf``: ``exp(-gamma * sum_i (x_i -
  sv_i)^2)``; ``sigmoid``: ``tanh(gamma * (x . sv) + coef0)`` (``gamma`` is the fitted
  ``_gamma``, so ``'scale'``/``'auto'`` are resolved);
* the score of class pair ``(i, j)``: ``sum_k coef * K_k`` over the support vectors of
  class i then of class j, left to right from 0, then ``- rho`` (``rho = -intercept``);
  for regression, one sum over every support vector.

libsvm takes the dot products inside the kernels from BLAS (``ddot``: blocked sums,
fused multiply-add on some machines); the IR adds them left to right, so kernel
values, and so scores, agree to a few units in the last place rather than bit for bit.

Outputs of the classifiers (``k`` classes, ``k(k-1)/2`` pair scores ``d_p`` as libsvm
computes them):

* ``decision_function``: two classes: ``-d_0`` (scikit-learn flips the sign);
  ``'ovo'``: the pair scores; ``'ovr'`` (the default): scikit-learn's
  ``_ovr_decision_function``: per class, votes (class i of pair p when
  ``not d_p < 0``, else class j) plus ``s / (3 * (|s| + 1))`` where ``s`` accumulates
  ``+d_p`` for class i and ``-d_p`` for class j, pair by pair.
* ``predict``: libsvm's vote: class i of pair p gets the vote when ``d_p > 0``, else
  class j (so a NaN score votes for j), and the first class with the most votes wins;
  with ``break_ties=True`` (and ``'ovr'``, more than two classes) it is
  ``numpy.argmax`` of the ``'ovr'`` decision instead.
* ``predict_proba`` (``probability=True``) is **not offered**: libsvm couples the
  pairwise Platt probabilities with an iterative solver (``multiclass_probability``:
  up to ``max(100, k)`` iterations whose number depends on the row, even for two
  classes), which the IR could only express as a hundred nested unrolled iterations --
  too deep for SQL, and too deep for the IR's recursive consumers. A model fitted with
  ``probability=True`` compiles with ``predict`` and ``decision_function`` only.

Missing values: libsvm models refuse NaN, so a row with a missing input has no output:
scores propagate NaN, and labels (which a comparison would turn into a value) are
guarded. +-1e300 inputs follow IEEE-754 like numpy (``inf - inf`` in a score gives
NaN, and the vote rules above apply to it as in libsvm).

Refused: ``kernel='precomputed'`` and callable kernels (the IR would need the training
rows), models fitted on sparse matrices.

    >>> from sklearn.svm import SVR
    >>> from indb.compilers import compile_model
    >>> compile_model(SVR().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 0.5])).output_kinds
    ('predict',)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.svm import SVC, SVR, NuSVC, NuSVR

from indb import ir
from indb.compilers.neural import numpy_argmax
from indb.compilers.converters import Compiled, Context, class_labels, estimator_name, python_scalar, register
from indb.errors import UnsupportedModelError

KERNELS = ("linear", "poly", "rbf", "sigmoid")


def _check(est: Any) -> None:
    kernel = est.kernel
    if callable(kernel) or kernel not in KERNELS:
        shown = getattr(kernel, "__name__", kernel) if callable(kernel) else kernel
        raise UnsupportedModelError(
            f"{estimator_name(est)}(kernel={shown!r}) is not supported; supported kernels: {', '.join(KERNELS)}"
        )
    if est._sparse:
        raise UnsupportedModelError(f"{estimator_name(est)} fitted on a sparse matrix is not supported; supported: dense training data")


def _dot(xs: Sequence[ir.Expr], sv: np.ndarray) -> ir.Expr:
    return ir.add(*[ir.mul(x, ir.const(float(v))) for x, v in zip(xs, sv)])


def _powi(base: ir.Expr, times: int) -> ir.Expr:
    """libsvm's ``powi``: square-and-multiply, in its order of operations."""
    ret: ir.Expr | None = None  # libsvm starts from 1.0; 1.0 * tmp is tmp exactly
    tmp = base
    t = times
    while t > 0:
        if t % 2 == 1:
            ret = tmp if ret is None else ir.mul(ret, tmp)
        tmp = ir.mul(tmp, tmp)
        t //= 2
    return ir.const(1.0) if ret is None else ret


def kernel_values(est: Any, xs: Sequence[ir.Expr]) -> list[ir.Expr]:
    """``K(x, sv)`` for every support vector, in ``support_vectors_`` order.

    >>> from indb.compilers.converters import Context
    >>> est = SVR(kernel="poly", degree=3).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 0.5])
    >>> kernel_values(est, [ir.Feature("a")])[0].op
    '*'
    """
    gamma = float(est._gamma)
    coef0 = float(est.coef0)
    out = []
    for sv in np.asarray(est.support_vectors_, dtype=np.float64):
        if est.kernel == "rbf":
            diffs = [ir.sub(x, ir.const(float(v))) for x, v in zip(xs, sv)]
            sq = ir.add(*[ir.mul(d, d) for d in diffs])
            out.append(ir.func("exp", ir.mul(ir.const(-gamma), sq)))
            continue
        dot = _dot(xs, sv)
        if est.kernel == "linear":
            out.append(dot)
        elif est.kernel == "poly":
            out.append(_powi(ir.add(ir.mul(ir.const(gamma), dot), ir.const(coef0)), int(est.degree)))
        else:  # sigmoid
            out.append(ir.func("tanh", ir.add(ir.mul(ir.const(gamma), dot), ir.const(coef0))))
    return out


def _weighted(coefs: Sequence[float], kvalues: Sequence[ir.Expr], intercept: float) -> ir.Expr:
    # coefficients of 0 are kept: 0 * inf is NaN in libsvm too
    terms: list[ir.Expr] = [ir.mul(ir.const(float(c)), k) for c, k in zip(coefs, kvalues)]
    terms.append(ir.const(float(intercept)))
    return ir.add(*terms)


def libsvm_scores(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> list[ir.Expr]:
    """libsvm's decision values: one per class pair (classification) or one (regression, one-class).

    >>> from indb.compilers.converters import Context
    >>> est = SVC().fit([[0.0], [1.0], [2.0]], ["a", "b", "c"])
    >>> len(libsvm_scores(est, [ir.Feature("x")], Context(["x"])))
    3
    """
    _check(est)
    xs = [ctx.as_float(x, estimator_name(est)) for x in inputs]
    kvalues = kernel_values(est, xs)
    coef = np.asarray(est._dual_coef_, dtype=np.float64)
    intercept = np.asarray(est._intercept_, dtype=np.float64).ravel()
    if est._impl not in ("c_svc", "nu_svc"):
        return [_weighted(coef[0], kvalues, intercept[0])]
    n_support = np.asarray(est._n_support, dtype=np.intp)
    start = np.concatenate([[0], np.cumsum(n_support)[:-1]])
    scores = []
    p = 0
    for i in range(len(n_support)):
        for j in range(i + 1, len(n_support)):
            si, sj = slice(start[i], start[i] + n_support[i]), slice(start[j], start[j] + n_support[j])
            coefs = list(coef[j - 1, si]) + list(coef[i, sj])
            scores.append(_weighted(coefs, kvalues[si] + kvalues[sj], intercept[p]))
            p += 1
    return scores


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def _one_if(cond: ir.Expr) -> ir.Expr:
    return ir.Case(((cond, ir.const(1.0)),), ir.const(0.0))


def ovr_decision(scores: Sequence[ir.Expr], k: int) -> list[ir.Expr]:
    """scikit-learn's ``_ovr_decision_function(dec < 0, -dec, k)`` from libsvm's pair scores.

    >>> len(ovr_decision([ir.Feature("a"), ir.Feature("b"), ir.Feature("c")], 3))
    3
    """
    votes: list[list[ir.Expr]] = [[] for _ in range(k)]
    confidence: list[list[ir.Expr]] = [[] for _ in range(k)]
    for d, (i, j) in zip(scores, _pairs(k)):
        negative = ir.Compare("<", d, ir.const(0.0))
        votes[i].append(_one_if(ir.Not(negative)))
        votes[j].append(_one_if(negative))
        # s_i -= -d is s_i + d exactly; s_j += -d
        confidence[i].append(d)
        confidence[j].append(ir.func("neg", d))
    out = []
    for c in range(k):
        s = ir.Sum(tuple(confidence[c]))  # not ir.add: that would splice the scores' own terms in
        scaled = ir.div(s, ir.mul(ir.const(3.0), ir.add(ir.func("abs", s), ir.const(1.0))))
        out.append(ir.Sum((ir.add(*votes[c]), scaled)))
    return out


def _vote_label(scores: Sequence[ir.Expr], labels: tuple) -> ir.Expr:
    """libsvm's ``svm_predict_values`` vote: ``d_p > 0`` votes for i, anything else for j."""
    k = len(labels)
    if k == 2:
        kind = ir.TEXT if isinstance(labels[0], str) else ir.FLOAT
        return ir.Case(((ir.Compare(">", scores[0], ir.const(0.0)), ir.const(labels[0], kind)),), ir.const(labels[1], kind))
    votes: list[list[ir.Expr]] = [[] for _ in range(k)]
    for d, (i, j) in zip(scores, _pairs(k)):
        positive = ir.Compare(">", d, ir.const(0.0))
        votes[i].append(_one_if(positive))
        votes[j].append(_one_if(ir.Not(positive)))
    # counts are never missing, and ArgMax keeps the first of equal counts, as libsvm's scan
    return ir.ArgMax(tuple(ir.add(*v) for v in votes), labels)


@register(SVC, NuSVC)
def convert_svc(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and decision_function (ovr or ovo) of SVC/NuSVC; no predict_proba (see the module).

    >>> from indb.compilers.converters import Context
    >>> est = SVC(kernel="linear").fit([[0.0], [1.0], [2.0]], ["a", "b", "c"])
    >>> len(convert_svc(est, [ir.Feature("x")], Context(["x"])).decision)
    3
    """
    name = estimator_name(est)
    if est.break_ties and est.decision_function_shape == "ovo":
        raise UnsupportedModelError(
            f"{name}(break_ties=True, decision_function_shape='ovo') is not supported: scikit-learn's own predict raises for it"
        )
    labels = class_labels(est)
    if len(labels) < 2:
        raise UnsupportedModelError(f"{name} fitted on a single class is not supported; supported: two or more classes")
    scores = libsvm_scores(est, inputs, ctx)
    k = len(labels)
    if k == 2:
        decision: ir.Expr | list[ir.Expr] = ir.func("neg", scores[0])
        label = _vote_label(scores, labels)
    else:
        ovr = ovr_decision(scores, k)
        decision = ovr if est.decision_function_shape == "ovr" else list(scores)
        if est.break_ties and est.decision_function_shape == "ovr":
            label = numpy_argmax(ovr, labels)
        else:
            label = _vote_label(scores, labels)
    xs = [x for x in inputs if not isinstance(x, ir.Const)]
    predict = ctx.guard_missing(xs, label, f"{name}.predict")
    return Compiled(predict=predict, decision=decision, classes=tuple(python_scalar(c) for c in est.classes_))


@register(SVR, NuSVR)
def convert_svr(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict of SVR/NuSVR: ``sum_k coef_k K(x, sv_k) + intercept``.

    >>> from indb.compilers.converters import Context
    >>> est = NuSVR().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 0.5])
    >>> convert_svr(est, [ir.Feature("x")], Context(["x"])).predict.type
    'float'
    """
    (score,) = libsvm_scores(est, inputs, ctx)
    return Compiled(predict=score)
