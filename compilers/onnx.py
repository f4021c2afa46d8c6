"""The ONNX front end: an ONNX graph (``ai.onnx`` and ``ai.onnx.ml`` operators) to an ``ir.Model``.

    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skl2onnx import to_onnx
    >>> est = LinearRegression().fit(np.array([[0.0], [1.0]], dtype=np.float32), [1.0, 3.0])
    >>> m = compile_onnx(to_onnx(est, np.zeros((1, 1), dtype=np.float32)))
    >>> m.feature_names, m.output_kinds
    (('x0',), ('predict',))

How a graph is read
-------------------
Every value in the graph is a :class:`Tensor`. Initializers and ``Constant`` nodes are
numpy arrays and operators on them are evaluated with numpy in their own dtype (float32
stays float32, as onnxruntime computes it). A value that depends on the graph inputs is
*symbolic*: an object array of IR expressions, one per element of a row, with the batch
dimension (always axis 0) left implicit. Shapes are static; an operator whose output
shape depends on the data, or that mixes rows (anything along axis 0), is refused. A
``Shape`` that includes the batch axis may only feed ``Reshape`` (as "infer") and
``ConstantOfShape`` (a constant per row).

Graph inputs become features: a single input tensor of ``F`` columns gives
``x0 .. x{F-1}`` (or ``features``), several inputs keep their names (``name_j`` for the
columns of a multi-column input). Graph outputs become model outputs: an integer or
string output of one value per row is the label (``predict``); a float output beside it
holds the class probabilities (``proba``, in the order of the classifier's labels, which
a ``ZipMap`` or the classifier operator names); a lone float output of one value per
row is a regression (``predict``); anything else is ``transform`` (so are scores beside
a label that is not their ``ArgMax``, such as k-means distances).

Numbers: float32 and float64
----------------------------
onnxruntime computes a float32 graph in float32; the IR computes in float64. The
difference is confined to rounding (the tests allow 1e-6 relative) except where a
comparison decides something, so comparisons are made exact for the values a float32
graph can see:

* A split or comparison of a float32 input with a threshold ``t`` is
  ``float32(x) <= t`` (``<``, ``>=``, ``>``, ``==``, ``!=``, set membership). Rounding to
  float32 is monotonic, so each is folded at compile time into a float64 bound ``B``
  with ``x <= B`` (or its negation) holding exactly when the float32 comparison does,
  for every float64 ``x`` (:func:`float32_le_bound`, :func:`float32_lt_bound`). On a
  graph input this is exact. On a computed value (a scaler before a tree) the IR's
  float64 value is rounded to float32 by the bound, which equals onnxruntime's unless
  its float32 arithmetic rounded to the other side of the threshold: such rows are
  within a few float32 ulps of a threshold.
* Float64 inputs (``tensor(double)``) are compared in float64 with the threshold as
  stored (onnxruntime widens float32 thresholds to double).
* Labels chosen by comparing two computed scores (``ArgMax``, a classifier's label)
  can differ from onnxruntime's only where the float32 scores tie or nearly tie. An
  ``ArgMax`` over a ``Softmax`` compares the softmax's inputs (same order, and far
  smaller SQL); an L1 ``Normalizer`` of a softmax is the softmax itself.
* ``Normalizer`` L2 squares in float32 in onnxruntime: a row whose values are all at
  most 2**-75 has a zero norm there and is left as it is, which the IR reproduces; a
  value whose square overflows float32 (|x| > 1.8e19) gives onnxruntime NaN (no answer).

Missing values
--------------
NaN (and SQL NULL) in a float input is NaN to onnxruntime: arithmetic propagates it, a
tree sends it where ``nodes_missing_value_tracks_true`` says (the false branch by
default; ``BRANCH_NEQ`` always takes the true branch, since ``NaN != t``), ``Imputer``
replaces it, ``ArgMax``/``ArgMin`` scan like onnxruntime (a NaN in first place wins,
any other NaN never does: :func:`scan_argmax`). Rows whose outputs onnxruntime computes
as NaN have no answer the IR has to reproduce; the IR gives NULL there. Operators that make onnxruntime fail on a value
(``Binarizer`` on NaN, ``OneHotEncoder`` with ``zeros=0`` on an unknown category) make
every output of that row missing (or raise, with ``on_missing="error"``).

Tree ensembles
--------------
``TreeEnsembleRegressor``, ``TreeEnsembleClassifier`` (ai.onnx.ml 1-3) and
``TreeEnsemble`` (ai.onnx.ml 5) become one ``ir.TreeEnsemble`` (one output per target or
class) whose splits are all ``x <= B``: ``BRANCH_LEQ``/``LT`` keep their children,
``GTE``/``GT`` swap them, ``EQ``/``NEQ`` and float32 ``BRANCH_MEMBER`` become two (or a
chain of) bound tests with the subtree they share copied; float64 membership becomes a
categorical split. ``BRANCH_MEMBER`` is accepted only for sets of integers 0..30, the
sets onnxruntime 1.32 tests exactly (for other sets it was measured to truncate the
input to an integer first). ``aggregate_function`` SUM and AVERAGE sum the trees (AVERAGE divides
by the number of trees); MIN and MAX take the least/greatest leaf over the trees that
give the target a weight. ``base_values`` are added after the aggregate. Post
transforms NONE, LOGISTIC, SOFTMAX and SOFTMAX_ZERO are implemented; PROBIT (an
approximate inverse error function in onnxruntime) is refused.

Classifiers follow onnxruntime's own rules (measured with onnxruntime 1.32), which
differ from the ONNX reference implementation for two classes:

* ``TreeEnsembleClassifier`` with more than two classes: score_k = sum of the class-k
  weights + base_k; label = the first largest score among the classes that received a
  weight (or have a base value); probabilities = post_transform(scores).
* Two labels and weights for class id 0 only (what skl2onnx and onnxmltools write): s =
  sum + base_values[0]; label = labels[1] when ``s > 0.5`` if every weight is >= 0, when
  ``s > 0`` otherwise (on the raw score, before any transform); probabilities are
  ``[1 - s, s]`` (weights all >= 0) or ``[-s, s]`` (mixed signs) for NONE, SOFTMAX and
  SOFTMAX_ZERO, which onnxruntime does not apply here, and ``[expit(-s), expit(s)]`` for
  LOGISTIC. Other two-class layouts (weights for class 1 only, for both classes, two
  base values) are refused: onnxruntime returns 0/1 instead of the labels for some of them.
* ``LinearClassifier`` with one coefficient row and two labels: s = x.w + b; label =
  labels[1] iff ``s > 0``; probabilities ``[1 - s, s]`` (NONE, SOFTMAX, SOFTMAX_ZERO) or
  ``[1 - expit(s), expit(s)]`` (LOGISTIC). With one row per class: label = the first
  largest raw score, probabilities = post_transform(scores).

Encoders
--------
``LabelEncoder`` and ``CategoryMapper`` map through a CASE of their keys (a float input
is compared in float32; a NaN key matches NaN from ai.onnx.ml 4 on, as in
onnxruntime); following an ``ArgMax`` they become an ``ArgMax`` over the mapped labels.
``OneHotEncoder`` on numbers truncates like onnxruntime's cast to int64. ONNX has no
missing text or integer: a NULL there makes the row's outputs missing.

Refused, by name: every operator not in :func:`supported_ops`, attributes a handler does
not know, control flow (``If``, ``Loop``, subgraph attributes), local functions, sparse
initializers, sequence/map inputs, inputs without a static column count, anything
that mixes rows (work along axis 0), computed shapes and indices into computed
tensors, PROBIT, the two-class classifier layouts above, and BRANCH_MEMBER sets
outside 0..30.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from indb import ir
from indb.compilers.tree import float32_le_bounds
from indb.errors import CompileError, UnsupportedModelError

# --------------------------------------------------------------------------- float32 bounds


def float32_le_bound(t: float) -> float:
    """The largest float64 ``B`` with ``float32(B) <= t``; NaN when no value qualifies.

    ``x <= B`` then holds exactly when ``float32(x) <= t``, for every float64 ``x``.

    >>> float32_le_bound(1.5) == 1.5 + 2**-24
    True
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
    out = []
    for t in trees:
        out.append(
            ir.Tree(
                feature=tuple(pos[f] if f >= 0 else -1 for f in t.feature),
                threshold=t.threshold,
                left=t.left,
                right=t.right,
                missing_left=t.missing_left,
                value=t.value,
                categories=t.categories,
            )
        )
    return ir.TreeEnsemble(tuple(inputs[f] for f in used), tuple(out), n_outputs, tuple(float(b) for b in base))


# --------------------------------------------------------------------------- tensors

FLOAT_TYPES = ("float32", "float64", "float16")
INT_TYPES = ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8")


@dataclass
class Tensor:
    """A value of the graph.

    ``data`` is the numpy value of a constant (full shape), or for a symbolic tensor
    (``batched``) an object array of IR expressions with the shape of one row. ``dtype``
    is the ONNX element type as a numpy name (``"string"`` for text). ``classes`` names
    the last axis of a score or probability tensor (the classifier's labels).
    ``logits``: for a softmax over the last axis, its input (same shape), so that an
    ``ArgMax`` or an L1 ``Normalizer`` of the probabilities need not repeat the softmax
    in SQL that writes every use of a subexpression out.
    """

    data: np.ndarray
    dtype: str
    batched: bool = False
    classes: tuple | None = None
    logits: np.ndarray | None = None

    def same(self, dtype: str | None = None) -> Tensor:
        """This tensor under another element type, keeping what it knows of its values."""
        return Tensor(self.data, dtype or self.dtype, self.batched, self.classes, self.logits)

    @property
    def row_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape) if self.batched else tuple(self.data.shape[1:])

    @property
    def rank(self) -> int:
        return self.data.ndim + 1 if self.batched else self.data.ndim

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_TYPES


def _obj(items: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An object array of expressions (numpy must not look inside the dataclasses)."""
    flat = list(items)
    out = np.empty(len(flat), dtype=object)
    for i, v in enumerate(flat):
        out[i] = v
    return out.reshape(shape if shape is not None else (len(flat),))


def _const_expr(v: Any, dtype: str) -> ir.Expr:
    if dtype == "string":
        return ir.Const(None if v is None else (v.decode() if isinstance(v, bytes) else str(v)), ir.TEXT)
    if dtype == "bool":
        return ir.Const(bool(v))
    return ir.Const(float(v))


def _exprs(t: Tensor) -> np.ndarray:
    """The elements of ``t`` as IR expressions (a constant keeps its full shape)."""
    if t.batched:
        return t.data
    flat = [_const_expr(v, t.dtype) for v in t.data.reshape(-1)]
    return _obj(flat, t.data.shape)


def _align(t: Tensor, row_rank: int, what: str) -> np.ndarray:
    """A constant as a row of a batched value of row rank ``row_rank`` (numpy broadcasting)."""
    e = _exprs(t)
    if t.batched:
        return e
    if e.ndim > row_rank:
        if e.ndim != row_rank + 1 or e.shape[0] != 1:
            raise UnsupportedModelError(f"{what}: a constant of shape {t.data.shape} would broadcast along the batch dimension")
        e = e.reshape(e.shape[1:])
    return e


def _row_rank(ts: Sequence[Tensor]) -> int:
    return max(len(t.row_shape) if t.batched else max(t.data.ndim - 1, 0) for t in ts)


def _map(fn: Callable[..., ir.Expr], ts: Sequence[Tensor], what: str) -> np.ndarray:
    """``fn`` applied elementwise over batched and constant tensors (broadcasting rows)."""
    rank = max(len(t.row_shape) for t in ts if t.batched)
    arrays = [_align(t, rank, what) for t in ts]
    try:
        shape = np.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:
        raise UnsupportedModelError(f"{what}: shapes {[a.shape for a in arrays]} do not broadcast") from None
    arrays = [np.broadcast_to(a, shape) for a in arrays]
    out = [fn(*vals) for vals in zip(*[a.reshape(-1) for a in arrays])]
    return _obj(out, shape)


def _num(e: ir.Expr) -> float | None:
    """The value of a float constant expression, else None."""
    if isinstance(e, ir.Const) and e.kind == ir.FLOAT:
        return math.nan if e.value is None else float(e.value)
    return None


def _add(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    x, y = _num(a), _num(b)
    if x is not None and y is not None:
        return ir.Const(x + y)
    return ir.add(a, b)


def _mul(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    x, y = _num(a), _num(b)
    if x is not None and y is not None:
        return ir.Const(x * y)
    return ir.mul(a, b)


def _sub(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    x, y = _num(a), _num(b)
    if x is not None and y is not None:
        return ir.Const(x - y)
    return ir.sub(a, b)


def _div(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    x, y = _num(a), _num(b)
    if x is not None and y is not None and y != 0:
        return ir.Const(x / y)
    return ir.div(a, b)


def _select(cond: ir.Expr, yes: ir.Expr, no: ir.Expr) -> ir.Expr:
    if isinstance(cond, ir.Const):
        return yes if cond.value else no
    return ir.Case(((cond, yes),), no)


def _as_float(e: ir.Expr) -> ir.Expr:
    """A boolean expression as 1.0/0.0; numbers unchanged."""
    if e.type == ir.BOOL:
        return _select(e, ir.Const(1.0), ir.Const(0.0))
    return e


# --------------------------------------------------------------------------- operators


@dataclass
class Node:
    """One graph node as a handler sees it: attributes decoded to Python values."""

    op_type: str
    domain: str
    name: str
    attrs: dict[str, Any]
    opset: int
    inputs: list[str]
    outputs: list[str]

    @property
    def what(self) -> str:
        label = f"{self.domain}.{self.op_type}" if self.domain != "ai.onnx" else self.op_type
        return f"{label} node {self.name!r}" if self.name else f"{label} node"

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def refuse(self, why: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{self.what}: {why}")


Handler = Callable[[Node, list, "Graph"], list]


@dataclass(frozen=True)
class OpSpec:
    fn: Handler
    attrs: frozenset


_OPS: dict[tuple[str, str], OpSpec] = {}


def _domain(d: str) -> str:
    return "ai.onnx" if d in ("", "ai.onnx") else d


def register(domain: str, *op_types: str, attrs: Sequence[str] = ()) -> Callable[[Handler], Handler]:
    """Register a handler for ONNX operators; ``attrs`` lists the attributes it understands.

    Registering an operator twice is an error; a node with an attribute outside
    ``attrs`` is refused by name.
    """

    def deco(fn: Handler) -> Handler:
        for op in op_types:
            key = (_domain(domain), op)
            if key in _OPS:
                raise ValueError(f"ONNX operator {key[0]}.{op} already has a handler ({_OPS[key].fn.__name__})")
            _OPS[key] = OpSpec(fn, frozenset(attrs))
        return fn

    return deco


def supported_ops() -> list[str]:
    """Every supported operator as ``domain.op_type``, sorted."""
    return sorted(f"{d}.{op}" for d, op in _OPS)


def _attr_value(a: Any) -> Any:
    from onnx import helper, numpy_helper  # noqa: PLC0415

    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8") for x in v]
    if hasattr(v, "dims") and hasattr(v, "data_type"):
        return numpy_helper.to_array(v)
    if a.type in (5, 10):  # GRAPH, GRAPHS: control flow
        raise UnsupportedModelError(f"attribute {a.name!r} holds a subgraph (control flow); indb compiles straight-line graphs only")
    return v


# --------------------------------------------------------------------------- the graph


@dataclass
class Graph:
    """State of one graph being compiled: its values and the rows it refuses."""

    values: dict[str, Tensor] = field(default_factory=dict)
    refuse: list[tuple[ir.Expr, str]] = field(default_factory=list)

    def refuse_rows(self, cond: ir.Expr, reason: str) -> None:
        if not (isinstance(cond, ir.Const) and not cond.value):
            self.refuse.append((cond, reason))


_NP_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
}


def elem_type(code: int, what: str) -> str:
    try:
        return _NP_TYPES[code]
    except KeyError:
        raise UnsupportedModelError(f"{what}: element type {code} is not supported (numbers, bool and strings are)") from None


def _np_dtype(dtype: str) -> Any:
    return object if dtype == "string" else np.dtype(dtype)


def constant(value: Any, dtype: str | None = None) -> Tensor:
    """A constant tensor from a numpy value."""
    arr = np.asarray(value)
    if arr.dtype.kind in "OUS":
        arr = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(arr) if arr.size else arr.astype(object)
        return Tensor(arr.astype(object), "string")
    return Tensor(arr, dtype or arr.dtype.name)


def _input_tensors(model: Any, features: Sequence[str] | None) -> tuple[dict[str, Tensor], list[ir.FeatureSpec]]:
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if not inputs:
        raise UnsupportedModelError("the ONNX graph has no inputs")
    cols: list[tuple[Any, int]] = []  # (input, width)
    for inp in inputs:
        tt = inp.type.tensor_type if inp.type.HasField("tensor_type") else None
        if tt is None:
            raise UnsupportedModelError(f"graph input {inp.name!r} is not a tensor (sequences and maps are not supported)")
        dims = list(tt.shape.dim)
        if len(dims) not in (1, 2):
            raise UnsupportedModelError(f"graph input {inp.name!r} has rank {len(dims)}; indb takes [N] or [N, F] inputs")
        if len(dims) == 1:
            width = 1
        else:
            d = dims[1]
            if not d.HasField("dim_value"):
                raise UnsupportedModelError(f"graph input {inp.name!r} has no static number of columns ({d.dim_param or '?'})")
            width = int(d.dim_value)
        cols.append((inp, width))
    total = sum(w for _, w in cols)
    if features is not None:
        names = [str(f) for f in features]
        if len(names) != total:
            raise CompileError(f"--features names {len(names)} columns but the ONNX graph takes {total}")
        if len(set(names)) != len(names):
            raise CompileError("--features lists a column twice")
    elif len(cols) == 1:
        names = [f"x{i}" for i in range(total)]
    else:
        names = [inp.name if w == 1 else f"{inp.name}_{j}" for inp, w in cols for j in range(w)]
    values: dict[str, Tensor] = {}
    specs: list[ir.FeatureSpec] = []
    k = 0
    for inp, width in cols:
        dtype = elem_type(inp.type.tensor_type.elem_type, f"graph input {inp.name!r}")
        kind = ir.TEXT if dtype == "string" else ir.FLOAT
        if dtype == "bool":
            raise UnsupportedModelError(f"graph input {inp.name!r} is boolean; indb takes numeric or string inputs")
        feats = [ir.Feature(n, kind) for n in names[k : k + width]]
        specs.extend(ir.FeatureSpec(n, kind) for n in names[k : k + width])
        k += width
        rank1 = len(inp.type.tensor_type.shape.dim) == 1
        values[inp.name] = Tensor(_obj(feats, () if rank1 else (width,)), dtype, batched=True)
    return values, specs


def _run_node(pb: Any, g: Graph, opsets: dict[str, int]) -> None:
    domain = _domain(pb.domain)
    spec = _OPS.get((domain, pb.op_type))
    label = pb.op_type if domain == "ai.onnx" else f"{domain}.{pb.op_type}"
    if spec is None:
        raise UnsupportedModelError(f"ONNX operator {label} is not supported by indb. Supported: {', '.join(supported_ops())}")
    attrs = {}
    for a in pb.attribute:
        if a.name not in spec.attrs:
            raise UnsupportedModelError(
                f"{label} node {pb.name!r}: attribute {a.name!r} is not supported; supported: {', '.join(sorted(spec.attrs)) or 'none'}"
            )
        attrs[a.name] = _attr_value(a)
    node = Node(pb.op_type, domain, pb.name, attrs, opsets.get(domain, 1), list(pb.input), list(pb.output))
    ins = []
    for name in pb.input:
        if not name:
            ins.append(None)
            continue
        if name not in g.values:
            raise UnsupportedModelError(f"{node.what}: input {name!r} is not computed before it (graph not topologically sorted?)")
        ins.append(g.values[name])
    if pb.op_type not in BATCH_SHAPE_USERS and any(t is not None and t.dtype == BATCH_SHAPE for t in ins):
        raise UnsupportedModelError(f"{node.what}: computes with the batch size (a Shape that includes axis 0); indb scores rows one by one")
    outs = spec.fn(node, ins, g)
    for name, t in zip(pb.output, outs):
        if name:
            g.values[name] = t


def compile_onnx(model: Any, features: Sequence[str] | None = None, *, on_missing: str = "null") -> ir.Model:
    """Compile an ONNX model (a ``ModelProto`` or its serialized bytes) to an ``ir.Model``.

    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skl2onnx import to_onnx
    >>> sc = StandardScaler().fit(np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32))
    >>> compile_onnx(to_onnx(sc, np.zeros((1, 2), dtype=np.float32)), features=["a", "b"]).output_kinds
    ('transform',)
    """
    import onnx  # noqa: PLC0415
    from onnx import numpy_helper  # noqa: PLC0415

    if on_missing not in ("null", "error"):
        raise CompileError(f"on_missing must be 'null' or 'error', not {on_missing!r}")
    if isinstance(model, (bytes, bytearray)):
        try:
            model = onnx.load_model_from_string(bytes(model))
        except Exception as e:  # protobuf raises its own DecodeError
            raise UnsupportedModelError(f"not a readable ONNX model ({type(e).__name__}: {e})") from None
    if model.functions:
        raise UnsupportedModelError("the ONNX model defines local functions; indb compiles plain graphs only")
    opsets = {_domain(o.domain): int(o.version) for o in model.opset_import}
    g = Graph()
    for init in model.graph.initializer:
        g.values[init.name] = constant(numpy_helper.to_array(init), elem_type(init.data_type, f"initializer {init.name!r}"))
    if model.graph.sparse_initializer:
        raise UnsupportedModelError("sparse initializers are not supported")
    inputs, specs = _input_tensors(model, features)
    g.values.update(inputs)
    for pb in model.graph.node:
        _run_node(pb, g, opsets)
    outs = [(o.name, g.values[o.name]) for o in model.graph.output]
    return _model(outs, specs, g, on_missing, _source(model))


def _source(model: Any) -> str:
    producer = model.producer_name or "unknown producer"
    return f"onnx:{producer}" + (f" {model.producer_version}" if model.producer_version else "")


def load(data: bytes, path: str) -> ir.Model:
    """``indb compile model.onnx``: compile the bytes of an ONNX file."""
    try:
        return compile_onnx(data)
    except UnsupportedModelError as e:
        raise UnsupportedModelError(f"{path}: {e}") from None


def rename_features(model: ir.Model, features: Sequence[str]) -> ir.Model:
    """The same compiled graph over differently named columns (``--features``).

    >>> m = ir.Model((ir.FeatureSpec("x0"),), (("predict", ir.Feature("x0")),), source="onnx:demo")
    >>> rename_features(m, ["age"]).feature_names
    ('age',)
    """
    names = [str(f) for f in features]
    if len(names) != len(model.features):
        raise CompileError(f"--features names {len(names)} columns but the model takes {len(model.features)}")
    if len(set(names)) != len(names):
        raise CompileError("--features lists a column twice")
    mapping = {f.name: ir.Feature(n, f.kind) for f, n in zip(model.features, names)}
    outputs = tuple((k, ir.substitute(e, mapping)) for k, e in model.outputs)
    specs = tuple(ir.FeatureSpec(n, f.kind) for f, n in zip(model.features, names))
    return ir.Model(specs, outputs, model.classes, model.source, model.extra)


# --------------------------------------------------------------------------- outputs


def _is_label(t: Tensor) -> bool:
    return t.batched and (t.dtype == "string" or t.dtype in INT_TYPES) and int(np.prod(t.row_shape)) == 1


def _label_classes(label: ir.Expr) -> tuple | None:
    found = argmax_items(label)
    return None if found is None else tuple(found[1])


def _are_probabilities(t: Tensor, label: ir.Expr) -> bool:
    """Whether a float output beside the label holds class probabilities.

    It does when a classifier operator or a ``ZipMap`` named its classes, or when the
    label is the ``ArgMax`` of exactly these values (or of the logits of their softmax).
    """
    if t.classes is not None:
        return True
    found = argmax_items(label)
    if found is None:
        return False
    items = found[0]
    for cand in (t.data, t.logits):
        if cand is not None and len(items) == cand.size and all(a is b for a, b in zip(items, cand.reshape(-1))):
            return True
    return False


def _python_label(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _model(outs: list[tuple[str, Tensor]], specs: list[ir.FeatureSpec], g: Graph, on_missing: str, source: str) -> ir.Model:
    for name, t in outs:
        if not t.batched:
            raise UnsupportedModelError(f"graph output {name!r} does not depend on the inputs")
    labels = [(n, t) for n, t in outs if _is_label(t)]
    others = [(n, t) for n, t in outs if not _is_label(t)]
    for n, t in others:
        if not (t.is_float or t.dtype in INT_TYPES):
            raise UnsupportedModelError(f"graph output {n!r} has element type {t.dtype}; indb returns numbers and labels")
    guard = _refusal_guard(g.refuse, on_missing)
    result: list[tuple[str, ir.Expr]] = []
    classes = None
    if len(labels) > 1:
        raise UnsupportedModelError(f"the graph has {len(labels)} label outputs ({', '.join(n for n, _ in labels)}); indb supports one")
    if labels:
        label = labels[0][1].data.reshape(-1)[0]
        result.append(("predict", guard(label)))
        if len(others) > 1:
            raise UnsupportedModelError(f"a classifier graph with {len(others)} score outputs; indb expects one (the probabilities)")
        if others:
            probs = others[0][1]
            items = list(probs.data.reshape(-1))
            if not _are_probabilities(probs, label):
                # scores beside a label that is not their argmax (k-means distances): a transform
                result.append(("transform", ir.vector([guard(_as_float(e)) for e in items])))
                return ir.Model(features=tuple(specs), outputs=tuple(result), classes=None, source=source)
            classes = probs.classes or _label_classes(label)
            if classes is None or len(classes) != len(items):
                classes = tuple(range(len(items)))
            result.append(("proba", ir.vector([guard(_as_float(e)) for e in items])))
            classes = tuple(_python_label(c) for c in classes)
    else:
        items = [e for _, t in others for e in t.data.reshape(-1)]
        if len(others) == 1 and len(items) == 1:
            result.append(("predict", guard(_as_float(items[0]))))
        else:
            result.append(("transform", ir.vector([guard(_as_float(e)) for e in items])))
    return ir.Model(features=tuple(specs), outputs=tuple(result), classes=classes, source=source)


def _refusal_guard(refuse: list[tuple[ir.Expr, str]], on_missing: str) -> Callable[[ir.Expr], ir.Expr]:
    if not refuse:
        return lambda e: e
    if on_missing == "error":
        return lambda e: ir.Case(tuple((c, ir.Fail(r, e.type)) for c, r in refuse), e)
    conds = [c for c, _ in refuse]
    anyc = conds[0] if len(conds) == 1 else ir.Or(tuple(conds))
    return lambda e: ir.Case(((anyc, ir.missing(e.type)),), e)


# --------------------------------------------------------------------------- ai.onnx: helpers


def _same_kind(node: Node, ts: Sequence[Tensor]) -> str:
    dtypes = {t.dtype for t in ts}
    if len(dtypes) != 1:
        raise node.refuse(f"inputs of different element types {sorted(dtypes)}")
    return dtypes.pop()


def _row_axis(node: Node, t: Tensor, axis: int) -> int:
    """A full-tensor axis of batched ``t`` as an axis of its rows (axis 0 is the batch)."""
    a = axis + t.rank if axis < 0 else axis
    if not 0 <= a < t.rank:
        raise node.refuse(f"axis {axis} is out of range for rank {t.rank}")
    if t.batched:
        if a == 0:
            raise node.refuse("works along the batch dimension (axis 0), which mixes rows; indb scores rows independently")
        return a - 1
    return a


def _const_ints(node: Node, t: Tensor | None, what: str) -> list[int] | None:
    if t is None:
        return None
    if t.batched:
        raise node.refuse(f"{what} must be a constant, not computed from the inputs")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def _unary(node: Node, x: Tensor, fn_expr: Callable[[ir.Expr], ir.Expr], fn_np: Callable[[np.ndarray], np.ndarray]) -> list[Tensor]:
    if not x.batched:
        with np.errstate(all="ignore"):
            return [Tensor(np.asarray(fn_np(x.data)).astype(x.data.dtype), x.dtype)]
    if not x.is_float:
        raise node.refuse(f"needs float input, got {x.dtype}")
    return [Tensor(_map(fn_expr, [x], node.what), x.dtype, True)]


def _binary(node: Node, a: Tensor, b: Tensor, fn_expr: Callable, fn_np: Callable) -> list[Tensor]:
    dtype = _same_kind(node, [a, b])
    if not a.batched and not b.batched:
        with np.errstate(all="ignore"):
            return [Tensor(np.asarray(fn_np(a.data, b.data)).astype(_np_dtype(dtype)), dtype)]
    if dtype not in FLOAT_TYPES and node.op_type == "Div":
        raise node.refuse("integer division of computed values is not supported")
    if dtype == "string" or dtype == "bool":
        raise node.refuse(f"arithmetic on {dtype} values")
    return [Tensor(_map(fn_expr, [a, b], node.what), dtype, True)]


# --------------------------------------------------------------------------- ai.onnx: elementwise


@register("", "Identity", "Dropout", attrs=("seed", "ratio"))
def _identity(node: Node, ins: list, g: Graph) -> list:
    if node.op_type == "Dropout" and len([o for o in node.outputs if o]) > 1:
        raise node.refuse("the dropout mask output is not supported")
    return [ins[0]]


@register("", "Add", "Sub", "Mul", "Div")
def _arith(node: Node, ins: list, g: Graph) -> list:
    fns = {
        "Add": (_add, np.add),
        "Sub": (_sub, np.subtract),
        "Mul": (_mul, np.multiply),
        "Div": (_div, lambda a, b: np.trunc(np.divide(a, b)) if a.dtype.kind in "iu" else np.divide(a, b)),
    }
    fe, fn = fns[node.op_type]
    return _binary(node, ins[0], ins[1], fe, fn)


@register("", "Sum", "Max", "Min", "Mean")
def _variadic(node: Node, ins: list, g: Graph) -> list:
    ts = [t for t in ins if t is not None]
    dtype = _same_kind(node, ts)
    op = node.op_type
    if not any(t.batched for t in ts):
        arrays = [t.data for t in ts]
        red = {"Sum": np.add, "Max": np.maximum, "Min": np.minimum, "Mean": np.add}[op]
        out = arrays[0]
        for a in arrays[1:]:
            out = red(out, a)
        if op == "Mean":
            out = out / len(arrays)
        return [Tensor(np.asarray(out).astype(_np_dtype(dtype)), dtype)]
    if dtype not in FLOAT_TYPES + INT_TYPES:
        raise node.refuse(f"on {dtype} values")

    def fe(*xs: ir.Expr) -> ir.Expr:
        if op == "Max":
            return ir.Func("max", xs)
        if op == "Min":
            return ir.Func("min", xs)
        total = ir.add(*xs)
        return _div(total, ir.Const(float(len(xs)))) if op == "Mean" else total

    return [Tensor(_map(fe, ts, node.what), dtype, True)]


_UNARY: dict[str, tuple[Callable[[ir.Expr], ir.Expr], Callable]] = {
    "Neg": (lambda x: ir.func("neg", x), np.negative),
    "Abs": (lambda x: ir.func("abs", x), np.abs),
    "Exp": (lambda x: ir.func("exp", x), np.exp),
    "Log": (lambda x: ir.func("log", x), np.log),
    "Sqrt": (lambda x: ir.func("sqrt", x), np.sqrt),
    "Tanh": (lambda x: ir.func("tanh", x), np.tanh),
    "Sigmoid": (lambda x: ir.func("expit", x), lambda a: 1 / (1 + np.exp(-a))),
    "Relu": (lambda x: ir.Func("max", (x, ir.Const(0.0))), lambda a: np.maximum(a, 0)),
    "Reciprocal": (lambda x: _div(ir.Const(1.0), x), np.reciprocal),
    "Floor": (lambda x: ir.func("floor", x), np.floor),
    "Ceil": (lambda x: ir.func("ceil", x), np.ceil),
    "Sign": (lambda x: ir.func("sign", x), np.sign),
    "Softplus": (lambda x: ir.func("log", ir.add(ir.func("exp", x), ir.Const(1.0))), lambda a: np.log(np.exp(a) + 1)),
}


@register("", *_UNARY)
def _unary_op(node: Node, ins: list, g: Graph) -> list:
    fe, fn = _UNARY[node.op_type]
    return _unary(node, ins[0], fe, fn)


@register("", "LeakyRelu", attrs=("alpha",))
def _leaky_relu(node: Node, ins: list, g: Graph) -> list:
    alpha = float(np.float32(node.attr("alpha", 0.01)))
    fe = lambda x: _select(ir.Compare("<", x, ir.Const(0.0)), _mul(x, ir.Const(alpha)), x)  # noqa: E731
    return _unary(node, ins[0], fe, lambda a: np.where(a < 0, a * np.float32(alpha), a))


@register("", "Pow")
def _pow(node: Node, ins: list, g: Graph) -> list:
    x, y = ins
    if not x.batched and not y.batched:
        return [Tensor(np.power(x.data, y.data).astype(x.data.dtype), x.dtype)]
    if not x.is_float:
        raise node.refuse(f"needs float input, got {x.dtype}")
    y = Tensor(y.data.astype(np.float64), x.dtype, y.batched) if not y.batched else y
    return [Tensor(_map(lambda a, b: ir.Func("pow", (a, b)), [x, Tensor(y.data, x.dtype, y.batched)], node.what), x.dtype, True)]


@register("", "Clip", attrs=("min", "max"))
def _clip(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    if node.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
    else:
        lo = None if len(ins) < 2 or ins[1] is None else ins[1]
        hi = None if len(ins) < 3 or ins[2] is None else ins[2]
        for b in (lo, hi):
            if b is not None and b.batched:
                raise node.refuse("computed clip bounds are not supported")
        lo = None if lo is None else float(np.asarray(lo.data).reshape(-1)[0])
        hi = None if hi is None else float(np.asarray(hi.data).reshape(-1)[0])
    if not x.batched:
        out = x.data
        if lo is not None:
            out = np.maximum(out, lo)
        if hi is not None:
            out = np.minimum(out, hi)
        return [Tensor(np.asarray(out).astype(x.data.dtype), x.dtype)]

    def fe(e: ir.Expr) -> ir.Expr:
        if lo is not None:
            e = ir.Func("max", (e, ir.Const(lo)))
        if hi is not None:
            e = ir.Func("min", (e, ir.Const(hi)))
        return e

    return [Tensor(_map(fe, [x], node.what), x.dtype, True)]


# --------------------------------------------------------------------------- ai.onnx: comparisons


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


_CMP = {"Greater": ">", "Less": "<", "GreaterOrEqual": ">=", "LessOrEqual": "<=", "Equal": "=="}
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "=="}
_NP_CMP = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal, "==": np.equal}


@register("", *_CMP)
def _compare(node: Node, ins: list, g: Graph) -> list:
    a, b = ins
    op = _CMP[node.op_type]
    dtype = _same_kind(node, [a, b])
    if not a.batched and not b.batched:
        return [Tensor(_NP_CMP[op](a.data, b.data), "bool")]
    if dtype == "string":
        if op != "==":
            raise node.refuse("orders strings; only Equal is supported on text")
        return [Tensor(_map(lambda x, y: ir.Compare("==", x, y), [a, b], node.what), "bool", True)]
    f32 = dtype == "float32"

    def fe(x: ir.Expr, y: ir.Expr) -> ir.Expr:
        cx, cy = _num(x), _num(y)
        if cy is not None and cx is None:
            return compare_const(op, x, cy, f32)
        if cx is not None and cy is None:
            return compare_const(_FLIP[op], y, cx, f32)
        return ir.Compare(op, x, y)

    return [Tensor(_map(fe, [a, b], node.what), "bool", True)]


@register("", "Not", "And", "Or", "Xor")
def _logic(node: Node, ins: list, g: Graph) -> list:
    op = node.op_type
    if not any(t.batched for t in ins):
        fn = {"Not": np.logical_not, "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}[op]
        return [Tensor(fn(*[t.data for t in ins]), "bool")]

    def fe(*xs: ir.Expr) -> ir.Expr:
        if op == "Not":
            return ir.Not(xs[0])
        if op == "And":
            return ir.And(tuple(xs))
        if op == "Or":
            return ir.Or(tuple(xs))
        return ir.Or((ir.And((xs[0], ir.Not(xs[1]))), ir.And((ir.Not(xs[0]), xs[1]))))

    return [Tensor(_map(fe, ins, node.what), "bool", True)]


@register("", "Where")
def _where(node: Node, ins: list, g: Graph) -> list:
    c, x, y = ins
    dtype = _same_kind(node, [x, y])
    if not any(t.batched for t in ins):
        return [Tensor(np.where(c.data, x.data, y.data), dtype)]
    return [Tensor(_map(_select, [c, x, y], node.what), dtype, True)]


# --------------------------------------------------------------------------- ai.onnx: casts


def _trunc(e: ir.Expr) -> ir.Expr:
    # C's float-to-int conversion truncates; NaN has no integer value (missing)
    return ir.Case(((ir.Compare(">=", e, ir.Const(0.0)), ir.func("floor", e)), (ir.Compare("<", e, ir.Const(0.0)), ir.func("ceil", e))), ir.missing())


@register("", "Cast", attrs=("to", "saturate"))
def _cast(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    to = elem_type(int(node.attr("to")), node.what)
    if not x.batched:
        if to == "string":
            return [constant(np.vectorize(str, otypes=[object])(x.data))]
        if x.dtype == "string":
            return [Tensor(x.data.astype(np.float64).astype(_np_dtype(to)), to)]
        return [Tensor(x.data.astype(_np_dtype(to)), to)]
    src = x.dtype
    if to == src:
        return [x]
    if to == "string" or src == "string":
        raise node.refuse(f"casts {src} to {to}; casts between text and numbers are not supported")
    if to == "bool":
        fe = lambda e: e if e.type == ir.BOOL else ir.Not(ir.Compare("==", e, ir.Const(0.0)))  # noqa: E731
    elif src == "bool":
        fe = _as_float
    elif to in INT_TYPES and src in FLOAT_TYPES:
        fe = _trunc
    else:
        # float <-> float and int -> float keep the value (float32 rounding is within the tolerance)
        return [x.same(to)]
    return [Tensor(_map(fe, [x], node.what), to, True, x.classes)]


# --------------------------------------------------------------------------- ai.onnx: linear algebra


def _dot(xs: Sequence[ir.Expr], ws: Sequence[ir.Expr]) -> ir.Expr:
    terms = [_mul(x, w) for x, w in zip(xs, ws)]
    return ir.add(*terms) if terms else ir.Const(0.0)


@register("", "MatMul")
def _matmul(node: Node, ins: list, g: Graph) -> list:
    a, b = ins
    dtype = _same_kind(node, [a, b])
    if not a.batched and not b.batched:
        return [Tensor(np.matmul(a.data, b.data), dtype)]
    if not a.batched:
        raise node.refuse("multiplies a constant by computed rows from the left; only rows x constant is supported")
    if dtype not in FLOAT_TYPES:
        raise node.refuse(f"on {dtype} values")
    A = a.data
    if A.ndim < 1:
        raise node.refuse("needs rows of rank >= 1")
    B = b.data if b.batched else _exprs(b)
    if B.ndim == 1:
        B2, squeeze = B.reshape(-1, 1), True
    elif B.ndim == 2:
        B2, squeeze = B, False
    else:
        raise node.refuse(f"a right operand of rank {B.ndim + (1 if b.batched else 0)} is not supported")
    k = A.shape[-1]
    if B2.shape[0] != k:
        raise node.refuse(f"shapes {a.row_shape} and {b.data.shape} do not match")
    lead = A.shape[:-1]
    flat = A.reshape(-1, k)
    out = [_dot(flat[r], B2[:, j]) for r in range(flat.shape[0]) for j in range(B2.shape[1])]
    shape = lead + ((B2.shape[1],) if not squeeze else ())
    return [Tensor(_obj(out, shape), dtype, True)]


@register("", "Gemm", attrs=("alpha", "beta", "transA", "transB"))
def _gemm(node: Node, ins: list, g: Graph) -> list:
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha = float(node.attr("alpha", 1.0))
    beta = float(node.attr("beta", 1.0))
    dtype = _same_kind(node, [t for t in (a, b, c) if t is not None])
    if not any(t.batched for t in (a, b, c) if t is not None):
        A = a.data.T if node.attr("transA", 0) else a.data
        B = b.data.T if node.attr("transB", 0) else b.data
        out = alpha * (A @ B)
        if c is not None:
            out = out + beta * c.data
        return [Tensor(np.asarray(out).astype(_np_dtype(dtype)), dtype)]
    if not a.batched or b.batched:
        raise node.refuse("only computed rows A times a constant B (plus C) is supported")
    if node.attr("transA", 0):
        raise node.refuse("transA=1 on computed rows mixes rows")
    B = b.data.T if node.attr("transB", 0) else b.data
    if a.data.ndim != 1 or B.ndim != 2 or B.shape[0] != a.data.shape[0]:
        raise node.refuse(f"shapes {a.row_shape} and {B.shape} do not match")
    W = alpha * B.astype(np.float64)
    m = B.shape[1]
    bias: np.ndarray | None = None
    if c is not None and not c.batched:
        cd = beta * np.asarray(c.data, dtype=np.float64)
        if cd.ndim == 2 and cd.shape[0] == 1:
            cd = cd[0]
        if cd.ndim > 1:
            raise node.refuse(f"a bias C of shape {c.data.shape} varies along the batch dimension")
        bias = _obj([ir.Const(float(v)) for v in np.broadcast_to(cd, (m,))])
    elif c is not None:
        if c.data.ndim != 1 or c.data.shape[0] not in (1, m):
            raise node.refuse(f"a computed bias C of row shape {c.row_shape} does not broadcast to {m} columns")
        bias = _obj([_mul(ir.Const(beta), e) if beta != 1.0 else e for e in np.broadcast_to(c.data, (m,))])
    xs = list(a.data)
    out = []
    for j in range(m):
        e = _dot(xs, [ir.Const(float(w)) for w in W[:, j]])
        if bias is not None:
            e = _add(e, bias[j])
        out.append(e)
    return [Tensor(_obj(out), dtype, True)]


# --------------------------------------------------------------------------- ai.onnx: normalisations


def softmax_exprs(items: Sequence[ir.Expr]) -> list[ir.Expr]:
    """The softmax of one row of scores: ``ir.softmax`` (scikit-learn's arithmetic).

    Its exponents are bounded (``z - max`` clamped at -700), which keeps the float-error
    guards PostgreSQL needs small; a form with fewer repeated subexpressions
    (``1 / (1 + sum exp(z_j - z_k))``) was measured to lower to far larger PostgreSQL
    SQL for that reason.
    """
    return ir.softmax(list(items))


def softmax_zero_exprs(items: Sequence[ir.Expr]) -> list[ir.Expr]:
    """onnxruntime's SOFTMAX_ZERO: a zero score stays zero, the others share the softmax."""
    m = ir.Func("max", tuple(items)) if len(items) > 1 else items[0]
    exps = [_select(ir.Compare("==", z, ir.Const(0.0)), ir.Const(0.0), ir.func("exp", ir.Func("max", (ir.sub(z, m), ir.Const(-700.0))))) for z in items]
    total = ir.add(*exps)
    return [ir.div(e, total) for e in exps]


def _along(node: Node, x: Tensor, axis: int, fn: Callable[[list[ir.Expr]], list[ir.Expr]]) -> np.ndarray:
    ax = _row_axis(node, x, axis)
    moved = np.moveaxis(x.data, ax, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    out = _obj([e for row in flat for e in fn(list(row))], moved.shape)
    return np.moveaxis(out, -1, ax)


@register("", "Softmax", "LogSoftmax", attrs=("axis",))
def _softmax(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    log = node.op_type == "LogSoftmax"
    axis = int(node.attr("axis", 1 if node.opset < 13 else -1))
    if not x.batched:
        d = x.data.astype(np.float64)
        a = axis % x.rank
        z = d - d.max(axis=a, keepdims=True)
        e = np.exp(z)
        out = z - np.log(e.sum(axis=a, keepdims=True)) if log else e / e.sum(axis=a, keepdims=True)
        return [Tensor(out.astype(x.data.dtype), x.dtype)]
    if node.opset < 13:
        a = axis % x.rank
        if a != x.rank - 1:
            raise node.refuse(f"opset {node.opset} softmax over axes {a}.. of a rank-{x.rank} tensor is not supported")

    def fn(items: list[ir.Expr]) -> list[ir.Expr]:
        if not log:
            return softmax_exprs(items)
        m = ir.Func("max", tuple(items)) if len(items) > 1 else items[0]
        lse = ir.func("log", ir.add(*[ir.func("exp", ir.sub(z, m)) for z in items]))
        return [ir.sub(ir.sub(z, m), lse) for z in items]

    last = _row_axis(node, x, axis) == x.data.ndim - 1
    return [Tensor(_along(node, x, axis, fn), x.dtype, True, x.classes, x.data if last and not log else None)]


def _index_labels(n: int) -> tuple[float, ...]:
    return tuple(float(i) for i in range(n))


@register("", "ArgMax", "ArgMin", attrs=("axis", "keepdims", "select_last_index"))
def _argmax(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    axis = int(node.attr("axis", 0))
    keep = int(node.attr("keepdims", 1))
    last = int(node.attr("select_last_index", 0))
    if not x.batched:
        d = x.data if node.op_type == "ArgMax" else -x.data
        a = axis % x.rank
        if last:
            d = np.flip(d, axis=a)
        idx = np.argmax(d, axis=a)
        if last:
            idx = d.shape[a] - 1 - idx
        if keep:
            idx = np.expand_dims(idx, a)
        return [Tensor(idx.astype(np.int64), "int64")]
    if not x.is_float and x.dtype not in INT_TYPES:
        raise node.refuse(f"on {x.dtype} values")
    ax = _row_axis(node, x, axis)
    # the largest probability of a softmax is that of the largest logit; the two differ only
    # where the float32 probabilities tie, and the logits are far smaller in SQL
    data = x.logits if x.logits is not None and ax == x.data.ndim - 1 and node.op_type == "ArgMax" else x.data
    moved = np.moveaxis(data, ax, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    out = []
    for row in flat:
        items = [e if node.op_type == "ArgMax" else ir.func("neg", e) for e in row]
        out.append(scan_argmax(items, _index_labels(len(items)), bool(last)))
    res = _obj(out, moved.shape[:-1])
    if keep:
        res = np.expand_dims(res, ax)
    return [Tensor(res, "int64", True)]


def scan_argmax(items: Sequence[ir.Expr], labels: Sequence[Any], last: bool = False) -> ir.Expr:
    """onnxruntime's ``ArgMax`` of one row, NaN included: it scans from the first item and
    moves on only to a larger one (``>=`` with ``select_last_index``), so a NaN first item
    wins and any other NaN never does.

    >>> from indb.ir.evaluate import evaluate
    >>> import numpy as np
    >>> row = [ir.Feature("a"), ir.Feature("b"), ir.Feature("c")]
    >>> cols = {"a": np.array([np.nan, 1.0]), "b": np.array([5.0, np.nan]), "c": np.array([2.0, 0.0])}
    >>> evaluate(scan_argmax(row, (0.0, 1.0, 2.0)), cols).tolist()
    [0.0, 0.0]
    """
    items, labels = list(items), tuple(labels)
    rest = [_nan_never_wins(z) for z in items[1:]]
    core = ir.ArgMax(tuple(items[:1] + rest), labels) if not last else ir.ArgMax(tuple((items[:1] + rest)[::-1]), labels[::-1])
    kind = ir.TEXT if any(isinstance(v, str) for v in labels) else ir.FLOAT
    return ir.Case(((ir.IsMissing(items[0]), ir.Const(labels[0], kind)),), core)


def _nan_never_wins(z: ir.Expr) -> ir.Expr:
    return ir.Case(((ir.IsMissing(z), ir.Const(-math.inf)),), z)


def _scanned(e: ir.Expr) -> tuple[ir.Expr, ir.ArgMax] | None:
    """The (first item, ArgMax) of a :func:`scan_argmax` expression, else None."""
    if isinstance(e, ir.Case) and len(e.whens) == 1 and isinstance(e.default, ir.ArgMax) and isinstance(e.whens[0][0], ir.IsMissing):
        return e.whens[0][0].operand, e.default
    return None


def relabel(e: ir.Expr, mapping: Callable[[Any], Any], kind: str) -> ir.Expr | None:
    """An argmax index (``ArgMax`` or :func:`scan_argmax`) with its labels mapped, else None."""
    if isinstance(e, ir.ArgMax):
        new = tuple(mapping(v) for v in e.labels)
        return None if any(v is None for v in new) else ir.ArgMax(e.items, new)
    found = _scanned(e)
    if found is None:
        return None
    first, core = found
    inner = relabel(core, mapping, kind)
    if inner is None:
        return None
    first_label = mapping(e.whens[0][1].value)
    if first_label is None:
        return None
    return ir.Case(((ir.IsMissing(first), ir.Const(first_label, kind)),), inner)


def argmax_items(e: ir.Expr) -> tuple[list[ir.Expr], tuple] | None:
    """The scores and labels an argmax label expression compares, else None."""
    while isinstance(e, ir.Case) and len(e.whens) == 1 and isinstance(e.whens[0][1], ir.Const) and e.whens[0][1].value is None:
        e = e.default  # a refusal guard
    found = _scanned(e)
    if found is not None:
        core = found[1]
        items = [x.default if _scanned(x) is None and isinstance(x, ir.Case) and len(x.whens) == 1 and isinstance(x.whens[0][0], ir.IsMissing) else x for x in core.items]
        return items, core.labels
    if isinstance(e, ir.ArgMax):
        return list(e.items), e.labels
    return None


def _reduce_axes(node: Node, ins: list) -> list[int] | None:
    takes_input = (node.op_type == "ReduceSum" and node.opset >= 13) or node.opset >= 18
    if takes_input:
        return _const_ints(node, ins[1] if len(ins) > 1 else None, "axes")
    v = node.attr("axes")
    return None if v is None else [int(a) for a in v]


@register(
    "",
    "ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean", "ReduceSumSquare", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
    attrs=("axes", "keepdims", "noop_with_empty_axes"),
)
def _reduce(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    keep = int(node.attr("keepdims", 1))
    axes = _reduce_axes(node, ins)
    op = node.op_type
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.rank))
    if not x.batched:
        fn = {
            "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min, "ReduceMean": np.mean, "ReduceProd": np.prod,
            "ReduceSumSquare": lambda a, **k: np.sum(a * a, **k), "ReduceL1": lambda a, **k: np.sum(np.abs(a), **k),
            "ReduceL2": lambda a, **k: np.sqrt(np.sum(a * a, **k)), "ReduceLogSum": lambda a, **k: np.log(np.sum(a, **k)),
            "ReduceLogSumExp": lambda a, **k: np.log(np.sum(np.exp(a), **k)),
        }[op]
        out = fn(x.data, axis=tuple(a % x.rank for a in axes), keepdims=bool(keep))
        return [Tensor(np.asarray(out).astype(x.data.dtype), x.dtype)]
    rows = sorted({_row_axis(node, x, a) for a in axes})
    data = np.moveaxis(x.data, rows, list(range(-len(rows), 0)))
    kept_shape = data.shape[: data.ndim - len(rows)]
    flat = data.reshape(kept_shape + (-1,)).reshape(-1, int(np.prod(data.shape[data.ndim - len(rows) :], dtype=np.int64)))

    def red(items: list[ir.Expr]) -> ir.Expr:
        if op == "ReduceMax":
            return ir.Func("max", tuple(items))
        if op == "ReduceMin":
            return ir.Func("min", tuple(items))
        if op == "ReduceProd":
            acc = items[0]
            for e in items[1:]:
                acc = _mul(acc, e)
            return acc
        if op == "ReduceLogSumExp":
            # log(sum(exp(x))) without overflow: the largest term is exp(0)
            m = ir.Func("max", tuple(items)) if len(items) > 1 else items[0]
            return ir.add(m, ir.func("log", ir.add(*[ir.func("exp", ir.Func("max", (ir.sub(e, m), ir.Const(-700.0)))) for e in items])))
        if op in ("ReduceSumSquare", "ReduceL2"):
            items = [_mul(e, e) for e in items]
        if op == "ReduceL1":
            items = [ir.func("abs", e) for e in items]
        total = ir.add(*items)
        if op == "ReduceL2":
            return ir.func("sqrt", total)
        if op == "ReduceLogSum":
            return ir.func("log", total)
        return _div(total, ir.Const(float(len(items)))) if op == "ReduceMean" else total

    out = _obj([red(list(r)) for r in flat], kept_shape)
    if keep:
        for a in rows:
            out = np.expand_dims(out, a)
    return [Tensor(out, x.dtype, True)]


# --------------------------------------------------------------------------- ai.onnx: shapes


@register("", "Constant", attrs=("value", "value_float", "value_floats", "value_int", "value_ints", "value_string", "value_strings"))
def _constant(node: Node, ins: list, g: Graph) -> list:
    ((name, v),) = node.attrs.items()
    if name == "value":
        return [constant(v)]
    if name in ("value_float", "value_floats"):
        return [Tensor(np.asarray(v, dtype=np.float32), "float32")]
    if name in ("value_int", "value_ints"):
        return [Tensor(np.asarray(v, dtype=np.int64), "int64")]
    return [constant(np.asarray(v, dtype=object))]


#: the element type of a ``Shape`` that includes the batch axis: ``[-1, *row_shape]``
BATCH_SHAPE = "batch_shape"
#: the operators that can use such a shape: -1 is "infer" to Reshape, and ConstantOfShape
#: makes a value per row of it
BATCH_SHAPE_USERS = ("Reshape", "ConstantOfShape")


@register("", "Shape", attrs=("start", "end"))
def _shape(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    full = [-1, *x.row_shape] if x.batched else list(x.data.shape)
    start, end = node.attr("start", 0), node.attr("end")
    picked = full[slice(start, end)]
    r = len(full)
    includes_batch = x.batched and (start if start >= 0 else start + r) <= 0 < (r if end is None else (end if end >= 0 else end + r))
    return [Tensor(np.asarray(picked, dtype=np.int64), BATCH_SHAPE if includes_batch else "int64")]


@register("", "ConstantOfShape", attrs=("value",))
def _constant_of_shape(node: Node, ins: list, g: Graph) -> list:
    shape = ins[0]
    v = node.attr("value")
    value = np.asarray(v).reshape(-1)[0] if v is not None else np.float32(0.0)
    dtype = constant(np.asarray([value])).dtype
    if shape.batched:
        raise node.refuse("a computed shape")
    if shape.dtype != BATCH_SHAPE:
        return [Tensor(np.full([int(d) for d in shape.data], value), dtype)]
    row = tuple(int(d) for d in np.asarray(shape.data)[1:])
    return [Tensor(_obj([_const_expr(value, dtype)] * int(np.prod(row, dtype=np.int64)), row), dtype, True)]


@register("", "Concat", attrs=("axis",))
def _concat(node: Node, ins: list, g: Graph) -> list:
    ts = [t for t in ins if t is not None]
    axis = int(node.attr("axis"))
    dtype = _same_kind(node, ts)
    if not any(t.batched for t in ts):
        return [Tensor(np.concatenate([t.data for t in ts], axis=axis), dtype)]
    if not all(t.batched for t in ts):
        raise node.refuse("concatenates constants with computed rows along a row axis; the constant would need the batch size")
    ax = _row_axis(node, ts[0], axis)
    classes = None
    return [Tensor(np.concatenate([t.data for t in ts], axis=ax), dtype, True, classes)]


@register("", "Reshape", attrs=("allowzero",))
def _reshape(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    shape = _const_ints(node, ins[1], "the target shape")
    if not x.batched:
        target = [x.data.shape[i] if s == 0 and not node.attr("allowzero", 0) else s for i, s in enumerate(shape)]
        return [Tensor(x.data.reshape(target), x.dtype)]
    return [Tensor(x.data.reshape(_batched_shape(node, x, shape)), x.dtype, True, x.classes)]


def _batched_shape(node: Node, x: Tensor, shape: list[int]) -> tuple[int, ...]:
    """The row shape after reshaping ``[N, *row]`` to ``shape``, or refuse."""
    size = int(np.prod(x.row_shape, dtype=np.int64))
    if not shape:
        raise node.refuse("reshapes rows to a scalar")
    full = [x.row_shape[i - 1] if s == 0 and not node.attr("allowzero", 0) and i > 0 else s for i, s in enumerate(shape)]
    first, rest = full[0], full[1:]
    if -1 in rest:
        if first not in (0, -1) and shape[0] != 0:
            raise node.refuse(f"target shape {shape} leaves the batch dimension unknown")
        known = int(np.prod([s for s in rest if s != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise node.refuse(f"cannot reshape rows of {size} values to {shape}")
        rest = [size // known if s == -1 else s for s in rest]
    elif shape[0] != 0 and first != -1:
        raise node.refuse(f"target shape {shape} fixes the batch dimension; indb needs it to stay -1 or 0")
    if int(np.prod(rest, dtype=np.int64)) != size:
        raise node.refuse(f"target shape {shape} moves values between rows (rows have {size} values)")
    return tuple(rest)


@register("", "Flatten", attrs=("axis",))
def _flatten(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    axis = int(node.attr("axis", 1))
    if not x.batched:
        a = axis % (x.rank + 1) if axis < 0 else axis
        lead = int(np.prod(x.data.shape[:a], dtype=np.int64))
        return [Tensor(x.data.reshape(lead, -1), x.dtype)]
    a = axis + x.rank if axis < 0 else axis
    if a != 1:
        if a == 0:
            raise node.refuse("axis 0 flattens the batch into one row")
        lead = int(np.prod(x.row_shape[: a - 1], dtype=np.int64))
        raise node.refuse(f"axis {axis} would fold {lead} values per row into the batch dimension")
    return [Tensor(x.data.reshape(-1), x.dtype, True, x.classes)]


def _axes_arg(node: Node, ins: list) -> list[int] | None:
    if node.opset >= 13:
        return _const_ints(node, ins[1] if len(ins) > 1 else None, "axes")
    v = node.attr("axes")
    return None if v is None else [int(a) for a in v]


@register("", "Squeeze", attrs=("axes",))
def _squeeze(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    axes = _axes_arg(node, ins)
    if not x.batched:
        return [Tensor(np.squeeze(x.data, axis=None if axes is None else tuple(axes)), x.dtype)]
    if axes is None:
        rows = tuple(i for i, s in enumerate(x.row_shape) if s == 1)
    else:
        rows = tuple(_row_axis(node, x, a) for a in axes)
    return [Tensor(np.squeeze(x.data, axis=rows), x.dtype, True, x.classes)]


@register("", "Unsqueeze", attrs=("axes",))
def _unsqueeze(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    axes = _axes_arg(node, ins) or []
    out_rank = x.rank + len(axes)
    norm = sorted(a + out_rank if a < 0 else a for a in axes)
    if not x.batched:
        data = x.data
        for a in norm:
            data = np.expand_dims(data, a)
        return [Tensor(data, x.dtype)]
    if 0 in norm:
        raise node.refuse("inserts an axis before the batch dimension")
    data = x.data
    for a in norm:
        data = np.expand_dims(data, a - 1)
    return [Tensor(data, x.dtype, True, x.classes)]


@register("", "Transpose", attrs=("perm",))
def _transpose(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    perm = node.attr("perm")
    if not x.batched:
        return [Tensor(np.transpose(x.data, perm), x.dtype)]
    perm = list(perm) if perm is not None else list(range(x.rank))[::-1]
    if perm[0] != 0:
        raise node.refuse(f"permutation {perm} moves the batch dimension")
    return [Tensor(np.transpose(x.data, [p - 1 for p in perm[1:]]), x.dtype, True)]


def lookup(index: ir.Expr, table: Sequence[Any], kind: str, default: Any = None) -> ir.Expr:
    """``table[index]`` for a computed integer index; an argmax index becomes an argmax of labels."""

    def entry(v: Any) -> Any:
        ok = isinstance(v, float) and v.is_integer() and 0 <= v < len(table)
        return _label_value(table[int(v)], kind) if ok else None

    fused = relabel(index, entry, kind)
    if fused is not None:
        return fused
    whens = tuple((ir.Compare("==", index, ir.Const(float(i))), ir.Const(_label_value(v, kind), kind)) for i, v in enumerate(table))
    return ir.Case(whens, ir.Const(None if default is None else _label_value(default, kind), kind))


def _label_value(v: Any, kind: str) -> Any:
    if kind == ir.TEXT:
        return v.decode() if isinstance(v, bytes) else str(v)
    return float(v)


def _gather(node: Node, data: Tensor, indices: Tensor, axis: int) -> Tensor:
    if not indices.batched:
        idx = np.asarray(indices.data, dtype=np.int64)
        if not data.batched:
            return Tensor(np.take(data.data, idx, axis=axis), data.dtype)
        ax = _row_axis(node, data, axis)
        n = data.data.shape[ax]
        if ((idx < -n) | (idx >= n)).any():
            raise node.refuse(f"index out of range for an axis of {n}")
        classes = None
        if data.classes is not None and ax == data.data.ndim - 1 and idx.ndim == 1:
            classes = tuple(data.classes[i] for i in idx)
        res = np.take(data.data, idx, axis=ax)
        return Tensor(res if isinstance(res, np.ndarray) else _obj([res], ()), data.dtype, True, classes)
    if data.batched:
        raise node.refuse("indices computed from the inputs select from computed values; only constant tables are supported")
    if data.data.ndim != 1:
        raise node.refuse("a computed index into a constant table of rank > 1 is not supported")
    kind = ir.TEXT if data.dtype == "string" else ir.FLOAT
    table = list(data.data)
    out = _map(lambda i: lookup(i, table, kind), [indices], node.what)
    return Tensor(out, data.dtype, True)


@register("", "Gather", attrs=("axis",))
def _gather_op(node: Node, ins: list, g: Graph) -> list:
    return [_gather(node, ins[0], ins[1], int(node.attr("axis", 0)))]


# --------------------------------------------------------------------------- ai.onnx.ml: helpers

POST_TRANSFORMS = ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO")


def post_transform(node: Node, name: str, items: list[ir.Expr]) -> list[ir.Expr]:
    """An ai.onnx.ml ``post_transform`` over one row of scores."""
    if name == "NONE":
        return items
    if name == "LOGISTIC":
        return [ir.func("expit", e) for e in items]
    if name == "SOFTMAX":
        return softmax_exprs(items)
    if name == "SOFTMAX_ZERO":
        return softmax_zero_exprs(items)
    raise node.refuse(f"post_transform={name!r} is not supported (onnxruntime approximates PROBIT); supported: {', '.join(POST_TRANSFORMS)}")


def scores_tensor(node: Node, name: str, items: list[ir.Expr], dtype: str = "float32", classes: tuple | None = None) -> Tensor:
    """One row of scores after ``post_transform`` ``name``, as a tensor."""
    out = post_transform(node, name, items)
    return Tensor(_obj(out), dtype, True, classes, _obj(items) if name == "SOFTMAX" else None)


def _transform_name(node: Node, default: str = "NONE") -> str:
    v = node.attr("post_transform", default)
    if isinstance(v, int):  # ai.onnx.ml 5 encodes it as an enum
        names = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
        if not 0 <= v < len(names):
            raise node.refuse(f"post_transform={v} is not a valid value")
        return names[v]
    return str(v)


def _rows(node: Node, x: Tensor) -> tuple[list[ir.Expr], str]:
    """The features of a [N, F] (or [N]) numeric input, as expressions, and the comparison precision."""
    if not x.batched:
        raise node.refuse("its input does not depend on the graph inputs")
    if x.data.ndim > 1:
        raise node.refuse(f"rows of shape {x.row_shape}; it takes [N, F] input")
    if x.dtype == "string" or x.dtype == "bool":
        raise node.refuse(f"needs numeric input, got {x.dtype}")
    return [_as_float(e) for e in x.data.reshape(-1)], x.dtype


def _labels_attr(node: Node, ints: str, strings: str) -> tuple[tuple, str]:
    li, ls = node.attr(ints), node.attr(strings)
    if li is not None and ls is not None:
        raise node.refuse(f"sets both {ints} and {strings}")
    if li is None and ls is None:
        raise node.refuse(f"sets neither {ints} nor {strings}")
    if li is not None:
        return tuple(float(v) for v in li), "int64"
    return tuple(str(v) for v in ls), "string"


def _label_kind(dtype: str) -> str:
    return ir.TEXT if dtype == "string" else ir.FLOAT


def _label_tensor(e: ir.Expr, dtype: str) -> Tensor:
    return Tensor(_obj([e], ()), dtype, True)


# --------------------------------------------------------------------------- ai.onnx.ml: linear


@register("ai.onnx.ml", "LinearRegressor", attrs=("coefficients", "intercepts", "targets", "post_transform"))
def _linear_regressor(node: Node, ins: list, g: Graph) -> list:
    xs, _ = _rows(node, ins[0])
    targets = int(node.attr("targets", 1))
    coef = np.asarray(node.attr("coefficients", []), dtype=np.float32).astype(np.float64)
    if coef.size != targets * len(xs):
        raise node.refuse(f"{coef.size} coefficients for {targets} target(s) of {len(xs)} features")
    coef = coef.reshape(targets, len(xs))
    icpt = np.asarray(node.attr("intercepts", [0.0] * targets), dtype=np.float32).astype(np.float64)
    if icpt.size not in (targets,):
        raise node.refuse(f"{icpt.size} intercepts for {targets} target(s)")
    scores = [ir.linear(xs, coef[t], float(icpt[t])) for t in range(targets)]
    return [scores_tensor(node, _transform_name(node), scores)]


@register("ai.onnx.ml", "LinearClassifier", attrs=("coefficients", "intercepts", "classlabels_ints", "classlabels_strings", "multi_class", "post_transform"))
def _linear_classifier(node: Node, ins: list, g: Graph) -> list:
    xs, _ = _rows(node, ins[0])
    labels, ldtype = _labels_attr(node, "classlabels_ints", "classlabels_strings")
    kind = _label_kind(ldtype)
    coef = np.asarray(node.attr("coefficients", []), dtype=np.float32).astype(np.float64)
    if coef.size % len(xs):
        raise node.refuse(f"{coef.size} coefficients do not fit {len(xs)} features")
    rows = coef.size // len(xs)
    coef = coef.reshape(rows, len(xs))
    icpt = np.asarray(node.attr("intercepts", [0.0] * rows), dtype=np.float32).astype(np.float64)
    if icpt.size != rows:
        raise node.refuse(f"{icpt.size} intercepts for {rows} coefficient rows")
    scores = [ir.linear(xs, coef[r], float(icpt[r])) for r in range(rows)]
    pt = _transform_name(node)
    if rows == 1:
        if len(labels) != 2:
            raise node.refuse(f"one coefficient row with {len(labels)} class labels; onnxruntime defines it for two")
        s = scores[0]
        label = ir.binary_label(s, ">", 0.0, labels[0], labels[1])
        if pt == "LOGISTIC":
            p = ir.func("expit", s)
            probs = [ir.sub(ir.Const(1.0), p), p]
        elif pt in ("NONE", "SOFTMAX", "SOFTMAX_ZERO"):
            probs = [ir.sub(ir.Const(1.0), s), s]
        else:
            post_transform(node, pt, [s])
            raise AssertionError  # pragma: no cover
    else:
        if rows != len(labels):
            raise node.refuse(f"{rows} coefficient rows for {len(labels)} class labels")
        label = ir.ArgMax(tuple(scores), tuple(_label_value(v, kind) for v in labels))
        return [_label_tensor(label, ldtype), scores_tensor(node, pt, scores, classes=tuple(labels))]
    return [_label_tensor(label, ldtype), Tensor(_obj(probs), "float32", True, tuple(labels))]


# --------------------------------------------------------------------------- ai.onnx.ml: preprocessing


def _per_column(node: Node, name: str, values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 1:
        return np.repeat(arr.reshape(-1), n)
    if arr.size != n:
        raise node.refuse(f"{name} has {arr.size} values for {n} columns")
    return arr.reshape(-1)


@register("ai.onnx.ml", "Scaler", attrs=("offset", "scale"))
def _scaler(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    if not x.batched:
        raise node.refuse("its input does not depend on the graph inputs")
    xs = [_as_float(e) for e in x.data.reshape(-1)]
    last = x.row_shape[-1] if x.row_shape else 1
    off = _per_column(node, "offset", np.asarray(node.attr("offset", [0.0]), np.float32), last).astype(np.float64)
    sc = _per_column(node, "scale", np.asarray(node.attr("scale", [1.0]), np.float32), last).astype(np.float64)
    out = [_mul(_sub(e, ir.Const(float(off[i % last]))), ir.Const(float(sc[i % last]))) for i, e in enumerate(xs)]
    return [Tensor(_obj(out, x.row_shape), "float32", True)]


@register("ai.onnx.ml", "Normalizer", attrs=("norm",))
def _normalizer(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    norm = node.attr("norm", "MAX")
    if norm not in ("MAX", "L1", "L2"):
        raise node.refuse(f"norm={norm!r}; supported: MAX, L1, L2")

    def fn(items: list[ir.Expr]) -> list[ir.Expr]:
        items = [_as_float(e) for e in items]
        if norm == "MAX":
            # onnxruntime's running std::max skips NaN and starts from the lowest float
            present = [_select(ir.IsMissing(e), ir.Const(-3.4028234663852886e38), e) for e in items]
            d = ir.Func("max", tuple(present + [ir.Const(-3.4028234663852886e38)]))
        else:
            d = ir.add(*[ir.func("abs", e) for e in items]) if norm == "L1" else ir.func("sqrt", ir.add(*[_mul(e, e) for e in items]))
            # d >= |x_i| >= 0, and d = 0 only when every x_i is 0, which onnxruntime leaves
            # as it is: dividing by at least the smallest double gives that, writing d once
            safe = ir.Func("max", (d, ir.Const(5e-324)))
            if norm == "L1" or not f32:
                return [ir.div(e, safe) for e in items]
            # onnxruntime squares in float32, where |x| <= 2**-75 squares to 0: a row of
            # such values has a zero norm there and stays as it is
            tiny = float32_le_bound(2.0**-75)
            small = ir.And(tuple(ir.Compare("<=", ir.func("abs", e), ir.Const(tiny)) for e in items))
            return [_select(small, e, ir.div(e, safe)) for e in items]
        zero = ir.Compare("==", d, ir.Const(0.0))
        return [_select(zero, e, ir.div(e, d)) for e in items]

    if not x.batched:
        raise node.refuse("its input does not depend on the graph inputs")
    f32 = x.dtype == "float32"
    if norm == "L1" and x.logits is not None:
        # softmax rows already sum to 1 (to a few ulps, well inside float32's rounding)
        return [x]
    return [Tensor(_along(node, x, -1, fn), "float32", True)]


@register("ai.onnx.ml", "Binarizer", attrs=("threshold",))
def _binarizer(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    t = float(node.attr("threshold", 0.0))
    f32 = x.dtype == "float32"
    if f32:
        t = float(np.float32(t))
    if not x.batched:
        return [Tensor((x.data > t).astype(x.data.dtype), x.dtype)]
    cells = list(x.data.reshape(-1))
    for e in cells:
        g.refuse_rows(ir.IsMissing(e), f"{node.what}: onnxruntime rejects NaN input")
    out = [_select(compare_const(">", e, t, f32), ir.Const(1.0), ir.Const(0.0)) for e in cells]
    return [Tensor(_obj(out, x.row_shape), x.dtype, True)]


@register("ai.onnx.ml", "Imputer", attrs=("imputed_value_floats", "imputed_value_int64s", "replaced_value_float", "replaced_value_int64"))
def _imputer(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    if not x.batched:
        raise node.refuse("its input does not depend on the graph inputs")
    floats = node.attr("imputed_value_floats")
    ints = node.attr("imputed_value_int64s")
    if (floats is None) == (ints is None):
        raise node.refuse("needs exactly one of imputed_value_floats and imputed_value_int64s")
    last = x.row_shape[-1] if x.row_shape else 1
    if floats is not None:
        values = _per_column(node, "imputed_value_floats", np.asarray(floats, np.float32), last).astype(np.float64)
        replaced = float(np.float32(node.attr("replaced_value_float", 0.0)))
    else:
        values = _per_column(node, "imputed_value_int64s", np.asarray(ints, np.int64), last).astype(np.float64)
        replaced = float(node.attr("replaced_value_int64", 0))
    f32 = x.dtype == "float32"
    out = []
    for i, e in enumerate(x.data.reshape(-1)):
        hit = ir.IsMissing(e) if math.isnan(replaced) else compare_const("==", e, replaced, f32)
        out.append(_select(hit, ir.Const(float(values[i % last])), e))
    return [Tensor(_obj(out, x.row_shape), x.dtype, True)]


def _text_or_int_input(node: Node, x: Tensor, g: Graph) -> list[ir.Expr]:
    """Cells of an encoder's input; a missing one (no ONNX value can be NULL text) refuses the row."""
    cells = list(x.data.reshape(-1))
    for e in cells:
        _refuse_missing(node, e, g)
    return cells


def _refuse_missing(node: Node, e: ir.Expr, g: Graph) -> None:
    if not isinstance(e, ir.Const):
        g.refuse_rows(ir.IsMissing(e), f"{node.what}: a NULL input has no value in ONNX")


def _encode_cells(node: Node, x: Tensor, g: Graph, keys: Sequence, values: Sequence, default: Any, kind: str) -> list[ir.Expr]:
    """Each cell mapped through ``keys -> values``; a missing text or integer cell refuses its row
    (a float NaN is an ONNX value and maps like one), unless the mapping fused into an ``ArgMax``,
    which is missing on such rows by itself."""
    out = []
    for e in x.data.reshape(-1):
        r = encode(e, keys, values, default, x.dtype, kind)
        if x.dtype not in FLOAT_TYPES and argmax_items(r) is None:
            _refuse_missing(node, e, g)
        out.append(r)
    return out


def _equals(e: ir.Expr, key: Any, dtype: str) -> ir.Expr:
    """``e == key`` in the input's own type (float32 keys compare float32(e))."""
    if dtype == "string":
        return ir.Compare("==", e, ir.Const(str(key), ir.TEXT))
    k = float(key)
    if math.isnan(k):
        return ir.IsMissing(e)
    if dtype in FLOAT_TYPES:
        return compare_const("==", e, k, dtype == "float32")
    return ir.Compare("==", e, ir.Const(k))


def encode(e: ir.Expr, keys: Sequence[Any], values: Sequence[Any], default: Any, in_dtype: str, out_kind: str) -> ir.Expr:
    """``values[keys.index(e)]`` else ``default``; an ``ArgMax`` input becomes an ``ArgMax`` of the mapped labels."""
    def conv(v: Any) -> Any:
        return None if v is None else _label_value(v, out_kind)

    if in_dtype != "string" and not any(isinstance(k, str) for k in keys):
        table = {float(k): v for k, v in zip(keys, values)}
        fused = relabel(e, lambda lbl: conv(table.get(float(lbl), default)) if isinstance(lbl, float) else None, out_kind)
        if fused is not None:
            return fused
    whens = tuple((_equals(e, k, in_dtype), ir.Const(conv(v), out_kind)) for k, v in zip(keys, values))
    dflt = ir.Const(conv(default), out_kind)
    return ir.Case(whens, dflt) if whens else dflt


@register(
    "ai.onnx.ml",
    "LabelEncoder",
    attrs=(
        "classes_strings", "default_int64", "default_string", "default_float", "default_tensor",
        "keys_strings", "keys_int64s", "keys_floats", "keys_tensor",
        "values_strings", "values_int64s", "values_floats", "values_tensor",
    ),
)
def _label_encoder(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    if node.opset == 1 or node.attr("classes_strings") is not None:
        classes = list(node.attr("classes_strings", []))
        if x.dtype == "string":
            keys, values, out = classes, list(range(len(classes))), "int64"
            default = node.attr("default_int64", -1)
        else:
            keys, values, out = list(range(len(classes))), classes, "string"
            default = node.attr("default_string", "_Unused")
    else:
        keys, kdt = _first_attr(node, ("keys_strings", "string"), ("keys_int64s", "int64"), ("keys_floats", "float32"), ("keys_tensor", None))
        values, out = _first_attr(node, ("values_strings", "string"), ("values_int64s", "int64"), ("values_floats", "float32"), ("values_tensor", None))
        if len(keys) != len(values):
            raise node.refuse(f"{len(keys)} keys for {len(values)} values")
        default = _label_default(node, out)
        if kdt != "string" and node.opset < 4:
            # before ai.onnx.ml 4 onnxruntime looks floats up by value, and NaN never equals NaN
            kept = [(k, v) for k, v in zip(keys, values) if not (isinstance(k, float) and math.isnan(k))]
            keys, values = [k for k, _ in kept], [v for _, v in kept]
    if not x.batched:
        table = dict(zip(keys, values))
        mapped = np.vectorize(lambda v: table.get(v, default), otypes=[object])(x.data)
        return [constant(mapped, None if out == "string" else out)]
    kind = _label_kind(out)
    res = _encode_cells(node, x, g, keys, values, default, kind)
    return [Tensor(_obj(res, x.row_shape), out, True)]


def _first_attr(node: Node, *names: tuple[str, str | None]) -> tuple[list, str]:
    for name, dtype in names:
        v = node.attr(name)
        if v is None:
            continue
        if dtype is None:  # a tensor attribute (ai.onnx.ml 4)
            arr = np.asarray(v)
            if arr.dtype.kind in "OUS":
                return [x.decode() if isinstance(x, bytes) else str(x) for x in arr.reshape(-1)], "string"
            return list(arr.reshape(-1).tolist()), arr.dtype.name
        return list(v), dtype
    raise node.refuse(f"sets none of {', '.join(n for n, _ in names)}")


def _label_default(node: Node, out: str) -> Any:
    t = node.attr("default_tensor")
    if t is not None:
        v = np.asarray(t).reshape(-1)[0]
        return v.decode() if isinstance(v, bytes) else (v if isinstance(v, str) else float(v))
    if out == "string":
        return node.attr("default_string", "_Unused")
    if out == "int64":
        return node.attr("default_int64", -1)
    return node.attr("default_float", -0.0)


@register("ai.onnx.ml", "CategoryMapper", attrs=("cats_int64s", "cats_strings", "default_int64", "default_string"))
def _category_mapper(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    ints = list(node.attr("cats_int64s", []))
    strs = list(node.attr("cats_strings", []))
    if len(ints) != len(strs):
        raise node.refuse(f"{len(ints)} integer and {len(strs)} string categories")
    if x.dtype == "string":
        keys, values, out, default = strs, ints, "int64", node.attr("default_int64", -1)
    else:
        keys, values, out, default = ints, strs, "string", node.attr("default_string", "_Unused")
    if not x.batched:
        table = dict(zip(keys, values))
        return [constant(np.vectorize(lambda v: table.get(v, default), otypes=[object])(x.data), None if out == "string" else out)]
    res = _encode_cells(node, x, g, keys, values, default, _label_kind(out))
    return [Tensor(_obj(res, x.row_shape), out, True)]


@register("ai.onnx.ml", "OneHotEncoder", attrs=("cats_int64s", "cats_strings", "zeros"))
def _one_hot(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    if not x.batched:
        raise node.refuse("its input does not depend on the graph inputs")
    ints, strs = node.attr("cats_int64s"), node.attr("cats_strings")
    if (ints is None) == (strs is None):
        raise node.refuse("needs exactly one of cats_int64s and cats_strings")
    zeros = int(node.attr("zeros", 1))
    cells = _text_or_int_input(node, x, g)
    out = []
    for e in cells:
        if strs is not None:
            if x.dtype != "string":
                raise node.refuse("string categories for numeric input")
            hits = [ir.Compare("==", e, ir.Const(str(c), ir.TEXT)) for c in strs]
        else:
            if x.dtype == "string":
                raise node.refuse("integer categories for string input")
            hits = [_int_cast_equals(e, int(c), x.dtype) for c in ints]
        if not zeros:
            g.refuse_rows(ir.Not(ir.Or(tuple(hits)) if len(hits) > 1 else hits[0]), f"{node.what}: an unknown category (zeros=0)")
        out.extend(_select(h, ir.Const(1.0), ir.Const(0.0)) for h in hits)
    n = len(strs if strs is not None else ints)
    return [Tensor(_obj(out, x.row_shape + (n,)), "float32", True)]


def _int_cast_equals(e: ir.Expr, c: int, dtype: str) -> ir.Expr:
    """``static_cast<int64_t>(x) == c`` (truncation) for a float or integer input."""
    if dtype not in FLOAT_TYPES:
        return ir.Compare("==", e, ir.Const(float(c)))
    f32 = dtype == "float32"
    lo, hi = (c, c + 1) if c > 0 else ((c - 1, c) if c < 0 else (-1, 1))
    above = compare_const(">=" if c > 0 else ">", e, float(lo), f32)
    below = compare_const("<" if c >= 0 else "<=", e, float(hi), f32)
    return ir.And((above, below))


@register("ai.onnx.ml", "ArrayFeatureExtractor")
def _array_feature_extractor(node: Node, ins: list, g: Graph) -> list:
    x, idx = ins
    if x.batched or not idx.batched:
        if not idx.batched:
            # the indices select along the last axis whatever their shape
            idx = Tensor(np.asarray(idx.data).reshape(-1), idx.dtype)
        return [_gather(node, x, idx, -1 if x.rank else 0)]
    if x.data.ndim != 1:
        raise node.refuse("a computed index into a constant table of rank > 1 is not supported")
    # onnxruntime returns [1, N] here; every converter reshapes it back to one value per row
    kind = ir.TEXT if x.dtype == "string" else ir.FLOAT
    table = list(x.data)
    return [Tensor(_map(lambda i: lookup(i, table, kind), [idx], node.what), x.dtype, True)]


@register("ai.onnx.ml", "ZipMap", attrs=("classlabels_int64s", "classlabels_strings"))
def _zipmap(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    labels, _ = _labels_attr(node, "classlabels_int64s", "classlabels_strings")
    if not x.batched or x.data.ndim != 1 or x.data.shape[0] != len(labels):
        raise node.refuse(f"expects [N, {len(labels)}] probabilities")
    return [Tensor(x.data, x.dtype, True, tuple(labels), x.logits)]


@register("ai.onnx.ml", "FeatureVectorizer", attrs=("inputdimensions",))
def _feature_vectorizer(node: Node, ins: list, g: Graph) -> list:
    dims = list(node.attr("inputdimensions", []))
    ts = [t for t in ins if t is not None]
    if len(dims) != len(ts):
        raise node.refuse(f"{len(dims)} input dimensions for {len(ts)} inputs")
    out: list[ir.Expr] = []
    for t, d in zip(ts, dims):
        if not t.batched:
            raise node.refuse("a constant input would need the batch size")
        cells = [_as_float(e) for e in t.data.reshape(-1)]
        if len(cells) < d:
            cells = cells + [ir.Const(0.0)] * (d - len(cells))
        out.extend(cells[:d])
    return [Tensor(_obj(out), "float32", True)]


# --------------------------------------------------------------------------- ai.onnx.ml: tree ensembles

_LEGACY_TREE_ATTRS = (
    "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values", "nodes_values_as_tensor",
    "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true", "nodes_hitrates",
    "nodes_hitrates_as_tensor", "base_values", "base_values_as_tensor", "post_transform",
)
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
            scores = [_add(ir.div(s, ir.Const(n_trees)), ir.Const(float(b))) if b else ir.div(s, ir.Const(n_trees)) for s, b in zip(scores, base)]
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
        m = _select(ir.Compare("==", m, ir.Const(absent)), ir.Const(0.0), m)
        out.append(_add(m, ir.Const(float(base[k]))) if base[k] else m)
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


@register(
    "ai.onnx.ml",
    "TreeEnsembleRegressor",
    attrs=_LEGACY_TREE_ATTRS + ("n_targets", "aggregate_function", "target_treeids", "target_nodeids", "target_ids", "target_weights", "target_weights_as_tensor"),
)
def _tree_regressor(node: Node, ins: list, g: Graph) -> list:
    xs, dtype = _rows(node, ins[0])
    n_out = int(node.attr("n_targets", 1))
    forest = _legacy_forest(node, dtype, "target")
    scores = _aggregate(node, forest, xs, n_out, _base(node, n_out), str(node.attr("aggregate_function", "SUM")))
    return [scores_tensor(node, _transform_name(node), scores)]


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
    xs, dtype = _rows(node, ins[0])
    n_out = int(node.attr("n_targets"))
    forest = _v5_forest(node, dtype)
    agg = int(node.attr("aggregate_function", 1))
    if not 0 <= agg < 4:
        raise node.refuse(f"aggregate_function={agg}; supported: 0-3 (AVERAGE, SUM, MIN, MAX)")
    scores = _aggregate(node, forest, xs, n_out, [0.0] * n_out, ("AVERAGE", "SUM", "MIN", "MAX")[agg])
    return [scores_tensor(node, _transform_name(node), scores, dtype)]


@register(
    "ai.onnx.ml",
    "TreeEnsembleClassifier",
    attrs=_LEGACY_TREE_ATTRS + ("classlabels_int64s", "classlabels_strings", "class_treeids", "class_nodeids", "class_ids", "class_weights", "class_weights_as_tensor"),
)
def _tree_classifier(node: Node, ins: list, g: Graph) -> list:
    xs, dtype = _rows(node, ins[0])
    labels, ldtype = _labels_attr(node, "classlabels_int64s", "classlabels_strings")
    kind = _label_kind(ldtype)
    lv = tuple(_label_value(v, kind) for v in labels)
    n_cls = len(labels)
    forest = _legacy_forest(node, dtype, "class")
    pt = _transform_name(node)
    weights = [w for e in forest.entries for _, w in e]
    used = {c for e in forest.entries for c, _ in e}
    if any(not 0 <= c < n_cls for c in used):
        raise node.refuse(f"a class id is outside the {n_cls} class labels")
    if n_cls > 2:
        base = _base(node, n_cls)
        ens = ensemble(forest.trees(_sum_leaf(n_cls), n_cls), xs, n_cls, base)
        scores = [ir.Index(ens, k) for k in range(n_cls)]
        label = ir.ArgMax(tuple(_scored_items(node, forest, xs, scores, n_cls)), lv)
        return [_label_tensor(label, ldtype), scores_tensor(node, pt, scores, classes=tuple(labels))]
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
    return [_label_tensor(label, ldtype), Tensor(_obj(probs), "float32", True, tuple(labels))]


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
    return [s if k in always else _select(ir.Compare(">", ir.Index(counts, k), ir.Const(0.0)), s, ir.Const(-math.inf)) for k, s in enumerate(scores)]


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
