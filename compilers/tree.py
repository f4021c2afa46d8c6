"""Converters for scikit-learn's single decision trees, and the tree pieces every
tree-based front end shares (forests and boosting in ``ensemble.py`` build on them).

Supported: ``DecisionTreeClassifier``, ``DecisionTreeRegressor``,
``ExtraTreeClassifier``, ``ExtraTreeRegressor`` (single output); ``predict`` and, for
classifiers, ``predict_proba``, with numeric or string class labels.

Semantics mirrored from scikit-learn 1.9 (``sklearn/tree/_tree.pyx``, ``_classes.py``):

* **The split test.** scikit-learn casts X to float32 and sends a row left when
  ``float32(x) <= threshold`` (threshold in float64). The IR compares the float64
  input directly with a bound folded at compile time by :func:`float32_le_bounds`:
  ``x <= B  <=>  float32(x) <= threshold`` for every float64 ``x`` (ties-to-even at
  float32 midpoints, subnormals, and values that round to +-inf included), so backends
  pay no cast at run time.
* **Missing values.** Where the estimator accepts NaN at predict time (its
  ``__sklearn_tags__().input_tags.allow_nan``: DecisionTree*, ExtraTree* with
  ``splitter="random"``, and the forests of them), a missing input follows the node's
  ``missing_go_to_left`` and the outputs are never missing. Where it rejects NaN
  (ExtraTree* with ``splitter="best"``, GradientBoosting), every output is missing
  for a row where an input the model uses is missing (``Context.guard_missing``: NULL,
  or an error with ``on_missing="error"``). A missing input the model never splits on
  does not matter.
* **Values beyond the float32 range** (+-1e300, +-inf). scikit-learn refuses them
  ("Input X contains infinity or a value too large for dtype('float32')"). We keep the
  tree semantics: ``float32(x)`` is +-inf, compared with the threshold. So +1e300 and
  +inf go right at every finite threshold and left at a threshold of +inf (the split
  scikit-learn makes to separate missing values from all others); -1e300 and -inf go
  left everywhere. For every threshold scikit-learn produces (finite midpoints of
  float32 training values, or +inf) this equals scikit-learn's own prediction for the
  row with the value replaced by +-FLT_MAX, which is how the tests check it.
* **Outputs.** ``predict_proba`` is the leaf's class fractions (``tree_.value``);
  ``predict`` is the first class of largest probability (``numpy.argmax``).

A tree becomes an ``ir.TreeEnsemble`` of one tree with base 0.0: adding a leaf to
0.0 changes no value.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from indb import ir
from indb.compilers.converters import Compiled, Context, class_labels, register
from indb.compilers.trees_shared import float32_le_bounds
from indb.errors import UnsupportedModelError

# ------------------------------------------------------------------ shared pieces


class Nodes(NamedTuple):
    """One tree as arrays, before its features are renumbered for an ensemble.

    ``feature`` indexes the estimator's inputs (-1 for a leaf); ``threshold`` is the
    bound the IR compares with; ``value`` is (n_nodes, n_outputs), zero at internal
    nodes; ``categories`` is None or, per node, the input values that go left.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    categories: list | None = None


def sklearn_tree_nodes(tree: Any, value: np.ndarray) -> Nodes:
    """A fitted ``sklearn.tree._tree.Tree`` with float32 split semantics, leaves ``value``."""
    leaf = tree.children_left < 0
    thr = np.where(leaf, 0.0, tree.threshold)
    return Nodes(
        feature=np.where(leaf, -1, tree.feature),
        threshold=np.where(leaf, 0.0, float32_le_bounds(thr)),
        left=np.where(leaf, -1, tree.children_left),
        right=np.where(leaf, -1, tree.children_right),
        missing_left=~leaf & (tree.missing_go_to_left != 0),
        value=np.where(leaf[:, None], value, 0.0),
    )


def build_ensemble(parts: Sequence[Nodes], inputs: Sequence[ir.Expr], base: Sequence[float]) -> tuple[ir.TreeEnsemble, list[ir.Expr]]:
    """An ``ir.TreeEnsemble`` over the inputs the trees split on, and those inputs.

    Trees are kept in order, so the backends add their leaves in the order the
    estimator does. Split features are renumbered to positions in the used inputs:

    >>> stump = Nodes(np.array([2, -1, -1]), np.array([0.5, 0.0, 0.0]), np.array([1, -1, -1]),
    ...               np.array([2, -1, -1]), np.array([False] * 3), np.array([[0.0], [1.0], [2.0]]))
    >>> ens, used = build_ensemble([stump], [ir.Feature(n) for n in "abc"], [0.0])
    >>> used, ens.trees[0].feature
    ([Feature(name='c', kind='float')], (0, -1, -1))
    """
    splits = [p.feature[p.feature >= 0] for p in parts]
    used = np.unique(np.concatenate(splits)) if splits else np.empty(0, dtype=np.intp)
    position = np.full(len(inputs), -1, dtype=np.intp)
    position[used] = np.arange(len(used))
    trees = []
    for p in parts:
        feature = np.where(p.feature >= 0, position[np.maximum(p.feature, 0)], -1)
        trees.append(
            ir.Tree(
                feature=tuple(feature.tolist()),
                threshold=tuple(p.threshold.tolist()),
                left=tuple(p.left.tolist()),
                right=tuple(p.right.tolist()),
                missing_left=tuple(p.missing_left.tolist()),
                value=tuple(map(tuple, p.value.tolist())),
                categories=tuple(p.categories) if p.categories is not None else (),
            )
        )
    used_inputs = [inputs[i] for i in used.tolist()]
    ens = ir.TreeEnsemble(tuple(used_inputs), tuple(trees), len(base), tuple(float(b) for b in base))
    return ens, used_inputs


def float32_ensemble(trees: Sequence[Any], values: Sequence[np.ndarray], inputs: Sequence[ir.Expr], ctx: Context, what: str, base: Sequence[float] | None = None) -> tuple[ir.TreeEnsemble, list[ir.Expr]]:
    """A tree ensemble of scikit-learn ``Tree`` objects (float32 split semantics)."""
    inputs = [ctx.as_float(x, what) for x in inputs]
    parts = [sklearn_tree_nodes(t, v) for t, v in zip(trees, values)]
    n_outputs = values[0].shape[1]
    return build_ensemble(parts, inputs, base if base is not None else [0.0] * n_outputs)


def allows_nan(est: Any) -> bool:
    """Whether the estimator's ``predict`` accepts NaN (and so has a rule for it).

    >>> allows_nan(ExtraTreeRegressor()), allows_nan(ExtraTreeRegressor(splitter="best"))
    (True, False)
    """
    return bool(est.__sklearn_tags__().input_tags.allow_nan)


def guard_outputs(items: Sequence[ir.Expr], used: Sequence[ir.Expr], ctx: Context, what: str, nan_ok: bool) -> list[ir.Expr]:
    """``items``, each made missing for rows with a missing used input unless the model handles NaN."""
    if nan_ok:
        return list(items)
    return [ctx.guard_missing(used, e, what) for e in items]


def refuse_multi_output(est: Any) -> None:
    n = getattr(est, "n_outputs_", 1)
    if n != 1:
        raise UnsupportedModelError(
            f"{type(est).__name__} fitted on {n} targets (multi-output) is not supported by indb; fit one model per target"
        )


def vote_outputs(est: Any, proba: list[ir.Expr], used: Sequence[ir.Expr], ctx: Context, nan_ok: bool) -> Compiled:
    """``predict`` as scikit-learn's ``classes_[argmax(predict_proba)]`` (first class on ties)."""
    name = type(est).__name__
    predict = ir.ArgMax(tuple(proba), class_labels(est))
    (predict,) = guard_outputs([predict], used, ctx, f"{name}.predict", nan_ok)
    proba = guard_outputs(proba, used, ctx, f"{name}.predict_proba", nan_ok)
    return Compiled(predict=predict, proba=proba, classes=tuple(est.classes_))


# ------------------------------------------------------------------ converters


@register(DecisionTreeClassifier, ExtraTreeClassifier)
def convert_tree_classifier(est: Any, inputs: list, ctx: Context) -> Compiled:
    refuse_multi_output(est)
    tree = est.tree_
    ens, used = float32_ensemble([tree], [tree.value[:, 0, :]], inputs, ctx, type(est).__name__)
    proba = [ir.Index(ens, k) for k in range(ens.n_outputs)]
    return vote_outputs(est, proba, used, ctx, allows_nan(est))


@register(DecisionTreeRegressor, ExtraTreeRegressor)
def convert_tree_regressor(est: Any, inputs: list, ctx: Context) -> Compiled:
    refuse_multi_output(est)
    tree = est.tree_
    ens, used = float32_ensemble([tree], [tree.value[:, 0, :]], inputs, ctx, type(est).__name__)
    (predict,) = guard_outputs([ir.Index(ens, 0)], used, ctx, f"{type(est).__name__}.predict", allows_nan(est))
    return Compiled(predict=predict)
