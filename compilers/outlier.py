"""Converters for scikit-learn's outlier detectors: ``IsolationForest`` and ``OneClassSVM``.

Both offer ``decision_function`` and ``predict`` (+1 inlier, -1 outlier, as floats).
``score_samples`` is ``decision_function + offset_`` (``offset_`` is a constant of the
fitted model) and is available as IR through :func:`iforest_score_samples` and
:func:`ocsvm_score_samples`; the output contract has no kind of its own for it.

IsolationForest (``ensemble/_iforest.py``):

* each tree is applied as scikit-learn applies it: the input cast to float32 and sent
  left when ``float32(x) <= threshold`` (folded into a float64 bound by
  ``trees_shared.float32_le_bounds``; +-1e300 and +-inf become +-inf in float32); NaN follows
  the node's ``missing_go_to_left`` (IsolationForest accepts NaN and +-inf); with
  ``max_features < n_features`` each tree reads its own subset of columns
  (``estimators_features_``);
* a leaf contributes ``(node depth + c(n_node_samples)) - 1.0`` with scikit-learn's own
  ``_decision_path_lengths`` and ``_average_path_length_per_tree`` (the average path
  length ``c(n)``), computed once at compile time with numpy; the depths are added
  from 0, tree by tree, in ``estimators_`` order (scikit-learn's default sequential
  run; a joblib context with several threads would add them in the order threads
  finish);
* ``score_samples = -2 ** (-depths / (n_estimators * c(max_samples)))`` (0.5 when that
  denominator is 0), ``decision_function = score_samples - offset_``, and ``predict``
  is -1 where ``decision_function < 0``, else 1.

OneClassSVM: libsvm's one-class score (``svm.libsvm_scores``: the kernel expansion
minus ``rho``) is the ``decision_function``; ``predict`` is 1 when it is ``> 0``, else
-1 (libsvm's rule: a NaN score gives -1). It refuses NaN inputs: its outputs are
missing for a row with a missing input.

    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from indb.compilers import compile_model
    >>> f = IsolationForest(n_estimators=3, random_state=0).fit(np.arange(20.0).reshape(-1, 1))
    >>> compile_model(f).output_kinds
    ('predict', 'decision')
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.svm import OneClassSVM

from indb import ir
from indb.compilers.converters import Compiled, Context, register
from indb.compilers.svm import libsvm_scores
from indb.compilers.tree import build_ensemble, sklearn_tree_nodes


def _sign_label(negative: ir.Expr) -> ir.Expr:
    """-1 where ``negative`` holds, else 1."""
    return ir.Case(((negative, ir.const(-1.0)),), ir.const(1.0))


def _depths(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> ir.Expr:
    """The summed path lengths of a row over every tree of an IsolationForest."""
    xs = [ctx.as_float(x, type(est).__name__) for x in inputs]
    subsample = est._max_features != est.n_features_in_
    parts = []
    trees = zip(est.estimators_, est.estimators_features_, est._decision_path_lengths, est._average_path_length_per_tree)
    for member, features, depth, average in trees:
        tree = member.tree_
        leaf_value = (depth + average - 1.0).reshape(-1, 1)
        nodes = sklearn_tree_nodes(tree, leaf_value)
        if subsample:
            columns = np.asarray(features, dtype=np.intp)
            nodes = nodes._replace(feature=np.where(nodes.feature >= 0, columns[np.maximum(nodes.feature, 0)], -1))
        parts.append(nodes)
    ensemble, _ = build_ensemble(parts, xs, [0.0])
    return ir.Index(ensemble, 0)


def iforest_score_samples(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> ir.Expr:
    """``IsolationForest.score_samples`` as IR.

    >>> import numpy as np
    >>> from indb.compilers.converters import Context
    >>> f = IsolationForest(n_estimators=2, random_state=0).fit(np.arange(10.0).reshape(-1, 1))
    >>> iforest_score_samples(f, [ir.Feature("a")], Context(["a"])).name
    'neg'
    """
    denominator = len(est.estimators_) * _average_path_length([est._max_samples])[0]
    if denominator == 0:
        # one training sample: scikit-learn sets depth / denominator to 1
        return ir.func("neg", ir.const(0.5))
    depths = _depths(est, inputs, ctx)
    scores = ir.func("pow", ir.const(2.0), ir.func("neg", ir.div(depths, ir.const(float(denominator)))))
    return ir.func("neg", scores)


@register(IsolationForest)
def convert_isolation_forest(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """decision_function (``score_samples - offset_``) and predict (-1 where it is < 0, else 1).

    >>> import numpy as np
    >>> from indb.compilers.converters import Context
    >>> f = IsolationForest(n_estimators=2, random_state=0).fit(np.arange(10.0).reshape(-1, 1))
    >>> convert_isolation_forest(f, [ir.Feature("a")], Context(["a"])).predict.default
    Const(value=1.0, kind='float')
    """
    decision = ir.sub(iforest_score_samples(est, inputs, ctx), ir.const(float(est.offset_)))
    return Compiled(predict=_sign_label(ir.Compare("<", decision, ir.const(0.0))), decision=decision)


def ocsvm_score_samples(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> ir.Expr:
    """``OneClassSVM.score_samples`` (``decision_function + offset_``) as IR."""
    (score,) = libsvm_scores(est, inputs, ctx)
    return ir.add(score, ir.const(float(est.offset_[0] if np.ndim(est.offset_) else est.offset_)))


@register(OneClassSVM)
def convert_one_class_svm(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """decision_function (libsvm's one-class score) and predict (1 where it is > 0, else -1).

    >>> import numpy as np
    >>> from indb.compilers.converters import Context
    >>> s = OneClassSVM().fit(np.arange(10.0).reshape(-1, 1))
    >>> convert_one_class_svm(s, [ir.Feature("a")], Context(["a"])).predict.whens[0][0]
    IsMissing(operand=Feature(name='a', kind='float'))
    """
    (score,) = libsvm_scores(est, inputs, ctx)
    label = _sign_label(ir.Not(ir.Compare(">", score, ir.const(0.0))))
    xs = [x for x in inputs if not isinstance(x, ir.Const)]
    return Compiled(predict=ctx.guard_missing(xs, label, "OneClassSVM.predict"), decision=score)
