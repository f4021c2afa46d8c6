"""Tree and comparison pieces shared by the front ends that build trees from split tables.

The ONNX tree-ensemble operators (``indb.compilers.onnx.trees``) and the XGBoost and
LightGBM converters (``indb.compilers.boosters``) describe a tree as a table of splits
(:class:`SplitTable`: feature, mode, threshold, children, missing-value route) and turn
it into an ``ir.Tree`` with :func:`build_tree`, whose splits are all ``x <= B``; the
scikit-learn tree converters (``indb.compilers.tree``) use the float32 bounds.

Every comparison here is folded at compile time into a float64 bound: a library that
compares ``float32(x) <= t`` (scikit-learn's trees, ONNX float graphs, XGBoost's ``<``)
becomes ``x <= B`` for a ``B`` that makes the two agree for every float64 ``x``
(:func:`float32_le_bounds`, :func:`le_bound`, :func:`lt_bound`, :func:`compare_const`).

This module sits below its users: it imports only ``indb.ir`` and numpy, never a
front end, so the ONNX operators, the boosters and scikit-learn's trees can all use it.

    >>> t = SplitTable()
    >>> t.root = t.add_node(0, "LT", 2.0, t.add_leaf([1.0]), t.add_leaf([2.0]), missing_true=False)
    >>> build_tree(t, f32=False, n_outputs=1).threshold[0] == float(np.nextafter(2.0, 0.0))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from indb import ir
from indb.errors import CompileError, UnsupportedModelError

# --------------------------------------------------------------------------- float32 bounds

# 2**128: the first value past FLT_MAX on float32's grid. Rounding to float32 overflows
# to inf from the midpoint between FLT_MAX and it.
_F32_OVERFLOW = 2.0**128


def float32_le_bounds(thresholds: Any) -> np.ndarray:
    """For each float64 threshold t, the largest float64 B with ``float32(B) <= t``.

    Because rounding to float32 is monotonic, ``x <= B`` then holds exactly when
    ``float32(x) <= t``, for every float64 x; B is +inf for t = +inf.

    >>> float32_le_bounds([1.5, 0.1]).tolist() == [1.5 + 2**-24, 0.09999999776482582]
    True
    """
    t = np.asarray(thresholds, dtype=np.float64)
    if np.isnan(t).any():
        raise ValueError("a tree threshold is NaN")
    with np.errstate(over="ignore"):
        f = t.astype(np.float32)
        # f: the largest float32 not above t (the cast rounds to nearest, possibly up)
        f = np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f)
        g = np.nextafter(f, np.float32(np.inf))
    lo = np.where(np.isneginf(f), -_F32_OVERFLOW, f.astype(np.float64))
    hi = np.where(np.isposinf(g), _F32_OVERFLOW, g.astype(np.float64))
    # the midpoint of two adjacent float32 values is exact in float64; at a tie the
    # cast picks the even one (-inf and +inf count as even, FLT_MAX is odd)
    mid = (lo + hi) / 2.0
    even = (f.view(np.uint32) & 1) == 0
    bound = np.where(even, mid, np.nextafter(mid, -np.inf))
    return np.where(np.isposinf(f), np.inf, bound)



def float32_le_bound(t: float) -> float:
    """The largest float64 ``B`` with ``float32(B) <= t``; NaN when no value qualifies.

    ``x <= B`` then holds exactly when ``float32(x) <= t``, for every float64 ``x``.

    >>> float32_le_bound(1.5) == 1.5 + 2**-24, float32_le_bound(0.0) == 2.0**-150
    (True, True)
    """
    return float(_bounds([t], True)[0][0])


def float32_lt_bound(t: float) -> float:
    """The largest float64 ``B`` with ``float32(B) < t``; NaN when no value qualifies.

    ``x <= B`` then holds exactly when ``float32(x) < t`` (XGBoost's split, ONNX's
    ``BRANCH_LT``), for every float64 ``x``.

    >>> float32_lt_bound(1.5) == float32_le_bound(float(np.nextafter(np.float32(1.5), np.float32(0))))
    True
    """
    return float(_bounds([t], True)[1][0])


def le_bound(t: float, f32: bool) -> float:
    """``x <= le_bound(t)`` iff ``x <= t`` in the comparison's precision (float32 rounds ``x`` first)."""
    return float(_bounds([t], f32)[0][0])


def lt_bound(t: float, f32: bool) -> float:
    """``x <= lt_bound(t)`` iff ``x < t`` in the comparison's precision; NaN: never."""
    return float(_bounds([t], f32)[1][0])


def _bounds(values: Sequence[float], f32: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`le_bound` and :func:`lt_bound` of many thresholds at once (NaN: never)."""
    t = np.asarray(values, dtype=np.float64)
    nan = np.isnan(t)
    safe = np.where(nan, 0.0, t)
    if not f32:
        le = np.where(nan, np.nan, safe)
        lt = np.where(nan | np.isneginf(safe), np.nan, np.nextafter(safe, -np.inf))
        return le, lt
    with np.errstate(over="ignore"):
        f = safe.astype(np.float32)
        # the largest float32 strictly below t
        below = np.where(f.astype(np.float64) >= safe, np.nextafter(f, np.float32(-np.inf)), f)
    le = np.where(nan, np.nan, float32_le_bounds(safe))
    lt = np.where(nan | np.isneginf(safe), np.nan, float32_le_bounds(below.astype(np.float64)))
    return le, lt


def compare_const(op: str, e: ir.Expr, c: float, f32: bool) -> ir.Expr:
    """``round(e) op c`` where round is float32 rounding (``f32``) or none, as float64 IR.

    False when ``e`` is missing, like every IEEE comparison with NaN.
    """
    if op in ("<=", ">"):
        b = le_bound(c, f32)
    elif op in ("<", ">="):
        b = lt_bound(c, f32)
    elif op == "==":
        hi, lo = le_bound(c, f32), lt_bound(c, f32)
        if math.isnan(hi):
            return ir.Const(False)
        if math.isnan(lo):
            return ir.Compare("<=", e, ir.Const(hi))
        return ir.And((ir.Compare(">", e, ir.Const(lo)), ir.Compare("<=", e, ir.Const(hi))))
    else:
        raise ValueError(op)
    if math.isnan(b):
        # never below: <=/< are false for every value, >/>= true for every present value
        return ir.Const(False) if op in ("<=", "<") else ir.Not(ir.IsMissing(e))
    return ir.Compare("<=" if op in ("<=", "<") else ">", e, ir.Const(b))


# --------------------------------------------------------------------------- tree building

#: split modes of the tree builder (the ONNX ones without the ``BRANCH_`` prefix)
MODES = ("LEQ", "LT", "GTE", "GT", "EQ", "NEQ", "MEMBER")


def leaf_ref(j: int) -> int:
    """How a :class:`SplitTable` child refers to leaf ``j`` (node references are >= 0)."""
    return -1 - j


@dataclass
class SplitTable:
    """One tree as its library describes it, before it becomes an ``ir.Tree``.

    Internal node ``i`` tests ``input[feature[i]] <mode> value[i]`` and goes to
    ``true_child[i]`` or ``false_child[i]``; a missing input goes to the true child when
    ``missing_true[i]``. Children are node indices (>= 0) or ``leaf_ref(j)`` for leaf
    ``j`` with values ``leaves[j]``. Nodes may be shared (a DAG): the builder copies
    them. ``root`` is a node index or a leaf reference.
    """

    feature: list[int] = field(default_factory=list)
    mode: list[str] = field(default_factory=list)
    value: list[Any] = field(default_factory=list)
    true_child: list[int] = field(default_factory=list)
    false_child: list[int] = field(default_factory=list)
    missing_true: list[bool] = field(default_factory=list)
    leaves: list[Sequence[float]] = field(default_factory=list)
    root: int = 0
    _bounds: dict = field(default_factory=dict, repr=False, compare=False)

    def bounds(self, f32: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per node, the ``<=`` and ``<`` bounds of its threshold (computed once per precision)."""
        if f32 not in self._bounds:
            numeric = [v if isinstance(v, float) else math.nan for v in self.value]
            self._bounds[f32] = _bounds(numeric, f32)
        return self._bounds[f32]

    def add_node(self, feature: int, mode: str, value: Any, true: int, false: int, missing_true: bool) -> int:
        self.feature.append(int(feature))
        self.mode.append(mode)
        self.value.append(value)
        self.true_child.append(int(true))
        self.false_child.append(int(false))
        self.missing_true.append(bool(missing_true))
        return len(self.feature) - 1

    def add_leaf(self, values: Sequence[float]) -> int:
        self.leaves.append(values)
        return leaf_ref(len(self.leaves) - 1)


#: a tree may grow this many times its size through copied subtrees before it is refused
MAX_EXPANSION = 64


def build_tree(table: SplitTable, f32: bool, n_outputs: int, root: int | None = None) -> ir.Tree:
    """An ``ir.Tree`` (all splits ``x <= B``) equivalent to the tree of ``table`` at ``root``.

    ``f32``: the inputs are float32 values (the split is ``float32(x) <mode> t``);
    otherwise they are compared in float64. Feature indices are kept; ``root`` defaults
    to ``table.root`` (one table may hold the nodes of many trees).
    """
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    missing_left: list[bool] = []
    value: list[tuple[float, ...]] = []
    categories: list[tuple | None] = []
    zeros = (0.0,) * n_outputs
    les, lts = table.bounds(f32)
    limit = MAX_EXPANSION * (len(table.feature) + len(table.leaves)) + 1024

    def new_node() -> int:
        if len(feature) > limit:
            raise UnsupportedModelError(
                f"a tree with {len(table.feature)} nodes grows past {limit} nodes once its EQ/NEQ/MEMBER splits are "
                "written as threshold tests; indb cannot compile it"
            )
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        missing_left.append(False)
        value.append(zeros)
        categories.append(None)
        return len(feature) - 1

    # work items: (kind, payload, parent, side). kind "ref": a table reference;
    # "bound": an already decided test x <= B with two references.
    stack: list[tuple] = [("ref", table.root if root is None else root, -1, 0)]

    def attach(parent: int, side: int, n: int) -> None:
        if parent >= 0:
            (left if side == 0 else right)[parent] = n

    def push_test(f: int, bound: float, lo_ref: Any, hi_ref: Any, miss_low: bool, parent: int, side: int) -> None:
        """Emit ``x <= bound ? lo : hi``; a NaN bound (never true) leaves only the missing route."""
        if math.isnan(bound):
            if miss_low:
                # present values go high, missing low: x <= +inf is false only for missing
                n = new_node()
                attach(parent, side, n)
                feature[n], threshold[n], missing_left[n] = f, math.inf, False
                stack.append((*hi_ref, n, 0))
                stack.append((*lo_ref, n, 1))
            else:
                stack.append((*hi_ref, parent, side))
            return
        n = new_node()
        attach(parent, side, n)
        feature[n], threshold[n], missing_left[n] = f, bound, miss_low
        stack.append((*hi_ref, n, 1))
        stack.append((*lo_ref, n, 0))

    while stack:
        item = stack.pop()
        kind = item[0]
        if kind == "ref":
            _, ref, parent, side = item
            if ref < 0:
                n = new_node()
                attach(parent, side, n)
                vals = tuple(float(v) for v in table.leaves[-1 - ref])
                if len(vals) != n_outputs:
                    raise CompileError(f"a leaf has {len(vals)} values, expected {n_outputs}")
                value[n] = vals
                continue
            i = ref
            f, mode, t = table.feature[i], table.mode[i], table.value[i]
            yes, no, mt = ("ref", table.true_child[i]), ("ref", table.false_child[i]), table.missing_true[i]
            if mode in ("LEQ", "LT"):
                b = float(les[i] if mode == "LEQ" else lts[i])
                push_test(f, b, yes, no, mt, parent, side)
            elif mode in ("GT", "GTE"):
                b = float(les[i] if mode == "GT" else lts[i])
                push_test(f, b, no, yes, not mt, parent, side)
            elif mode in ("EQ", "NEQ"):
                hi, lo = float(les[i]), float(lts[i])
                inside, outside = (yes, no) if mode == "EQ" else (no, yes)
                # NaN != t is true: a missing NEQ input always takes the true branch
                miss_inside = mt if mode == "EQ" else False
                push_eq(f, lo, hi, inside, outside, miss_inside, parent, side, stack, push_test)
            elif mode == "MEMBER":
                members = tuple(sorted({float(v) for v in t}))
                if not f32:
                    n = new_node()
                    attach(parent, side, n)
                    feature[n], missing_left[n], categories[n] = f, mt, members
                    stack.append((*no, n, 1))
                    stack.append((*yes, n, 0))
                else:
                    # float32(x) in S: a chain of equality tests, the last one's false branch out
                    chain: Any = no
                    for k, m in enumerate(reversed(members)):
                        first = k == len(members) - 1
                        chain = ("eq", (f, lt_bound(m, True), le_bound(m, True), yes, chain, mt and first))
                    stack.append((*chain, parent, side))
            else:
                raise UnsupportedModelError(f"tree split mode {mode!r} is not supported; supported: {', '.join(MODES)}")
        elif kind == "eq":
            _, (f, lo, hi, inside, outside, miss_inside), parent, side = item
            push_eq(f, lo, hi, inside, outside, miss_inside, parent, side, stack, push_test)
        elif kind == "test":
            _, (f, bound, lo_ref, hi_ref, miss_low), parent, side = item
            push_test(f, bound, lo_ref, hi_ref, miss_low, parent, side)
        else:  # pragma: no cover
            raise AssertionError(kind)

    return ir.Tree(
        feature=tuple(feature),
        threshold=tuple(threshold),
        left=tuple(left),
        right=tuple(right),
        missing_left=tuple(missing_left),
        value=tuple(value),
        categories=tuple(categories) if any(c is not None for c in categories) else (),
    )


def push_eq(f: int, lo: float, hi: float, inside: Any, outside: Any, miss_inside: bool, parent: int, side: int, stack: list, push_test: Callable) -> None:
    """``lo < x <= hi ? inside : outside`` as two bound tests (``outside`` is copied)."""
    # second test, reached when x <= hi (or missing and miss_inside): x <= lo -> outside
    second = ("test", (f, lo, outside, inside, False))
    push_test(f, hi, second, outside, miss_inside, parent, side)


def ensemble(trees: Sequence[ir.Tree], inputs: Sequence[ir.Expr], n_outputs: int, base: Sequence[float]) -> ir.TreeEnsemble:
    """One ``ir.TreeEnsemble`` over the inputs the trees split on (features renumbered)."""
    used = sorted({f for t in trees for f in t.feature if f >= 0})
    pos = {f: i for i, f in enumerate(used)}
    out = [replace(t, feature=tuple(pos[f] if f >= 0 else -1 for f in t.feature)) for t in trees]
    return ir.TreeEnsemble(tuple(inputs[f] for f in used), tuple(out), n_outputs, tuple(float(b) for b in base))


# --------------------------------------------------------------------------- scores


def softmax_exprs(items: Sequence[ir.Expr]) -> list[ir.Expr]:
    """The softmax of one row of scores: ``ir.softmax`` (scikit-learn's arithmetic).

    Its exponents are bounded (``z - max`` clamped at -700), which keeps the float-error
    guards PostgreSQL needs small; a form with fewer repeated subexpressions
    (``1 / (1 + sum exp(z_j - z_k))``) was measured to lower to far larger PostgreSQL
    SQL for that reason.
    """
    return ir.softmax(list(items))
