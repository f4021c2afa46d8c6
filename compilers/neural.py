"""Converters for scikit-learn's multi-layer perceptrons: ``MLPClassifier`` and ``MLPRegressor``.

The IR is scikit-learn's ``_forward_pass_fast``, layer by layer: each unit is
``activation(sum_i h_i * W[i, j] + b[j])`` (the dot product, then the intercept, as
``safe_sparse_dot(h, W) + b``), with the hidden activation ``identity``, ``logistic``
(``expit``), ``tanh`` or ``relu`` (``max(z, 0)``, which keeps NaN like
``numpy.maximum``), and the output activation scikit-learn chose at fit time:

* ``MLPRegressor``: ``identity`` (squared error) or ``exp`` (Poisson loss); one target.
* ``MLPClassifier`` with two classes: ``logistic``; ``predict_proba`` is
  ``[1 - p, p]`` and ``predict`` is ``classes_[1]`` when ``p > 0.5`` (LabelBinarizer's
  threshold; a NaN ``p`` gives ``classes_[0]``, as ``NaN > 0.5`` is false).
* ``MLPClassifier`` with more classes: ``softmax`` (``ir.softmax``: subtract the row
  maximum, exponentiate, divide by the sum; its -700 clamp changes a probability below
  1e-304 by less than 1e-304) and ``predict`` is ``numpy.argmax``: the first largest
  probability, or the first NaN one when a probability is NaN.

Every unit of a layer is built once and referenced by every unit of the next layer, so
the IR grows with the number of weights, not with the number of paths through the
network. SQL that writes each shared unit out at every use is much larger (see
``ir.inline_size``): a scalar expression refuses wide networks, while ``--table`` SQL and
deployed versions name each unit once (a CTE column, a PL/pgSQL variable): the 20 -> 64
-> 64 MLP is about 355 kB of SQL on PostgreSQL, 310 kB on DuckDB, 390 kB on SQLite.

scikit-learn multiplies layers with BLAS (blocked sums, fused multiply-add); the IR adds
each dot product left to right, so outputs agree to a few units in the last place.

Missing values: MLPs refuse NaN, so a row with a missing input has no output: the
arithmetic propagates NaN, and the class label (which a comparison or the NaN rule of
``argmax`` above would turn into a value) is guarded (``Context.guard_missing``).
+-1e300 inputs follow IEEE-754 like numpy, including NaN from ``inf - inf`` deep in
the network, where scikit-learn's own label rules above apply.

Refused: multi-label classifiers and multi-output regressors (``n_outputs_ > 1``).

    >>> from sklearn.neural_network import MLPRegressor
    >>> from indb.compilers import compile_model
    >>> net = MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0).fit([[0.0], [1.0]], [0.0, 1.0])
    >>> compile_model(net).output_kinds
    ('predict',)
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from sklearn.neural_network import MLPClassifier, MLPRegressor

from indb import ir
from indb.compilers.converters import Compiled, Context, class_labels, estimator_name, python_scalar, register
from indb.errors import UnsupportedModelError

_ZERO = ir.const(0.0)

ACTIVATIONS: dict[str, Callable[[ir.Expr], ir.Expr]] = {
    "identity": lambda z: z,
    "logistic": lambda z: ir.func("expit", z),
    "tanh": lambda z: ir.func("tanh", z),
    "relu": lambda z: ir.func("max", z, _ZERO),
    "exp": lambda z: ir.func("exp", z),
}


def _activation(est: Any, which: str) -> Callable[[ir.Expr], ir.Expr]:
    try:
        return ACTIVATIONS[which]
    except KeyError:
        raise UnsupportedModelError(
            f"{estimator_name(est)}: activation {which!r} is not supported; supported: {', '.join(sorted(ACTIVATIONS))}"
        ) from None


def output_layer(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> list[ir.Expr]:
    """The pre-activation values of the output layer, each hidden unit built once.

    >>> from indb.compilers.converters import Context
    >>> net = MLPRegressor(hidden_layer_sizes=(2,), max_iter=2, random_state=0).fit([[0.0], [1.0]], [0.0, 1.0])
    >>> len(output_layer(net, [ir.Feature("a")], Context(["a"])))
    1
    """
    hidden = _activation(est, est.activation)
    layer = [ctx.as_float(x, estimator_name(est)) for x in inputs]
    last = len(est.coefs_) - 1
    for i, (weights, bias) in enumerate(zip(est.coefs_, est.intercepts_)):
        weights = np.asarray(weights, dtype=np.float64)
        bias = np.asarray(bias, dtype=np.float64)
        z = [ir.linear(layer, weights[:, j], float(bias[j])) for j in range(weights.shape[1])]
        if i == last:
            return z
        layer = [hidden(u) for u in z]
    raise UnsupportedModelError(f"{estimator_name(est)} has no layers")  # pragma: no cover - sklearn always has one


def numpy_argmax(items: Sequence[ir.Expr], labels: tuple) -> ir.Expr:
    """``labels[numpy.argmax(items)]``: the first NaN item wins, else the first largest.

    >>> numpy_argmax([ir.Feature("a"), ir.Feature("b")], ("x", "y")).whens[0]
    (IsMissing(operand=Feature(name='a', kind='float')), Const(value='x', kind='text'))
    """
    kind = ir.TEXT if any(isinstance(v, str) for v in labels) else ir.FLOAT
    whens = tuple((ir.IsMissing(p), ir.const(v, kind)) for p, v in zip(items, labels))
    return ir.Case(whens, ir.ArgMax(tuple(items), labels))


def _refuse_multi_output(est: Any) -> None:
    if est.n_outputs_ != 1 and not (isinstance(est, MLPClassifier) and est.out_activation_ == "softmax"):
        kind = "multi-label classification" if isinstance(est, MLPClassifier) else "multi-output regression"
        raise UnsupportedModelError(
            f"{estimator_name(est)}: {kind} (n_outputs_={est.n_outputs_}) is not supported; supported: one target"
        )


@register(MLPRegressor)
def convert_mlp_regressor(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``predict``: the forward pass with the identity (or, for loss='poisson', exp) output.

    >>> from indb.compilers.converters import Context
    >>> net = MLPRegressor(hidden_layer_sizes=(2,), max_iter=2, random_state=0).fit([[0.0], [1.0]], [0.0, 1.0])
    >>> convert_mlp_regressor(net, [ir.Feature("a")], Context(["a"])).predict.type
    'float'
    """
    _refuse_multi_output(est)
    (z,) = output_layer(est, inputs, ctx)
    return Compiled(predict=_activation(est, est.out_activation_)(z))


@register(MLPClassifier)
def convert_mlp_classifier(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``predict`` and ``predict_proba`` (logistic output for two classes, softmax for more).

    >>> from indb.compilers.converters import Context
    >>> net = MLPClassifier(hidden_layer_sizes=(2,), max_iter=2, random_state=0).fit([[0.0], [1.0]], ["n", "y"])
    >>> len(convert_mlp_classifier(net, [ir.Feature("a")], Context(["a"])).proba)
    2
    """
    _refuse_multi_output(est)
    name = estimator_name(est)
    labels = class_labels(est)
    z = output_layer(est, inputs, ctx)
    if est.out_activation_ == "softmax":
        proba = ir.softmax(z)
        label = numpy_argmax(proba, labels)
    elif est.out_activation_ == "logistic" and len(labels) == 2:
        p = ir.func("expit", z[0])
        proba = [ir.sub(ir.const(1.0), p), p]
        kind = ir.TEXT if isinstance(labels[0], str) else ir.FLOAT
        label = ir.Case(((ir.Compare(">", p, ir.const(0.5)), ir.const(labels[1], kind)),), ir.const(labels[0], kind))
    else:
        raise UnsupportedModelError(
            f"{name} with output activation {est.out_activation_!r} and {len(labels)} classes is not supported; "
            "supported: binary (logistic) and multiclass (softmax)"
        )
    xs = [x for x in inputs if not isinstance(x, ir.Const)]
    predict = ctx.guard_missing(xs, label, f"{name}.predict")
    return Compiled(predict=predict, proba=proba, classes=tuple(python_scalar(c) for c in est.classes_))
