"""Converters for scikit-learn's meta-estimators: calibration, voting, stacking, frozen models.

Every member is compiled by its own converter (``compile_estimator``), so these work
over any supported estimator or pipeline, and the members' refused rows stay refused.

* ``CalibratedClassifierCV`` (``method='sigmoid'`` or ``'isotonic'``; ``ensemble``
  True or False; a ``FrozenEstimator`` base): for each of ``calibrated_classifiers_``,
  the base classifier's ``decision_function`` if it has one, else ``predict_proba``
  (the positive-class column for two classes), as scikit-learn's
  ``_get_response_values`` picks; each column through its calibrator --
  ``expit(-(a * t + b))`` for sigmoid, ``numpy.interp`` over the isotonic thresholds
  after clipping to ``[X_min_, X_max_]`` for isotonic (the slopes folded with numpy);
  then ``1 - p`` for the negative class (two classes) or division by the row sum
  (uniform when it is 0), and probabilities in ``(1, 1 + 1e-5]`` set to 1. The
  classifiers' probabilities are added up in order and divided by their number;
  ``predict`` is the first class of largest mean probability.
* ``VotingClassifier``: ``voting='soft'``: ``predict_proba`` is ``numpy.average`` of
  the members' probabilities (with ``weights``: ``sum(p_m * w_m) / sum(w)``), and
  ``predict`` its first largest class; ``voting='hard'``: each member's predicted
  class gets its weight (``numpy.bincount``), and the first class with the largest
  total wins. ``VotingRegressor``: the (weighted) average of the members' predictions.
* ``StackingClassifier`` / ``StackingRegressor``: the members' outputs per
  ``stack_method_`` (``predict_proba`` without its first column for two classes,
  ``decision_function``, or ``predict``), then the raw inputs when ``passthrough``,
  go into the final estimator; the classifier maps the final estimator's class index
  back to ``classes_``, and offers its ``predict_proba`` and ``decision_function``
  where it has them.
* ``FrozenEstimator``: the wrapped estimator.

Missing values: scikit-learn passes the rows to every member, and the whole call fails
when one member refuses a row. A compiled member that refuses NaN gives missing
outputs on a row with a missing input, so such a row (a missing input, and a part
without an answer) has every output missing (``Compiled.refuse``); members that route
NaN (trees, HistGradientBoosting, pipelines with an imputer) score it when all of them
do. The final estimator of a stack is treated the same way over the stacked features,
and the isotonic calibrator refuses a NaN score. A member output that is NaN without a
missing input (``inf - inf`` on +-1e300 inputs) flows on as in numpy: averages keep it,
and the label is ``numpy.argmax``'s (the first NaN). Hard voting makes the label
missing when a member's own label is missing (scikit-learn's members always give one).

Refused: ``CalibratedClassifierCV(method='temperature')``, negative voting weights,
multilabel stacking, a stacking member whose ``predict`` gives text labels (a prefit
member), and members indb cannot compile (named in the error).

    >>> from sklearn.ensemble import VotingRegressor
    >>> from sklearn.linear_model import LinearRegression, Ridge
    >>> from indb.compilers import compile_model
    >>> v = VotingRegressor([("a", LinearRegression()), ("b", Ridge())]).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.5])
    >>> compile_model(v).output_kinds
    ('predict',)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import LabelEncoder

from indb import ir
from indb.compilers.neural import numpy_argmax
from indb.compilers.converters import Compiled, Context, class_labels, compile_estimator, estimator_name, python_scalar, register
from indb.errors import UnsupportedModelError

_METHOD_OUTPUT = {"predict_proba": "proba", "decision_function": "decision", "predict": "predict"}


def _response_method(est: Any, methods: Sequence[str]) -> str:
    """The first of ``methods`` the fitted estimator has (scikit-learn's ``_check_response_method``)."""
    for m in methods:
        if getattr(est, m, None) is not None:
            return m
    raise UnsupportedModelError(f"{estimator_name(est)} has none of {', '.join(methods)}")


def member_output(owner: Any, member: Any, res: Compiled, method: str) -> list[ir.Expr]:
    """The columns ``member.<method>(X)`` gives, from its compiled form.

    >>> from sklearn.linear_model import LinearRegression
    >>> member_output(None, LinearRegression(), Compiled(predict=ir.Feature("z")), "predict")
    [Feature(name='z', kind='float')]
    """
    out = getattr(res, _METHOD_OUTPUT[method])
    if out is None:
        raise UnsupportedModelError(
            f"{estimator_name(owner) if owner is not None else 'the model'}: member {estimator_name(member)}.{method} is not supported by indb"
        )
    return list(out) if isinstance(out, list) else [out]


def _merge_refusals(*results: Compiled) -> list[tuple[ir.Expr, str]]:
    out: list[tuple[ir.Expr, str]] = []
    for r in results:
        out.extend(r.refuse)
    return out


def _lost_rows(owner: Any, answers: Sequence[ir.Expr], values: Sequence[ir.Expr], what: str) -> list[tuple[ir.Expr, str]]:
    """The rows scikit-learn refuses because a part refuses a missing value.

    ``answers`` holds one output of each part (a member, the base classifier, the final
    estimator). A part that refuses NaN gives a missing output exactly where one of its
    ``values`` is missing; one with a rule for NaN (a tree, an imputing pipeline) gives a
    value. Estimator tags cannot tell (a Pipeline's say nothing of its steps), the
    compiled parts can. Outputs that are NaN while no value is missing (``inf - inf``)
    are not refusals: they flow on as in numpy.
    """
    gate = ir.any_missing(values)
    lost = [ir.IsMissing(a) for a in answers if not isinstance(a, ir.Const)]
    if isinstance(gate, ir.Const) or not lost:
        return []
    cond = ir.And((gate, lost[0] if len(lost) == 1 else ir.Or(tuple(lost))))
    return [(cond, f"{estimator_name(owner)}: {what} is NULL or NaN, and a part of the model refuses it")]


# ------------------------------------------------------------------ frozen


@register(FrozenEstimator)
def convert_frozen(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """The wrapped, already fitted estimator.

    >>> from sklearn.linear_model import LinearRegression
    >>> from indb.compilers.converters import Context
    >>> f = FrozenEstimator(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]))
    >>> convert_frozen(f, [ir.Feature("a")], Context(["a"])).predict is not None
    True
    """
    return compile_estimator(est.estimator, inputs, ctx)


# ------------------------------------------------------------------ calibration


def _sigmoid(calibrator: Any, t: ir.Expr) -> ir.Expr:
    return ir.func("expit", ir.func("neg", ir.add(ir.mul(ir.const(float(calibrator.a_)), t), ir.const(float(calibrator.b_)))))


def _isotonic(owner: Any, calibrator: Any, t: ir.Expr, ctx: Context) -> ir.Expr:
    """``IsotonicRegression(out_of_bounds='clip').predict``: clip, then ``numpy.interp``."""
    xp = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
    fp = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
    if len(fp) == 1:
        value: ir.Expr = ir.const(float(fp[0]))
    else:
        with np.errstate(all="ignore"):
            slopes = (fp[1:] - fp[:-1]) / (xp[1:] - xp[:-1])
        if not np.isfinite(slopes).all():
            raise UnsupportedModelError(
                f"{estimator_name(owner)}: an isotonic calibrator with a non-finite slope (thresholds too close) is not supported"
            )
        clipped = ir.func("min", ir.func("max", t, ir.const(float(calibrator.X_min_))), ir.const(float(calibrator.X_max_)))
        # x in [xp[j], xp[j+1]) is slope_j * (x - xp[j]) + fp[j] (fp[j] exactly at xp[j]); x at the top is fp[-1]
        whens = tuple(
            (ir.Compare("<", clipped, ir.const(float(xp[j + 1]))), ir.add(ir.mul(ir.const(float(slopes[j])), ir.sub(clipped, ir.const(float(xp[j])))), ir.const(float(fp[j]))))
            for j in range(len(xp) - 1)
        )
        value = ir.Case(whens, ir.const(float(fp[-1])))
    # scikit-learn refuses a missing score; the steps above would turn it into a value
    return ctx.guard_missing([t], value, f"{estimator_name(owner)} isotonic calibration")


def _calibrated_proba(owner: Any, cc: Any, inputs: list[ir.Expr], ctx: Context) -> tuple[list[ir.Expr], list[tuple[ir.Expr, str]]]:
    """One ``_CalibratedClassifier.predict_proba``, and the rows it refuses."""
    base = cc.estimator
    res = compile_estimator(base, inputs, ctx)
    method = _response_method(base, ["decision_function", "predict_proba"])
    columns = member_output(owner, base, res, method)
    if method == "predict_proba" and len(base.classes_) == 2:
        columns = columns[-1:]  # the positive class, classes_[-1]
    n_classes = len(cc.classes)
    positions = LabelEncoder().fit(cc.classes).transform(base.classes_)
    proba: list[ir.Expr] = [ir.const(0.0)] * n_classes
    for k, column, calibrator in zip(positions, columns, cc.calibrators):
        k = int(k) + 1 if n_classes == 2 else int(k)
        proba[k] = _sigmoid(calibrator, column) if cc.method == "sigmoid" else _isotonic(owner, calibrator, column, ctx)
    if n_classes == 2:
        proba[0] = ir.sub(ir.const(1.0), proba[1])
    else:
        total = ir.pairwise_sum(proba)
        zero = ir.Compare("==", total, ir.const(0.0))
        proba = [ir.Case(((zero, ir.const(1.0 / n_classes)),), ir.div(p, total)) for p in proba]
    over = 1.0 + 1e-5
    proba = [ir.Case(((ir.And((ir.Compare("<", ir.const(1.0), p), ir.Compare("<=", p, ir.const(over)))), ir.const(1.0)),), p) for p in proba]
    refuse = list(res.refuse)
    score_missing = ir.any_missing(columns[: len(cc.calibrators)])
    if cc.method == "isotonic" and not isinstance(score_missing, ir.Const):
        # IsotonicRegression.predict validates its input: a NaN score fails the whole call
        refuse.append((score_missing, f"{estimator_name(owner)}: {estimator_name(base)} gives a NaN score, which isotonic calibration refuses"))
    refuse += _lost_rows(owner, columns[:1], inputs, "an input")
    return proba, refuse


@register(CalibratedClassifierCV)
def convert_calibrated_classifier(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict and predict_proba of a CalibratedClassifierCV (sigmoid or isotonic).

    >>> from sklearn.linear_model import LogisticRegression
    >>> from indb.compilers.converters import Context
    >>> c = CalibratedClassifierCV(LogisticRegression(), cv=2).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> len(convert_calibrated_classifier(c, [ir.Feature("a")], Context(["a"])).proba)
    2
    """
    if est.method not in ("sigmoid", "isotonic"):
        raise UnsupportedModelError(f"{estimator_name(est)}(method={est.method!r}) is not supported; supported: 'sigmoid', 'isotonic'")
    labels = class_labels(est)
    parts = [_calibrated_proba(est, cc, inputs, ctx) for cc in est.calibrated_classifiers_]
    n = len(parts)
    mean = []
    for k in range(len(labels)):
        total = ir.Sum(tuple(p[k] for p, _ in parts)) if n > 1 else parts[0][0][k]
        mean.append(ir.div(total, ir.const(float(n))))
    refuse = [r for _, part_refuse in parts for r in part_refuse]
    return Compiled(
        predict=numpy_argmax(mean, labels),
        proba=mean,
        classes=tuple(python_scalar(c) for c in est.classes_),
        refuse=refuse,
    )


# ------------------------------------------------------------------ voting


def _weights(est: Any) -> list[float] | None:
    w = est._weights_not_none
    if w is None:
        return None
    w = [float(v) for v in w]
    if any(v < 0 for v in w):
        raise UnsupportedModelError(f"{estimator_name(est)} with negative weights is not supported; supported: weights >= 0")
    return w


def _average(est: Any, columns: Sequence[ir.Expr], weights: list[float] | None, shape: tuple[int, ...], axis: int) -> ir.Expr:
    """``numpy.average(a, axis, weights)`` over members, ``a`` of ``shape`` with members along ``axis``.

    numpy adds the members in order along that axis (it is never the contiguous one).
    """
    if weights is None:
        total = ir.Sum(tuple(columns)) if len(columns) > 1 else columns[0]
        return ir.div(total, ir.const(float(len(columns))))
    terms = [ir.mul(c, ir.const(w)) for c, w in zip(columns, weights)]
    total = ir.Sum(tuple(terms)) if len(terms) > 1 else terms[0]
    # numpy's own sum of the weights for this layout (returned=True gives it): the same divisor, bit for bit
    _, scale = np.average(np.zeros(shape), axis=axis, weights=est._weights_not_none, returned=True)
    return ir.div(total, ir.const(float(np.ravel(scale)[0])))


def _members(est: Any, inputs: list[ir.Expr], ctx: Context) -> list[tuple[Any, Compiled]]:
    return [(m, compile_estimator(m, inputs, ctx)) for m in est.estimators_]


@register(VotingClassifier)
def convert_voting_classifier(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict (soft or hard voting) and, for soft voting, predict_proba.

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from indb.compilers.converters import Context
    >>> v = VotingClassifier([("l", LogisticRegression()), ("g", GaussianNB())], voting="soft")
    >>> v = v.fit([[0.0], [1.0], [2.0], [3.0]], ["n", "n", "y", "y"])
    >>> len(convert_voting_classifier(v, [ir.Feature("a")], Context(["a"])).proba)
    2
    """
    labels = class_labels(est)
    weights = _weights(est)
    members = _members(est, inputs, ctx)
    name = estimator_name(est)
    k = len(labels)
    out = Compiled(classes=tuple(python_scalar(c) for c in est.classes_), refuse=_merge_refusals(*(r for _, r in members)))
    if est.voting == "soft":
        probas = [member_output(est, m, r, "predict_proba") for m, r in members]
        for (m, _), p in zip(members, probas):
            if len(p) != k:
                raise UnsupportedModelError(f"{name}: member {estimator_name(m)} gives {len(p)} probabilities for {k} classes")
        out.refuse += _lost_rows(est, [p[0] for p in probas], inputs, "an input")
        # _collect_probas stacks (members, rows, classes); the average is over axis 0
        out.proba = [_average(est, [p[c] for p in probas], weights, (len(probas), 1, k), 0) for c in range(k)]
        out.predict = numpy_argmax(out.proba, labels)
        return out
    predictions = [member_output(est, m, r, "predict")[0] for m, r in members]
    out.refuse += _lost_rows(est, predictions, inputs, "an input")
    w = weights if weights is not None else [1.0] * len(predictions)
    votes = []
    for c in range(k):
        terms = [ir.Case(((ir.Compare("==", p, ir.const(float(c))), ir.const(wm)),), ir.const(0.0)) for p, wm in zip(predictions, w)]
        votes.append(ir.Sum(tuple(terms)) if len(terms) > 1 else terms[0])
    # a member with no prediction would otherwise just lose its vote
    out.predict = ctx.guard_missing(predictions, ir.ArgMax(tuple(votes), labels), f"{name}.predict")
    return out


@register(VotingRegressor)
def convert_voting_regressor(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict: the (weighted) average of the members' predictions.

    >>> from sklearn.linear_model import LinearRegression
    >>> from indb.compilers.converters import Context
    >>> v = VotingRegressor([("a", LinearRegression())], weights=[2]).fit([[0.0], [1.0]], [0.0, 1.0])
    >>> convert_voting_regressor(v, [ir.Feature("x")], Context(["x"])).predict.op
    '/'
    """
    members = _members(est, inputs, ctx)
    predictions = [member_output(est, m, r, "predict")[0] for m, r in members]
    # _predict gives (rows, members); the average is over axis 1
    average = _average(est, predictions, _weights(est), (1, len(predictions)), 1)
    refuse = _merge_refusals(*(r for _, r in members)) + _lost_rows(est, predictions, inputs, "an input")
    return Compiled(predict=average, refuse=refuse)


# ------------------------------------------------------------------ stacking


def _meta_features(est: Any, inputs: list[ir.Expr], ctx: Context) -> tuple[list[ir.Expr], list[ir.Expr], list[Compiled]]:
    """The final estimator's inputs, one output of each member, and the compiled members."""
    binary = hasattr(est, "classes_") and len(est.classes_) == 2
    meta: list[ir.Expr] = []
    answers: list[ir.Expr] = []
    results = []
    for member, method in zip(est.estimators_, est.stack_method_):
        res = compile_estimator(member, inputs, ctx)
        results.append(res)
        columns = member_output(est, member, res, method)
        if method == "predict_proba" and binary:
            columns = columns[1:]
        if method == "predict" and columns[0].type == ir.TEXT:
            raise UnsupportedModelError(
                f"{estimator_name(est)}: member {estimator_name(member)} predicts text labels (a prefit member?); "
                "supported: members fitted by the stacking estimator, or stack_method 'predict_proba'/'decision_function'"
            )
        meta.extend(columns)
        answers.append(columns[0])
    if est.passthrough:
        meta.extend(ctx.as_float(x, f"{estimator_name(est)} passthrough") for x in inputs)
    return meta, answers, results


def _stack(est: Any, inputs: list[ir.Expr], ctx: Context) -> tuple[Compiled, list[tuple[ir.Expr, str]]]:
    meta, answers, results = _meta_features(est, inputs, ctx)
    final = est.final_estimator_
    res = compile_estimator(final, meta, ctx)
    if res.predict is None:
        raise UnsupportedModelError(f"{estimator_name(est)}: final estimator {estimator_name(final)}.predict is not supported by indb")
    refuse = _merge_refusals(*results, res)
    refuse += _lost_rows(est, answers, inputs, "an input")
    refuse += _lost_rows(est, [res.predict], meta, "a stacked feature")
    return res, refuse


@register(StackingClassifier)
def convert_stacking_classifier(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict, and predict_proba / decision_function where the final estimator has them.

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from indb.compilers.converters import Context
    >>> s = StackingClassifier([("g", GaussianNB())], cv=2).fit([[0.0], [1.0], [2.0], [3.0]], ["n", "n", "y", "y"])
    >>> convert_stacking_classifier(s, [ir.Feature("a")], Context(["a"])).classes
    ('n', 'y')
    """
    if isinstance(est._label_encoder, list):
        raise UnsupportedModelError(f"{estimator_name(est)} with multilabel targets is not supported; supported: binary and multiclass")
    labels = class_labels(est)
    res, refuse = _stack(est, inputs, ctx)
    kind = ir.TEXT if isinstance(labels[0], str) else ir.FLOAT
    # the final estimator was fitted on class indices 0..k-1
    whens = tuple((ir.Compare("==", res.predict, ir.const(float(i))), ir.const(v, kind)) for i, v in enumerate(labels))
    predict = ir.Case(whens, ir.missing(kind))
    return Compiled(
        predict=predict,
        proba=res.proba,
        decision=res.decision,
        classes=tuple(python_scalar(c) for c in est.classes_),
        refuse=refuse,
    )


@register(StackingRegressor)
def convert_stacking_regressor(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict: the final estimator over the members' predictions (and the inputs with passthrough).

    >>> from sklearn.linear_model import LinearRegression, Ridge
    >>> from indb.compilers.converters import Context
    >>> s = StackingRegressor([("r", Ridge())], final_estimator=LinearRegression(), cv=2)
    >>> s = s.fit([[0.0], [1.0], [2.0], [3.0]], [0.0, 1.0, 2.0, 3.5])
    >>> convert_stacking_regressor(s, [ir.Feature("a")], Context(["a"])).predict.type
    'float'
    """
    res, refuse = _stack(est, inputs, ctx)
    return Compiled(predict=res.predict, refuse=refuse)
