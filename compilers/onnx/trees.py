"""ai.onnx.ml tree ensembles: ``TreeEnsembleRegressor``, ``TreeEnsembleClassifier``
(ai.onnx.ml 1-3) and ``TreeEnsemble`` (ai.onnx.ml 5), read into one :class:`Forest` form and
built with the shared tree builder (``indb.compilers.trees_shared``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from indb import ir
from indb.compilers.onnx.core import (
    Graph, Node, Tensor, fold_add, label_kind, label_tensor, labels_attr, numeric_row, obj_array, post_transform,
    register, scores_tensor, select, transform_name,
)
from indb.compilers.onnx.labels import label_value
from indb.compilers.trees_shared import MODES, SplitTable, build_tree, ensemble, leaf_ref
from indb.errors import UnsupportedModelError


# --------------------------------------------------------------------------- ai.onnx.ml: tree ensembles

_LEGACY_TREE_ATTRS = (
    "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values", "nodes_values_as_tensor",
    "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true", "nodes_hitrates",
    "nodes_hitrates_as_tensor", "base_values", "base_values_as_tensor", "post_transform",
)
_REGRESSOR_ATTRS = ("n_targets", "aggregate_function", "target_treeids", "target_nodeids", "target_ids", "target_weights", "target_weights_as_tensor")
_CLASSIFIER_ATTRS = ("classlabels_int64s", "classlabels_strings", "class_treeids", "class_nodeids", "class_ids", "class_weights", "class_weights_as_tensor")
AGGREGATES = ("SUM", "AVERAGE", "MIN", "MAX")


@dataclass
class Forest:
    """Tree ensemble attributes in one form: a node table, one root per tree, leaf entries."""

    table: SplitTable
    roots: list[int]
    #: per leaf of the table: its (target, weight) entries
    entries: list[list[tuple[int, float]]]
    f32: bool

    def with_leaves(self, fn: Callable[[list[tuple[int, float]]], Sequence[float]]) -> SplitTable:
        t = self.table
        return SplitTable(t.feature, t.mode, t.value, t.true_child, t.false_child, t.missing_true, [fn(e) for e in self.entries])

    def trees(self, fn: Callable[[list[tuple[int, float]]], Sequence[float]], n_outputs: int) -> list[ir.Tree]:
        table = self.with_leaves(fn)
        return [build_tree(table, self.f32, n_outputs, r) for r in self.roots]


def _thresholds(node: Node, f32: bool, floats: str, tensor: str) -> np.ndarray:
    as_tensor = node.attr(tensor)
    vals = np.asarray(as_tensor if as_tensor is not None else node.attr(floats, []), dtype=np.float64)
    if as_tensor is None:
        vals = vals.astype(np.float32).astype(np.float64)
    # onnxruntime compares a float input with thresholds held as float
    return vals.astype(np.float32).astype(np.float64) if f32 else vals


def _precision(node: Node, dtype: str) -> bool:
    if dtype in ("float32", "float16"):
        return True
    if dtype == "float64":
        return False
    raise node.refuse(f"tree inputs of type {dtype} are not supported (float and double are)")


def _legacy_forest(node: Node, dtype: str, prefix: str) -> Forest:
    """TreeEnsembleRegressor/Classifier (ai.onnx.ml 1-3) attributes as a :class:`Forest`."""
    f32 = _precision(node, dtype)
    tids = [int(v) for v in node.attr("nodes_treeids", [])]
    nids = [int(v) for v in node.attr("nodes_nodeids", [])]
    n = len(tids)
    feats = [int(v) for v in node.attr("nodes_featureids", [])]
    modes = [str(m) for m in node.attr("nodes_modes", [])]
    trues = [int(v) for v in node.attr("nodes_truenodeids", [])]
    falses = [int(v) for v in node.attr("nodes_falsenodeids", [])]
    miss = [int(v) for v in node.attr("nodes_missing_value_tracks_true", [0] * n)]
    vals = _thresholds(node, f32, "nodes_values", "nodes_values_as_tensor")
    for name, arr in (("nodes_nodeids", nids), ("nodes_featureids", feats), ("nodes_modes", modes), ("nodes_truenodeids", trues),
                      ("nodes_falsenodeids", falses), ("nodes_missing_value_tracks_true", miss), ("nodes_values", vals)):
        if len(arr) != n:
            raise node.refuse(f"{name} has {len(arr)} entries for {n} nodes")
    key = {(t, i): k for k, (t, i) in enumerate(zip(tids, nids))}
    if len(key) != n:
        raise node.refuse("a (tree id, node id) pair appears twice")
    ref: list[int] = [0] * n
    table = SplitTable()
    leaf_of: dict[int, int] = {}
    for k in range(n):
        if modes[k] == "LEAF":
            leaf_of[k] = len(leaf_of)
            ref[k] = leaf_ref(leaf_of[k])
    internal = [k for k in range(n) if modes[k] != "LEAF"]
    for j, k in enumerate(internal):
        ref[k] = j
    for k in internal:
        mode = modes[k][len("BRANCH_"):] if modes[k].startswith("BRANCH_") else modes[k]
        if mode not in MODES[:6]:
            raise node.refuse(f"node mode {modes[k]!r}; supported: BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, LEAF")
        try:
            yes, no = ref[key[tids[k], trues[k]]], ref[key[tids[k], falses[k]]]
        except KeyError:
            raise node.refuse(f"node {nids[k]} of tree {tids[k]} points to a node that does not exist") from None
        table.add_node(feats[k], mode, float(vals[k]), yes, no, bool(miss[k]))
    entries: list[list[tuple[int, float]]] = [[] for _ in leaf_of]
    w_tids = [int(v) for v in node.attr(f"{prefix}_treeids", [])]
    w_nids = [int(v) for v in node.attr(f"{prefix}_nodeids", [])]
    w_ids = [int(v) for v in node.attr(f"{prefix}_ids", [])]
    w_tensor = node.attr(f"{prefix}_weights_as_tensor")
    weights = np.asarray(w_tensor if w_tensor is not None else node.attr(f"{prefix}_weights", []), dtype=np.float64)
    if w_tensor is None:
        weights = weights.astype(np.float32).astype(np.float64)
    if not (len(w_tids) == len(w_nids) == len(w_ids) == len(weights)):
        raise node.refuse(f"the {prefix}_* attributes have different lengths")
    for t, i, c, w in zip(w_tids, w_nids, w_ids, weights):
        k = key.get((t, i))
        if k is None or k not in leaf_of:
            raise node.refuse(f"a weight is attached to node {i} of tree {t}, which is not a leaf")
        entries[leaf_of[k]].append((c, float(w)))
    # a tree's root is its node no other node points to
    children = {(tids[k], c) for k in internal for c in (trues[k], falses[k])}
    roots: dict[int, int] = {}
    for k in range(n):
        if (tids[k], nids[k]) not in children:
            if tids[k] in roots:
                raise node.refuse(f"tree {tids[k]} has more than one root")
            roots[tids[k]] = ref[k]
    if len(roots) != len(set(tids)):
        raise node.refuse("a tree has no root (its nodes form a cycle)")
    table.leaves = [()] * len(leaf_of)
    return Forest(table, list(roots.values()), entries, f32)


#: the largest member of a BRANCH_MEMBER set onnxruntime compares exactly (measured with onnxruntime 1.32)
MEMBER_MAX = 30.0


def _v5_forest(node: Node, dtype: str) -> Forest:
    """TreeEnsemble (ai.onnx.ml 5) attributes as a :class:`Forest`."""
    f32 = _precision(node, dtype)
    feats = [int(v) for v in node.attr("nodes_featureids", [])]
    n = len(feats)
    modes = [int(v) for v in np.asarray(node.attr("nodes_modes", np.zeros(0))).reshape(-1)]
    splits = np.asarray(node.attr("nodes_splits", np.zeros(0)), dtype=np.float64).reshape(-1)
    if f32:
        splits = splits.astype(np.float32).astype(np.float64)
    trues = [int(v) for v in node.attr("nodes_truenodeids", [])]
    falses = [int(v) for v in node.attr("nodes_falsenodeids", [])]
    tleaf = [int(v) for v in node.attr("nodes_trueleafs", [])]
    fleaf = [int(v) for v in node.attr("nodes_falseleafs", [])]
    miss = [int(v) for v in node.attr("nodes_missing_value_tracks_true", [0] * n)]
    for name, arr in (("nodes_modes", modes), ("nodes_splits", splits), ("nodes_truenodeids", trues), ("nodes_falsenodeids", falses),
                      ("nodes_trueleafs", tleaf), ("nodes_falseleafs", fleaf), ("nodes_missing_value_tracks_true", miss)):
        if len(arr) != n:
            raise node.refuse(f"{name} has {len(arr)} entries for {n} nodes")
    members = np.asarray(node.attr("membership_values", np.zeros(0)), dtype=np.float64).reshape(-1)
    sets: list[list[float]] = [[]]
    for v in members:
        if math.isnan(v):
            sets.append([])
        else:
            sets[-1].append(float(np.float32(v)) if f32 else float(v))
    if sets and not sets[-1]:
        sets.pop()
    names = ("LEQ", "LT", "GTE", "GT", "EQ", "NEQ", "MEMBER")
    table = SplitTable()
    n_member = 0
    targets = [int(v) for v in node.attr("leaf_targetids", [])]
    lw = np.asarray(node.attr("leaf_weights", np.zeros(0)), dtype=np.float64).reshape(-1)
    if len(targets) != len(lw):
        raise node.refuse("leaf_targetids and leaf_weights have different lengths")
    for k in range(n):
        if not 0 <= modes[k] < len(names):
            raise node.refuse(f"node mode {modes[k]}; supported: 0-6 (BRANCH_LEQ .. BRANCH_MEMBER)")
        mode = names[modes[k]]
        if mode == "MEMBER":
            if n_member >= len(sets):
                raise node.refuse("membership_values has fewer sets than BRANCH_MEMBER nodes")
            value: Any = tuple(sets[n_member])
            n_member += 1
            if not all(v.is_integer() and 0 <= v <= MEMBER_MAX for v in value):
                raise node.refuse(
                    f"BRANCH_MEMBER set {sorted(value)}: onnxruntime tests membership exactly only for integer members "
                    f"from 0 to {MEMBER_MAX:g} (for others it truncates the input to an integer first); indb supports those sets only"
                )
        else:
            value = float(splits[k])
        yes = leaf_ref(trues[k]) if tleaf[k] else trues[k]
        no = leaf_ref(falses[k]) if fleaf[k] else falses[k]
        for c, is_leaf in ((trues[k], tleaf[k]), (falses[k], fleaf[k])):
            if not 0 <= c < (len(lw) if is_leaf else n):
                raise node.refuse(f"node {k} points to a {'leaf' if is_leaf else 'node'} {c} that does not exist")
        table.add_node(feats[k], mode, value, yes, no, bool(miss[k]))
    table.leaves = [()] * len(lw)
    entries = [[(t, float(w))] for t, w in zip(targets, lw)]
    roots = [int(r) for r in node.attr("tree_roots", [])]
    if any(not 0 <= r < n for r in roots):
        raise node.refuse("a tree root is not a node")
    return Forest(table, roots, entries, f32)


def _sum_leaf(n_out: int) -> Callable[[list[tuple[int, float]]], list[float]]:
    def fn(entries: list[tuple[int, float]]) -> list[float]:
        v = [0.0] * n_out
        for c, w in entries:
            if not 0 <= c < n_out:
                raise UnsupportedModelError(f"a leaf weight targets output {c} of {n_out}")
            v[c] += w
        return v

    return fn


def _aggregate(node: Node, forest: Forest, inputs: list[ir.Expr], n_out: int, base: Sequence[float], agg: str) -> list[ir.Expr]:
    """One score expression per target, base values included."""
    if agg not in AGGREGATES:
        raise node.refuse(f"aggregate_function={agg!r}; supported: {', '.join(AGGREGATES)}")
    if agg in ("SUM", "AVERAGE"):
        with_base = agg == "SUM"
        ens = ensemble(forest.trees(_sum_leaf(n_out), n_out), inputs, n_out, base if with_base else [0.0] * n_out)
        scores: list[ir.Expr] = [ir.Index(ens, k) for k in range(n_out)]
        if agg == "AVERAGE":
            n_trees = float(len(forest.roots))
            scores = [fold_add(ir.div(s, ir.Const(n_trees)), ir.Const(float(b))) if b else ir.div(s, ir.Const(n_trees)) for s, b in zip(scores, base)]
        return scores
    # MIN/MAX: each target's extreme over the trees that give it a weight; 0 when none does
    absent = math.inf if agg == "MIN" else -math.inf
    pick = min if agg == "MIN" else max

    def leaf(entries: list[tuple[int, float]]) -> list[float]:
        v = [absent] * n_out
        for c, w in entries:
            if not 0 <= c < n_out:
                raise UnsupportedModelError(f"a leaf weight targets output {c} of {n_out}")
            v[c] = pick(v[c], w)
        return v

    per_tree = [ensemble([t], inputs, n_out, [0.0] * n_out) for t in forest.trees(leaf, n_out)]
    out = []
    for k in range(n_out):
        m = ir.Func(agg.lower(), tuple(ir.Index(e, k) for e in per_tree)) if len(per_tree) > 1 else ir.Index(per_tree[0], k)
        m = select(ir.Compare("==", m, ir.Const(absent)), ir.Const(0.0), m)
        out.append(fold_add(m, ir.Const(float(base[k]))) if base[k] else m)
    return out


def _base(node: Node, n: int) -> list[float]:
    t = node.attr("base_values_as_tensor")
    vals = np.asarray(t if t is not None else node.attr("base_values", []), dtype=np.float64)
    if t is None:
        vals = vals.astype(np.float32).astype(np.float64)
    if vals.size == 0:
        return [0.0] * n
    if vals.size != n:
        raise node.refuse(f"{vals.size} base values for {n} outputs")
    return [float(v) for v in vals]


@register("ai.onnx.ml", "TreeEnsembleRegressor", attrs=_LEGACY_TREE_ATTRS + _REGRESSOR_ATTRS)
def _tree_regressor(node: Node, ins: list, g: Graph) -> list:
    xs, dtype = numeric_row(node, ins[0])
    n_out = int(node.attr("n_targets", 1))
    forest = _legacy_forest(node, dtype, "target")
    scores = _aggregate(node, forest, xs, n_out, _base(node, n_out), str(node.attr("aggregate_function", "SUM")))
    return [scores_tensor(node, transform_name(node), scores)]


@register(
    "ai.onnx.ml",
    "TreeEnsemble",
    attrs=(
        "aggregate_function", "post_transform", "tree_roots", "nodes_featureids", "nodes_modes", "nodes_splits",
        "nodes_truenodeids", "nodes_trueleafs", "nodes_falsenodeids", "nodes_falseleafs",
        "nodes_missing_value_tracks_true", "nodes_hitrates", "membership_values", "leaf_targetids", "leaf_weights", "n_targets",
    ),
)
def _tree_ensemble5(node: Node, ins: list, g: Graph) -> list:
    xs, dtype = numeric_row(node, ins[0])
    n_out = int(node.attr("n_targets"))
    forest = _v5_forest(node, dtype)
    agg = int(node.attr("aggregate_function", 1))
    if not 0 <= agg < 4:
        raise node.refuse(f"aggregate_function={agg}; supported: 0-3 (AVERAGE, SUM, MIN, MAX)")
    scores = _aggregate(node, forest, xs, n_out, [0.0] * n_out, ("AVERAGE", "SUM", "MIN", "MAX")[agg])
    return [scores_tensor(node, transform_name(node), scores, dtype)]


@register("ai.onnx.ml", "TreeEnsembleClassifier", attrs=_LEGACY_TREE_ATTRS + _CLASSIFIER_ATTRS)
def _tree_classifier(node: Node, ins: list, g: Graph) -> list:
    xs, dtype = numeric_row(node, ins[0])
    labels, ldtype = labels_attr(node, "classlabels_int64s", "classlabels_strings")
    kind = label_kind(ldtype)
    lv = tuple(label_value(v, kind) for v in labels)
    n_cls = len(labels)
    forest = _legacy_forest(node, dtype, "class")
    pt = transform_name(node)
    weights = [w for e in forest.entries for _, w in e]
    used = {c for e in forest.entries for c, _ in e}
    if any(not 0 <= c < n_cls for c in used):
        raise node.refuse(f"a class id is outside the {n_cls} class labels")
    if n_cls > 2:
        base = _base(node, n_cls)
        ens = ensemble(forest.trees(_sum_leaf(n_cls), n_cls), xs, n_cls, base)
        scores = [ir.Index(ens, k) for k in range(n_cls)]
        label = ir.ArgMax(tuple(_scored_items(node, forest, xs, scores, n_cls)), lv)
        return [label_tensor(label, ldtype), scores_tensor(node, pt, scores, classes=tuple(labels))]
    elif n_cls == 2:
        base_vals = node.attr("base_values_as_tensor")
        n_base = len(base_vals if base_vals is not None else node.attr("base_values", []))
        if not used <= {0} or n_base > 1:
            raise node.refuse(
                "a two-class layout other than weights for class id 0 with at most one base value "
                f"(class ids {sorted(used)}, {n_base} base values); onnxruntime's output for it does not follow the class labels"
            )
        base = _base(node, 1) if n_base else [0.0]
        ens = ensemble(forest.trees(_sum_leaf(1), 1), xs, 1, base)
        s = ir.Index(ens, 0)
        all_pos = all(w >= 0 for w in weights)
        label = ir.binary_label(s, ">", 0.5 if all_pos else 0.0, lv[0], lv[1])
        if pt == "LOGISTIC":
            probs = [ir.func("expit", ir.func("neg", s)), ir.func("expit", s)]
        elif pt in ("NONE", "SOFTMAX", "SOFTMAX_ZERO"):
            probs = [ir.sub(ir.Const(1.0), s) if all_pos else ir.func("neg", s), s]
        else:
            post_transform(node, pt, [s])
            raise AssertionError  # pragma: no cover
    else:
        raise node.refuse("a classifier with a single class label")
    return [label_tensor(label, ldtype), Tensor(obj_array(probs), "float32", True, tuple(labels))]


def _scored_items(node: Node, forest: Forest, xs: list[ir.Expr], scores: list[ir.Expr], n_cls: int) -> list[ir.Expr]:
    """Scores as onnxruntime's label sees them: a class no reached leaf (nor base value) scores is skipped."""
    has_base = len(node.attr("base_values_as_tensor") or node.attr("base_values") or []) > 0
    if has_base:
        return scores
    always = set()
    leaves_of_tree = _leaves_by_root(forest)
    for leaves in leaves_of_tree:
        for c in range(n_cls):
            if all(any(cc == c for cc, _ in forest.entries[j]) for j in leaves):
                always.add(c)
    if len(always) == n_cls:
        return scores

    def indicator(entries: list[tuple[int, float]]) -> list[float]:
        v = [0.0] * n_cls
        for c, _ in entries:
            v[c] = 1.0
        return v

    counts = ensemble(forest.trees(indicator, n_cls), xs, n_cls, [0.0] * n_cls)
    return [s if k in always else select(ir.Compare(">", ir.Index(counts, k), ir.Const(0.0)), s, ir.Const(-math.inf)) for k, s in enumerate(scores)]


def _leaves_by_root(forest: Forest) -> list[list[int]]:
    t = forest.table
    out = []
    for r in forest.roots:
        leaves, stack, seen = [], [r], set()
        while stack:
            ref = stack.pop()
            if ref < 0:
                leaves.append(-1 - ref)
            elif ref not in seen:
                seen.add(ref)
                stack.extend((t.true_child[ref], t.false_child[ref]))
        out.append(leaves)
    return out
