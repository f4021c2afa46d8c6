"""Converters for scikit-learn's tree ensembles: forests, GradientBoosting and
HistGradientBoosting. Each becomes one ``ir.TreeEnsemble`` (one output per class for
multiclass models), so a backend evaluates every tree once, and the IR adds the
leaves in the estimator's own order, from the estimator's own starting value.

Supported (single output; numeric or string class labels):

* ``RandomForestClassifier``, ``ExtraTreesClassifier``: ``predict``, ``predict_proba``;
  ``RandomForestRegressor``, ``ExtraTreesRegressor``: ``predict``.
  scikit-learn sums the trees' predictions in tree order from 0.0 and divides by
  ``n_estimators``; ``predict`` is ``classes_[argmax(proba)]`` (the first class on a
  tie, e.g. votes 0.5/0.5). With ``n_jobs > 1`` scikit-learn adds the trees in the
  order its threads finish; the IR keeps tree order (what ``n_jobs=1`` gives).
* ``GradientBoostingRegressor`` (every loss), ``GradientBoostingClassifier``
  (``log_loss`` binary and multiclass, ``exponential``): ``predict``, and for the
  classifier ``predict_proba`` and ``decision_function``. The raw score starts from the
  init estimator's raw prediction (``init=None``, i.e. the prior/mean/quantile
  ``Dummy*`` estimator, any other constant ``Dummy*`` init, or ``"zero"``) and adds
  ``learning_rate * leaf`` stage by stage; the product is folded into the leaves, the
  same float64 multiplication scikit-learn does. Binary ``predict`` is
  ``classes_[1]`` when the raw score is ``>= 0``; multiclass is ``argmax`` of the raw
  scores. Probabilities: ``expit(raw)`` (``expit(2 * raw)`` for the exponential loss)
  and ``1 - p`` for the negative class, or scikit-learn's softmax
  (``exp(raw - max) / sum``, ``ir.softmax``). GradientBoosting rejects NaN, so every output is missing
  for a row with a missing input the model uses (see ``tree.py``); its trees compare
  in float32 (``trees_shared.float32_le_bounds``).
* ``HistGradientBoostingRegressor`` (identity link: squared/absolute error, quantile;
  log link: poisson, gamma) and ``HistGradientBoostingClassifier`` (binary,
  multiclass): the raw score is the baseline plus each iteration's predictor output.
  Binary ``predict`` is ``classes_[1]`` only when the raw score is ``> 0``
  (scikit-learn's rule, unlike GradientBoosting's ``>= 0``).

HistGradientBoosting semantics (``_hist_gradient_boosting/_predictor.pyx``):

* Numeric splits compare the float64 input, ``x <= threshold``; a threshold of +inf
  sends every non-missing value left. +-inf and +-1e300 are accepted and compared.
* NaN follows each node's ``missing_go_to_left``.
* Categorical features (``categorical_features`` as indices, mask, names, or
  ``"from_dtype"`` with pandas categorical columns): scikit-learn first maps every
  categorical column through an internal ``OrdinalEncoder`` (sorted training
  categories; unknown values and missing values become NaN) and puts those columns
  first. A categorical split sends the categories in its bitset left and the other
  known categories right; NaN, and so any category not seen in training (an unseen
  string, a negative or fractional number that is not a training category, 1e300),
  follows ``missing_go_to_left``. The IR keeps the raw category values (strings make
  the feature a text input): a node whose missing values go left is written with its
  children swapped and the complementary set of known categories, so that anything
  outside the set lands where scikit-learn sends unknown categories. scikit-learn
  raises on +-inf in a categorical column (the encoder refuses infinity); the IR
  treats it as the unknown category it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn._loss.link import HalfLogitLink, IdentityLink, LogitLink, LogLink, MultinomialLogit
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from indb import ir
from indb.compilers.converters import Compiled, Context, class_labels, python_scalar, register
from indb.compilers.tree import (
    Nodes,
    allows_nan,
    build_ensemble,
    float32_ensemble,
    guard_outputs,
    refuse_multi_output,
    vote_outputs,
)
from indb.errors import CompileError, UnsupportedModelError

# ------------------------------------------------------------------ forests


def _forest(est: Any, inputs: list, ctx: Context) -> tuple[list[ir.Expr], list[ir.Expr], bool]:
    """The per-output means of a forest, the inputs they use, and whether NaN is routed."""
    refuse_multi_output(est)
    trees = [e.tree_ for e in est.estimators_]
    ens, used = float32_ensemble(trees, [t.value[:, 0, :] for t in trees], inputs, ctx, type(est).__name__)
    n = ir.const(float(len(trees)))
    means = [ir.div(ir.Index(ens, k), n) for k in range(ens.n_outputs)]
    # predict validates X with the first tree's rule, not the forest's own tags
    return means, used, allows_nan(est.estimators_[0])


@register(RandomForestClassifier, ExtraTreesClassifier)
def convert_forest_classifier(est: Any, inputs: list, ctx: Context) -> Compiled:
    proba, used, nan_ok = _forest(est, inputs, ctx)
    return vote_outputs(est, proba, used, ctx, nan_ok)


@register(RandomForestRegressor, ExtraTreesRegressor)
def convert_forest_regressor(est: Any, inputs: list, ctx: Context) -> Compiled:
    (mean,), used, nan_ok = _forest(est, inputs, ctx)
    (predict,) = guard_outputs([mean], used, ctx, f"{type(est).__name__}.predict", nan_ok)
    return Compiled(predict=predict)


# ------------------------------------------------------------------ links and outputs


def _inverse_link(est: Any, raw: ir.Expr) -> ir.Expr:
    """scikit-learn's ``loss.link.inverse`` for one raw score."""
    link = est._loss.link
    if isinstance(link, IdentityLink):
        return raw
    if isinstance(link, LogLink):
        return ir.func("exp", raw)
    if isinstance(link, LogitLink):
        return ir.func("expit", raw)
    if isinstance(link, HalfLogitLink):
        return ir.func("expit", ir.mul(ir.const(2.0), raw))
    raise UnsupportedModelError(f"{type(est).__name__}(loss={est.loss!r}): its link {type(link).__name__} is not supported by indb")


def _classifier_outputs(est: Any, ens: ir.TreeEnsemble, used: list[ir.Expr], ctx: Context, positive_op: str, nan_ok: bool) -> Compiled:
    """predict / predict_proba / decision_function of a boosted classifier from its raw scores.

    ``positive_op`` is the binary rule's comparison of the raw score with 0.
    """
    name = type(est).__name__
    labels = class_labels(est)
    raws = [ir.Index(ens, k) for k in range(ens.n_outputs)]
    if len(raws) == 1:
        (raw,) = raws
        p1 = _inverse_link(est, raw)
        proba = [ir.sub(ir.const(1.0), p1), p1]
        predict = ir.binary_label(raw, positive_op, 0.0, labels[0], labels[1])
        decision: ir.Expr | list[ir.Expr] = guard_outputs([raw], used, ctx, f"{name}.decision_function", nan_ok)[0]
    else:
        if not isinstance(est._loss.link, MultinomialLogit):
            raise UnsupportedModelError(f"{name}(loss={est.loss!r}) with {len(raws)} classes is not supported by indb")
        proba = ir.softmax(raws)
        predict = ir.ArgMax(tuple(raws), labels)
        decision = guard_outputs(raws, used, ctx, f"{name}.decision_function", nan_ok)
    (predict,) = guard_outputs([predict], used, ctx, f"{name}.predict", nan_ok)
    proba = guard_outputs(proba, used, ctx, f"{name}.predict_proba", nan_ok)
    return Compiled(predict=predict, proba=proba, decision=decision, classes=tuple(est.classes_))


# ------------------------------------------------------------------ GradientBoosting

# DummyClassifier's only strategy whose predict_proba depends on the row (it samples)
_RANDOM_DUMMY = "stratified"


def _gb_baseline(est: Any) -> np.ndarray:
    """The init estimator's raw prediction, which is the same for every row."""
    init = est.init_
    constant = isinstance(init, str) and init == "zero"
    constant = constant or isinstance(init, DummyRegressor)
    constant = constant or (isinstance(init, DummyClassifier) and init.strategy != _RANDOM_DUMMY)
    if not constant:
        shown = init if isinstance(init, str) else f"{type(init).__name__}(...)"
        raise UnsupportedModelError(
            f"{type(est).__name__}(init={shown}): a custom init estimator is not supported by indb; "
            "use init=None (the default prior), 'zero', or a DummyClassifier/DummyRegressor with a constant strategy"
        )
    # scikit-learn's own code path, on a row whose values do not matter
    return est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0]


def _gb_ensemble(est: Any, inputs: list, ctx: Context) -> tuple[ir.TreeEnsemble, list[ir.Expr]]:
    base = _gb_baseline(est)
    n_outputs = est.estimators_.shape[1]
    trees, values = [], []
    for stage in est.estimators_:
        for k, reg in enumerate(stage):
            tree = reg.tree_
            v = np.zeros((tree.node_count, n_outputs))
            v[:, k] = est.learning_rate * tree.value[:, 0, 0]
            trees.append(tree)
            values.append(v)
    return float32_ensemble(trees, values, inputs, ctx, type(est).__name__, base=base.tolist())


@register(GradientBoostingRegressor)
def convert_gb_regressor(est: Any, inputs: list, ctx: Context) -> Compiled:
    ens, used = _gb_ensemble(est, inputs, ctx)
    (predict,) = guard_outputs([ir.Index(ens, 0)], used, ctx, f"{type(est).__name__}.predict", allows_nan(est))
    return Compiled(predict=predict)


@register(GradientBoostingClassifier)
def convert_gb_classifier(est: Any, inputs: list, ctx: Context) -> Compiled:
    ens, used = _gb_ensemble(est, inputs, ctx)
    return _classifier_outputs(est, ens, used, ctx, ">=", allows_nan(est))


# ------------------------------------------------------------------ HistGradientBoosting


def _hgb_columns(est: Any) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Where each column the predictors see comes from, and each categorical input's categories.

    Returns ``source`` (predictor column -> input column) and, for each categorical
    input column, its known categories in encoded order (code i is ``categories[i]``).
    """
    n = est.n_features_in_
    pre = est._preprocessor
    if pre is None:
        return np.arange(n), {}
    is_cat = np.asarray(est.is_categorical_, dtype=bool)
    cat_cols = np.flatnonzero(is_cat)
    layout = pre.output_indices_
    numeric = layout.get("numerical")
    numeric_ok = numeric == slice(len(cat_cols), n) or (len(cat_cols) == n and numeric.start == numeric.stop)
    if layout.get("encoder") != slice(0, len(cat_cols)) or not numeric_ok:
        raise CompileError(
            f"{type(est).__name__}: this scikit-learn version lays out categorical columns in a way indb does not know"
        )
    encoder = pre.named_transformers_["encoder"]
    categories = {}
    for col, cats in zip(cat_cols.tolist(), encoder.categories_):
        if len(cats) and _is_nan(cats[-1]):  # the encoder lists NaN last when it was seen
            cats = cats[:-1]
        categories[col] = cats
    return np.concatenate([cat_cols, np.flatnonzero(~is_cat)]), categories


def _is_nan(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and v != v


def _category_values(est: Any, col: int, cats: np.ndarray) -> tuple[list, str]:
    """Known categories as IR values (floats or strings) and the kind of input they need."""
    values = [python_scalar(c) for c in cats]
    if all(isinstance(v, str) for v in values):
        return values, ir.TEXT
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values], ir.FLOAT
    raise UnsupportedModelError(
        f"{type(est).__name__}: categorical input column {col} mixes category types "
        f"({sorted({type(v).__name__ for v in values})}); indb supports all-numeric or all-string categories"
    )


def _bitset_codes(words: np.ndarray) -> np.ndarray:
    """The values whose bits are set in a scikit-learn bitset (uint32 words, bit i of word w is 32*w + i)."""
    return np.flatnonzero(np.unpackbits(np.asarray(words, dtype="<u4").view(np.uint8), bitorder="little"))


def _hgb_nodes(pred: Any, k: int, n_outputs: int, source: np.ndarray, category_values: dict[int, list]) -> Nodes:
    nodes = pred.nodes
    leaf = nodes["is_leaf"].astype(bool)
    cat = ~leaf & nodes["is_categorical"].astype(bool)
    feature = np.where(leaf, -1, source[nodes["feature_idx"]])
    left = np.where(leaf, -1, nodes["left"].astype(np.intp))
    right = np.where(leaf, -1, nodes["right"].astype(np.intp))
    missing_left = ~leaf & nodes["missing_go_to_left"].astype(bool)
    value = np.zeros((len(nodes), n_outputs))
    value[:, k] = np.where(leaf, nodes["value"], 0.0)
    categories = None
    if cat.any():
        categories = [None] * len(nodes)
        for n in np.flatnonzero(cat).tolist():
            known = category_values[int(feature[n])]
            goes_left = np.zeros(len(known), dtype=bool)
            codes = _bitset_codes(pred.raw_left_cat_bitsets[nodes["bitset_idx"][n]])
            goes_left[codes[codes < len(known)]] = True
            if missing_left[n]:
                # unknown categories go where missing ones do; the IR sends values outside
                # the set right, so make the missing side the right child
                left[n], right[n] = right[n], left[n]
                missing_left[n] = False
                goes_left = ~goes_left
            categories[n] = tuple(v for v, g in zip(known, goes_left.tolist()) if g)
    return Nodes(
        feature=feature,
        threshold=np.where(leaf | cat, 0.0, nodes["num_threshold"]),
        left=left,
        right=right,
        missing_left=missing_left,
        value=value,
        categories=categories,
    )


def _hgb_ensemble(est: Any, inputs: list, ctx: Context) -> tuple[ir.TreeEnsemble, list[ir.Expr]]:
    name = type(est).__name__
    source, categories = _hgb_columns(est)
    inputs = list(inputs)
    category_values: dict[int, list] = {}
    for col in range(len(inputs)):
        if col in categories:
            values, kind = _category_values(est, col, categories[col])
            category_values[col] = values
            if kind == ir.TEXT:
                inputs[col] = ctx.as_text(inputs[col], f"{name} categorical column {col}")
                continue
        inputs[col] = ctx.as_float(inputs[col], name)
    n_outputs = est.n_trees_per_iteration_
    parts = [
        _hgb_nodes(pred, k, n_outputs, source, category_values)
        for iteration in est._predictors
        for k, pred in enumerate(iteration)
    ]
    return build_ensemble(parts, inputs, np.asarray(est._baseline_prediction, dtype=np.float64).ravel().tolist())


@register(HistGradientBoostingRegressor)
def convert_hgb_regressor(est: Any, inputs: list, ctx: Context) -> Compiled:
    ens, used = _hgb_ensemble(est, inputs, ctx)
    (predict,) = guard_outputs([_inverse_link(est, ir.Index(ens, 0))], used, ctx, f"{type(est).__name__}.predict", allows_nan(est))
    return Compiled(predict=predict)


@register(HistGradientBoostingClassifier)
def convert_hgb_classifier(est: Any, inputs: list, ctx: Context) -> Compiled:
    ens, used = _hgb_ensemble(est, inputs, ctx)
    return _classifier_outputs(est, ens, used, ctx, ">", allows_nan(est))
