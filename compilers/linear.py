"""Converters for scikit-learn's linear models.

Every model here scores a row with the same linear predictor, ``z = X @ coef_ +
intercept_``, built with ``ir.linear`` (dot product added left to right, then the
intercept, as numpy's ``X @ w + b``; zero weights are kept because ``0 * inf`` is NaN in
the model too). What differs is what each estimator does with ``z``:

* regressors (LinearRegression, Ridge, Lasso, ElasticNet, SGDRegressor, HuberRegressor,
  LinearSVR and their ``*CV`` variants): ``predict = z``;
* generalised linear models (PoissonRegressor, GammaRegressor, TweedieRegressor):
  ``predict`` is the inverse link of ``z`` -- ``exp(z)`` for the log link, ``z`` for the
  identity link;
* classifiers (LogisticRegression, SGDClassifier, RidgeClassifier, LinearSVC and the
  ``*CV`` variants): ``decision = z`` (one score for two classes, one per class
  otherwise); ``predict`` is ``classes_[1]`` iff ``z > 0`` for two classes (a score of
  exactly 0 gives ``classes_[0]``), else the class of the first largest score; and where
  the estimator has ``predict_proba``, the same formula as scikit-learn:

  - LogisticRegression with two classes, SGDClassifier(loss="log_loss"):
    ``[1 - expit(z), expit(z)]``; with more classes LogisticRegression uses the softmax
    ``exp(z_k - max z) / sum_j exp(z_j - max z)`` (``ir.softmax``, whose exponents stop
    at -700, where the exact term is below 1e-304) and SGDClassifier the one-vs-rest
    normalisation ``expit(z_k) / sum_j expit(z_j)``;
  - SGDClassifier(loss="modified_huber"): ``p = (clip(z, -1, 1) + 1) / 2``, as
    ``[1 - p, p]`` for two classes and ``p_k / sum_j p_j`` otherwise (uniform when
    every ``p_k`` is 0).

Missing values: none of these models accepts NaN (scikit-learn raises), so a row with a
missing input has no prediction. The arithmetic propagates NaN by itself (the output
layer turns it into NULL); a class label, which a comparison would otherwise invent,
is NULL when its score is missing. With ``on_missing="error"`` such a row is refused
(``Compiled.refuse``), so every output -- label, probabilities, decision -- raises. Infinite
inputs, which scikit-learn also refuses, are not special-cased: the IR follows
IEEE-754 like numpy.

Refused: multi-output regression (``coef_`` with more than one row), multilabel
RidgeClassifier, and class labels that are neither all numbers nor all strings.

    >>> from sklearn.linear_model import LinearRegression
    >>> from indb.compilers import compile_model
    >>> m = compile_model(LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0]))
    >>> z = m.output("predict")  # x0 * coef_[0] + intercept_
    >>> [type(t).__name__ for t in z.terms], z.terms[0].left
    (['BinOp', 'Const'], Feature(name='x0', kind='float'))
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.linear_model import (
    ElasticNet,
    ElasticNetCV,
    GammaRegressor,
    HuberRegressor,
    Lasso,
    LassoCV,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR

from indb import ir
from indb.compilers.converters import Compiled, Context, class_labels, estimator_name, label_guard, python_scalar, register
from indb.errors import UnsupportedModelError


def _float_inputs(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> list[ir.Expr]:
    return [ctx.as_float(x, estimator_name(est)) for x in inputs]


def _coef_rows(est: Any) -> tuple[np.ndarray, np.ndarray]:
    """``coef_`` as a 2-D float array (one row per output) and ``intercept_`` with one value per row."""
    coef = np.asarray(est.coef_, dtype=np.float64)
    if coef.ndim == 1:
        coef = coef.reshape(1, -1)
    intercept = np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64).reshape(-1), (coef.shape[0],))
    return coef, intercept


def _scores(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> list[ir.Expr]:
    xs = _float_inputs(est, inputs, ctx)
    coef, intercept = _coef_rows(est)
    return [ir.linear(xs, row, b) for row, b in zip(coef, intercept)]


def error_on_missing(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> list[tuple[ir.Expr, str]]:
    """With ``on_missing="error"``, a row with a missing input is refused, so every output raises.

    Pure arithmetic turns NaN into NaN (NULL) on its own; in the raising mode the label,
    the probabilities and the decision of such a row must all raise alike (one row, one
    rule), which ``compile_model``'s refusal guard does for every output item.
    """
    if ctx.on_missing != "error":
        return []
    bad = ir.any_missing(inputs)
    if isinstance(bad, ir.Const):
        return []
    return [(bad, f"{estimator_name(est)}: an input feature is NULL or NaN and the model has no rule for missing values")]


def _predict_label(est: Any, scores: list[ir.Expr], labels: tuple, ctx: Context) -> ir.Expr:
    if len(scores) == 1:
        # LinearClassifierMixin.predict: classes_[1] iff score > 0
        label = ir.binary_label(scores[0], ">", 0.0, labels[0], labels[1])
    else:
        # argmax: the first of equal largest scores wins
        label = ir.ArgMax(tuple(scores), labels)
    return label_guard(ctx, scores, label, estimator_name(est))


def _binary_pair(p: ir.Expr) -> list[ir.Expr]:
    return [ir.sub(ir.const(1.0), p), p]


def _normalise_rows(ps: list[ir.Expr]) -> list[ir.Expr]:
    """``p_k / sum(p)``, uniform where the sum is 0 (scikit-learn's one-vs-rest normalisation)."""
    total = ir.pairwise_sum(ps)  # prob.sum(axis=1), in numpy's order
    uniform = ir.const(1.0 / len(ps))
    zero = ir.Compare("==", total, ir.const(0.0))
    return [ir.case([(zero, uniform)], ir.div(p, total)) for p in ps]


def _expit_proba(scores: list[ir.Expr]) -> list[ir.Expr]:
    """LinearClassifierMixin._predict_proba_lr."""
    ps = [ir.func("expit", z) for z in scores]
    if len(ps) == 1:
        return _binary_pair(ps[0])
    return _normalise_rows(ps)


def _modified_huber_proba(scores: list[ir.Expr]) -> list[ir.Expr]:
    ps = [
        ir.div(ir.add(ir.func("min", ir.func("max", z, ir.const(-1.0)), ir.const(1.0)), ir.const(1.0)), ir.const(2.0))
        for z in scores
    ]
    if len(ps) == 1:
        return _binary_pair(ps[0])
    return _normalise_rows(ps)


# ------------------------------------------------------------------ regressors


def _single_output_scores(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> ir.Expr:
    coef = np.asarray(est.coef_)
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise UnsupportedModelError(
            f"{estimator_name(est)}: multi-output regression (coef_ of shape {coef.shape}) is not supported; "
            "supported: one target (fit one model per target)"
        )
    return _scores(est, inputs, ctx)[0]


@register(
    LinearRegression,
    Ridge,
    RidgeCV,
    Lasso,
    LassoCV,
    ElasticNet,
    ElasticNetCV,
    SGDRegressor,
    HuberRegressor,
    LinearSVR,
)
def convert_linear_regressor(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``predict = X @ coef_ + intercept_``.

    >>> from sklearn.linear_model import Ridge
    >>> from indb.compilers.converters import Context
    >>> est = Ridge().fit([[0.0], [1.0]], [0.0, 1.0])
    >>> convert_linear_regressor(est, [ir.Feature("a")], Context(["a"])).predict.type
    'float'
    """
    return Compiled(predict=_single_output_scores(est, inputs, ctx), refuse=error_on_missing(est, inputs, ctx))


@register(PoissonRegressor, GammaRegressor, TweedieRegressor)
def convert_glm(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``predict`` = inverse link of ``X @ coef_ + intercept_`` (``exp`` for the log link).

    >>> from sklearn.linear_model import PoissonRegressor
    >>> from indb.compilers.converters import Context
    >>> est = PoissonRegressor().fit([[0.0], [1.0]], [1.0, 2.0])
    >>> convert_glm(est, [ir.Feature("a")], Context(["a"])).predict.name
    'exp'
    """
    from sklearn._loss.link import IdentityLink, LogLink  # noqa: PLC0415  (private, but it is what predict uses)

    z = _single_output_scores(est, inputs, ctx)
    link = est._base_loss.link
    if isinstance(link, LogLink):
        return Compiled(predict=ir.func("exp", z), refuse=error_on_missing(est, inputs, ctx))
    if isinstance(link, IdentityLink):
        return Compiled(predict=z, refuse=error_on_missing(est, inputs, ctx))
    raise UnsupportedModelError(
        f"{estimator_name(est)}: link function {type(link).__name__} is not supported; supported: identity and log links"
    )


# ----------------------------------------------------------------- classifiers


def _classifier(est: Any, inputs: list[ir.Expr], ctx: Context, proba: str | None) -> Compiled:
    labels = class_labels(est)
    scores = _scores(est, inputs, ctx)
    if len(labels) == 2 and len(scores) != 1 or len(labels) > 2 and len(scores) != len(labels):
        raise UnsupportedModelError(
            f"{estimator_name(est)}: {len(scores)} score rows for {len(labels)} classes is not supported; "
            "supported: binary (one row) and multiclass (one row per class) models"
        )
    out = Compiled(
        predict=_predict_label(est, scores, labels, ctx),
        decision=scores[0] if len(scores) == 1 else scores,
        classes=tuple(python_scalar(c) for c in est.classes_),
        refuse=error_on_missing(est, inputs, ctx),
    )
    if proba == "logistic":
        # sklearn.utils.extmath.softmax: subtract the row maximum, exponentiate, divide by the sum
        out.proba = _expit_proba(scores) if len(scores) == 1 else ir.softmax(scores)
    elif proba == "ovr":
        out.proba = _expit_proba(scores)
    elif proba == "modified_huber":
        out.proba = _modified_huber_proba(scores)
    return out


@register(LogisticRegression, LogisticRegressionCV)
def convert_logistic_regression(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict, predict_proba (expit for two classes, softmax for more) and decision_function.

    >>> from sklearn.linear_model import LogisticRegression
    >>> from indb.compilers.converters import Context
    >>> est = LogisticRegression().fit([[0.0], [1.0]], ["no", "yes"])
    >>> len(convert_logistic_regression(est, [ir.Feature("a")], Context(["a"])).proba)
    2
    """
    if getattr(est, "multi_class", "deprecated") not in ("deprecated", "auto", "multinomial"):
        # scikit-learn < 1.7 could still fit one-vs-rest logistic regressions
        raise UnsupportedModelError(
            f"{estimator_name(est)}: multi_class={est.multi_class!r} is not supported; supported: 'auto'/'multinomial'"
        )
    return _classifier(est, inputs, ctx, "logistic")


@register(SGDClassifier)
def convert_sgd_classifier(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and decision_function; predict_proba only for loss='log_loss' or 'modified_huber'.

    >>> from sklearn.linear_model import SGDClassifier
    >>> from indb.compilers.converters import Context
    >>> est = SGDClassifier(loss="hinge").fit([[0.0], [1.0]], [0, 1])
    >>> convert_sgd_classifier(est, [ir.Feature("a")], Context(["a"])).proba is None
    True
    """
    proba = {"log_loss": "ovr", "modified_huber": "modified_huber"}.get(est.loss)
    return _classifier(est, inputs, ctx, proba)


@register(RidgeClassifier, RidgeClassifierCV)
def convert_ridge_classifier(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and decision_function (RidgeClassifier has no predict_proba).

    >>> from sklearn.linear_model import RidgeClassifier
    >>> from indb.compilers.converters import Context
    >>> est = RidgeClassifier().fit([[0.0], [1.0], [2.0]], ["a", "b", "c"])
    >>> len(convert_ridge_classifier(est, [ir.Feature("x")], Context(["x"])).decision)
    3
    """
    if est._label_binarizer.y_type_.startswith("multilabel"):
        raise UnsupportedModelError(
            f"{estimator_name(est)}: multilabel targets are not supported; supported: binary and multiclass targets"
        )
    return _classifier(est, inputs, ctx, None)


@register(LinearSVC)
def convert_linear_svc(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and decision_function (LinearSVC has no predict_proba).

    >>> from sklearn.svm import LinearSVC
    >>> from indb.compilers.converters import Context
    >>> est = LinearSVC().fit([[0.0], [1.0]], [0, 1])
    >>> convert_linear_svc(est, [ir.Feature("x")], Context(["x"])).predict.type
    'float'
    """
    return _classifier(est, inputs, ctx, None)
