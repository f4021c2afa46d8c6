"""The intermediate representation (IR): one small typed tree between every model and every backend.

Front ends (``indb.compilers``) build it; backends (``indb.sqlgen.lowering`` for SQL,
``indb.ir.evaluate`` for numpy) consume it. Nodes are frozen dataclasses with value
equality, so a test can compare a compiled model with an expected tree::

    >>> from indb import ir
    >>> x = ir.Feature("x0")
    >>> ir.add(ir.mul(x, ir.const(2.0)), ir.const(1.0)) == ir.Sum((ir.BinOp("*", x, ir.Const(2.0)), ir.Const(1.0)))
    True

Semantics (shared by every backend; ``indb.ir.evaluate`` is the reference):

* Values are IEEE-754 double precision, text, or boolean. A *missing* value is SQL NULL
  or NaN: both are the same thing to the IR (the numpy evaluator uses NaN for floats
  and ``None`` for text).
* Arithmetic follows IEEE-754: overflow gives +-Infinity and underflow gives 0, never an
  error; missing propagates. Backends that raise on overflow must guard (see
  ``indb.sqlgen.passes.guards``).
* Comparisons are two-valued: a comparison with a missing operand is *false*.
* ``Sum`` adds its terms strictly left to right, because the libraries we compile
  (scikit-learn's forests and boosting) do, and class labels must tie-break the same way.

This module depends on the standard library only: the PL/Python engine loads it (and
``indb.ir.evaluate``) inside the database, from the IR stored as JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from dataclasses import replace as _replace
from typing import Any, ClassVar, Iterator, Sequence, Union

FLOAT = "float"
TEXT = "text"
BOOL = "bool"

Scalar = Union[float, str, bool, None]


class Expr:
    """Base class of every IR node.

    A node class declares which of its fields hold child nodes in ``child_fields``;
    ``children()`` and ``with_children()`` (and so every walker: ``walk``,
    ``transform``, the passes, the evaluators) read that one declaration. A child
    field holds one node, a tuple of nodes, or (``Case.whens``) a tuple of
    ``(node, node)`` pairs::

        >>> e = BinOp("+", Feature("a"), Const(1.0))
        >>> e.children()
        (Feature(name='a', kind='float'), Const(value=1.0, kind='float'))
        >>> e.with_children((Feature("b"), Const(2.0)))
        BinOp(op='+', left=Feature(name='b', kind='float'), right=Const(value=2.0, kind='float'))
    """

    __slots__ = ()

    #: names of the fields that hold child nodes, in ``children()`` order
    child_fields: ClassVar[tuple[str, ...]] = ()
    #: the value type of every node of the class (FLOAT, BOOL, "vector"); a class that
    #: leaves it empty has a ``kind`` field or its own ``type``
    result_type: ClassVar[str] = ""

    @property
    def type(self) -> str:
        """FLOAT, TEXT, BOOL or "vector": ``result_type``, else the node's ``kind``."""
        return self.result_type or self.kind  # type: ignore[attr-defined]

    def children(self) -> tuple["Expr", ...]:
        """The child nodes, field by field in ``child_fields`` order (a pair's two in order)."""
        names = self.child_fields
        if len(names) == 1:  # the common shape: one node, or one tuple of nodes
            v = getattr(self, names[0])
            if isinstance(v, Expr):
                return (v,)
            if not v or isinstance(v[0], Expr):
                return v
        elif len(names) == 2:  # two nodes (BinOp, Compare, Let)
            a, b = getattr(self, names[0]), getattr(self, names[1])
            if isinstance(a, Expr) and isinstance(b, Expr):
                return (a, b)
        out: list[Expr] = []
        for name in names:
            v = getattr(self, name)
            if isinstance(v, Expr):
                out.append(v)
            elif v and not isinstance(v[0], Expr):  # (node, node) pairs
                for pair in v:
                    out.extend(pair)
            else:
                out.extend(v)
        return tuple(out)

    def with_children(self, new: Sequence["Expr"]) -> "Expr":
        """A copy of this node with ``children()`` replaced by ``new`` (same order, same count)."""
        new = tuple(new)
        changes: dict[str, Any] = {}
        at = 0
        for name in self.child_fields:
            v = getattr(self, name)
            if isinstance(v, Expr):
                changes[name] = new[at]
                at += 1
            elif v and not isinstance(v[0], Expr):  # (node, node) pairs
                end = at + 2 * len(v)
                changes[name] = tuple(zip(new[at:end:2], new[at + 1 : end : 2]))
                at = end
            else:
                changes[name] = new[at : at + len(v)]
                at += len(v)
        if at != len(new):
            raise ValueError(f"{type(self).__name__} has {at} children, got {len(new)}")
        return _replace(self, **changes) if changes else self  # type: ignore[type-var]


# --------------------------------------------------------------------------- leaves


@dataclass(frozen=True)
class Feature(Expr):
    """An input column of the model, by name. ``kind`` is FLOAT or TEXT."""

    name: str
    kind: str = FLOAT


@dataclass(frozen=True)
class Const(Expr):
    """A constant. ``None`` is the missing value of ``kind``; NaN is normalised to ``None``."""

    value: Scalar
    kind: str = ""

    def __post_init__(self) -> None:
        v = self.value
        if isinstance(v, float) and math.isnan(v):
            object.__setattr__(self, "value", None)
        if not self.kind:
            if isinstance(v, bool):
                k = BOOL
            elif isinstance(v, str):
                k = TEXT
            else:
                k = FLOAT
            object.__setattr__(self, "kind", k)
        if self.kind == FLOAT and self.value is not None:
            object.__setattr__(self, "value", float(self.value))


# ----------------------------------------------------------------------- arithmetic

ARITH_OPS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class _Binary(Expr):
    """``left op right``, ``op`` one of the subclass's ``ops`` (named ``op_name`` in errors)."""

    child_fields = ("left", "right")
    ops: ClassVar[tuple[str, ...]] = ()
    op_name: ClassVar[str] = ""

    op: str
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        if self.op not in self.ops:
            raise ValueError(f"unknown {self.op_name} {self.op!r}")


@dataclass(frozen=True)
class BinOp(_Binary):
    """``left op right`` for op in + - * /."""

    ops = ARITH_OPS
    op_name = "arithmetic operator"
    result_type = FLOAT


@dataclass(frozen=True)
class Sum(Expr):
    """``terms[0] + terms[1] + ...``, added left to right."""

    child_fields = ("terms",)
    result_type = FLOAT

    terms: tuple[Expr, ...]


# name -> arity (None: variadic). Every backend implements exactly these.
FUNCTIONS: dict[str, int | None] = {
    "neg": 1,
    "abs": 1,
    "exp": 1,  # IEEE: overflow -> inf, underflow -> 0
    "log": 1,  # natural log; log(0) = -inf, log(x<0) = missing
    "sqrt": 1,  # sqrt(x<0) = missing
    "tanh": 1,
    "expit": 1,  # 1 / (1 + exp(-x))
    "floor": 1,
    "ceil": 1,
    "sign": 1,
    "pow": 2,  # x ** y
    "min": None,  # missing if any argument is missing
    "max": None,
}


@dataclass(frozen=True)
class Func(Expr):
    """An elementwise mathematical function from ``FUNCTIONS``."""

    child_fields = ("args",)
    result_type = FLOAT

    name: str
    args: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if self.name not in FUNCTIONS:
            raise ValueError(f"unknown IR function {self.name!r}")
        arity = FUNCTIONS[self.name]
        if arity is not None and len(self.args) != arity:
            raise ValueError(f"{self.name} takes {arity} argument(s), got {len(self.args)}")


# -------------------------------------------------------------------------- logic

COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")


@dataclass(frozen=True)
class Compare(_Binary):
    """``left op right``; false when either side is missing (so ``!=`` too)."""

    ops = COMPARE_OPS
    op_name = "comparison"
    result_type = BOOL


@dataclass(frozen=True)
class InSet(Expr):
    """``operand`` is one of ``values`` (a sorted tuple); false when missing."""

    child_fields = ("operand",)
    result_type = BOOL

    operand: Expr
    values: tuple


@dataclass(frozen=True)
class IsMissing(Expr):
    """True when ``operand`` is NULL or NaN."""

    child_fields = ("operand",)
    result_type = BOOL

    operand: Expr


@dataclass(frozen=True)
class And(Expr):
    child_fields = ("terms",)
    result_type = BOOL

    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Or(Expr):
    child_fields = ("terms",)
    result_type = BOOL

    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Not(Expr):
    child_fields = ("operand",)
    result_type = BOOL

    operand: Expr


@dataclass(frozen=True)
class Case(Expr):
    """The value of the first ``(condition, value)`` whose condition is true, else ``default``."""

    child_fields = ("whens", "default")

    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr

    @property
    def type(self) -> str:
        return self.default.type


@dataclass(frozen=True)
class Lazy(Expr):
    """``operand``, which must be computed only where it is used (a guarded branch).

    The value is the operand's. It marks what a guard protects (``exp`` of an argument
    that may overflow, a division by a value that may be zero): a backend that computes
    shared values ahead of time (a PL/pgSQL variable, a derived column) must not hoist
    anything from inside it.
    """

    child_fields = ("operand",)

    operand: Expr

    @property
    def type(self) -> str:
        return self.operand.type


@dataclass(frozen=True)
class Fail(Expr):
    """Raise an error with ``message`` when evaluated (``on_missing="error"``); typed ``kind``."""

    message: str
    kind: str = FLOAT


# ------------------------------------------------------------------ vectors, reuse


@dataclass(frozen=True)
class Vector(Expr):
    """Several values side by side (class scores, probabilities, transformed columns)."""

    child_fields = ("items",)
    result_type = "vector"

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Index(Expr):
    """Element ``i`` of a vector-valued node (``Vector`` or ``TreeEnsemble``)."""

    child_fields = ("vector",)

    vector: Expr
    i: int

    @property
    def type(self) -> str:
        return FLOAT if isinstance(self.vector, TreeEnsemble) else self.vector.items[self.i].type  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ArgMax(Expr):
    """``labels[i]`` for the first largest of ``items``; missing if any item is missing."""

    child_fields = ("items",)

    items: tuple[Expr, ...]
    labels: tuple

    @property
    def type(self) -> str:
        return TEXT if any(isinstance(v, str) for v in self.labels) else FLOAT


@dataclass(frozen=True)
class Let(Expr):
    """Compute ``value`` once, name it ``name``, and evaluate ``body`` (which uses ``Var(name)``)."""

    child_fields = ("value", "body")

    name: str
    value: Expr
    body: Expr

    @property
    def type(self) -> str:
        return self.body.type


@dataclass(frozen=True)
class Var(Expr):
    """A reference to the value bound by an enclosing ``Let``."""

    name: str
    kind: str = FLOAT


# --------------------------------------------------------------------- tree ensembles


@dataclass(frozen=True)
class Tree:
    """One binary tree in structure-of-arrays form; node 0 is the root.

    For node ``n``: ``feature[n]`` is an index into ``TreeEnsemble.inputs`` or -1 for a
    leaf. A numeric split goes left when ``input <= threshold[n]`` (``<`` when the
    ensemble is ``strict``); a categorical split (``categories[n]`` not None) goes left
    when the input is one of ``categories[n]``. A missing input goes left when
    ``missing_left[n]``. ``value[n]`` holds the leaf's ``n_outputs`` values.
    """

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    missing_left: tuple[bool, ...]
    value: tuple[tuple[float, ...], ...]
    categories: tuple[tuple | None, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.feature)
        for name in ("threshold", "left", "right", "missing_left", "value"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Tree.{name} has {len(getattr(self, name))} entries, expected {n}")
        if self.categories and len(self.categories) != n:
            raise ValueError("Tree.categories must be empty or have one entry per node")

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    def is_leaf(self, n: int) -> bool:
        return self.feature[n] < 0

    def category_set(self, n: int) -> tuple | None:
        return self.categories[n] if self.categories else None

    def depth(self) -> int:
        best, stack = 0, [(0, 0)]
        while stack:
            n, d = stack.pop()
            if self.feature[n] < 0:
                best = max(best, d)
            else:
                stack.append((self.left[n], d + 1))
                stack.append((self.right[n], d + 1))
        return best


@dataclass(frozen=True)
class TreeEnsemble(Expr):
    """A vector of ``n_outputs`` sums: ``base[k] + leaf_0[k] + leaf_1[k] + ...`` (left to right)."""

    child_fields = ("inputs",)
    result_type = "vector"

    inputs: tuple[Expr, ...]
    trees: tuple[Tree, ...]
    n_outputs: int
    base: tuple[float, ...]
    strict: bool = False

    def __post_init__(self) -> None:
        if len(self.base) != self.n_outputs:
            raise ValueError("TreeEnsemble.base needs one value per output")


# ------------------------------------------------------------------- the whole model

OUTPUT_KINDS = ("predict", "proba", "decision", "transform")


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str = FLOAT


@dataclass(frozen=True)
class Model:
    """A compiled model: its inputs, and one expression per output kind it offers.

    ``outputs`` maps an output kind (``OUTPUT_KINDS``) to an expression: a scalar for
    ``predict`` (and for a single ``decision``), a ``Vector`` for ``proba``,
    ``transform`` and a per-class ``decision``.
    """

    features: tuple[FeatureSpec, ...]
    outputs: tuple[tuple[str, Expr], ...]
    classes: tuple | None = None
    source: str = ""
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=True)

    def output(self, kind: str) -> Expr:
        for k, e in self.outputs:
            if k == kind:
                return e
        raise KeyError(kind)

    @property
    def output_kinds(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.outputs)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


# ---------------------------------------------------------------- small constructors


def const(v: Scalar, kind: str = "") -> Const:
    return Const(v, kind)


def add(*terms: Expr) -> Expr:
    flat: list[Expr] = []
    for t in terms:
        if isinstance(t, Sum):
            flat.extend(t.terms)
        else:
            flat.append(t)
    return flat[0] if len(flat) == 1 else Sum(tuple(flat))


def sub(a: Expr, b: Expr) -> BinOp:
    return BinOp("-", a, b)


def mul(a: Expr, b: Expr) -> BinOp:
    return BinOp("*", a, b)


def div(a: Expr, b: Expr) -> BinOp:
    return BinOp("/", a, b)


def func(name: str, *args: Expr) -> Func:
    return Func(name, tuple(args))


def case(whens: Sequence[tuple[Expr, Expr]], default: Expr) -> Case:
    return Case(tuple((c, v) for c, v in whens), default)


def vector(items: Sequence[Expr]) -> Vector:
    return Vector(tuple(items))


def missing(kind: str = FLOAT) -> Const:
    """The missing value (SQL NULL) of ``kind``."""
    return Const(None, kind)


def any_missing(inputs: Sequence[Expr]) -> Expr:
    """True when any of ``inputs`` is missing (constants are skipped)."""
    tests = [IsMissing(x) for x in inputs if not isinstance(x, Const)]
    if not tests:
        return Const(False)
    return tests[0] if len(tests) == 1 else Or(tuple(tests))


def binary_label(score: Expr, op: str, threshold: float, negative: Scalar, positive: Scalar) -> Expr:
    """``positive`` when ``score op threshold`` else ``negative``; missing when the score is.

    A bare ``Case`` would send a missing score to ``negative``; a label must not be
    invented for a row the model cannot score.
    """
    kind = TEXT if isinstance(negative, str) or isinstance(positive, str) else FLOAT
    return Case(
        ((IsMissing(score), Const(None, kind)), (Compare(op, score, Const(float(threshold))), Const(positive, kind))),
        Const(negative, kind),
    )


def softmax(items: Sequence[Expr]) -> list[Expr]:
    """``exp(z_k - max(z)) / sum_j exp(z_j - max(z))``, the way scikit-learn computes it.

    The exponent is clamped at -700 (``max(z_k - m, -700)``): the exact term is below
    1e-304 there, and the clamp keeps ``term / sum`` from underflowing on engines that
    raise on underflow. Missing propagates through ``max``.
    """
    m = Func("max", tuple(items)) if len(items) > 1 else items[0]
    exps = [Func("exp", (Func("max", (sub(z, m), Const(-700.0))),)) for z in items]
    total = add(*exps)
    return [div(e, total) for e in exps]


def pairwise_sum(terms: Sequence[Expr]) -> Expr:
    """``terms`` added in the order ``numpy.sum`` uses along a contiguous axis.

    numpy sums a contiguous run of values pairwise: fewer than 8 left to right; up to
    128 in 8 interleaved lanes, combined as ``((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))``,
    then the leftover tail; longer runs split in two halves (the first a multiple of 8).
    Models whose arithmetic is ``X.sum(axis=1)`` over a row of terms (GaussianNB's
    per-class sum, a row of probabilities) then round exactly as numpy does.

    >>> xs = [Feature(f"x{i}") for i in range(3)]
    >>> pairwise_sum(xs) == Sum(tuple(xs))
    True
    """
    terms = list(terms)
    n = len(terms)
    if n == 0:
        raise ValueError("pairwise_sum needs at least one term")
    if n < 8:
        return terms[0] if n == 1 else Sum(tuple(terms))
    if n <= 128:
        body = n - n % 8
        lanes = [terms[j:body:8] for j in range(8)]
        r = [lane[0] if len(lane) == 1 else Sum(tuple(lane)) for lane in lanes]

        def pair(a: Expr, b: Expr) -> Expr:
            return Sum((a, b))

        res = pair(pair(pair(r[0], r[1]), pair(r[2], r[3])), pair(pair(r[4], r[5]), pair(r[6], r[7])))
        return Sum((res, *terms[body:])) if body < n else res
    half = n // 2
    half -= half % 8
    return Sum((pairwise_sum(terms[:half]), pairwise_sum(terms[half:])))


def linear(inputs: Sequence[Expr], weights: Sequence[float], intercept: float) -> Expr:
    """``inputs . weights + intercept`` in the order numpy's ``X @ w + b`` would add it.

    Zero weights are kept (``0 * inf`` is NaN in the model too).
    """
    terms: list[Expr] = [mul(x, const(float(w))) for x, w in zip(inputs, weights)]
    terms.append(const(float(intercept)))
    return add(*terms)


# --------------------------------------------------------------------- traversal


def walk(e: Expr) -> Iterator[Expr]:
    """Every node once (shared subtrees once), parents before children."""
    seen: set[int] = set()
    stack = [e]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        yield n
        stack.extend(reversed(n.children()))


def features_used(e: Expr) -> list[str]:
    out: list[str] = []
    for n in walk(e):
        if isinstance(n, Feature) and n.name not in out:
            out.append(n.name)
    return out


def replace_children(e: Expr, new: Sequence[Expr]) -> Expr:
    """A copy of ``e`` with ``children()`` replaced by ``new`` (same order): ``e.with_children(new)``."""
    return e.with_children(new) if e.child_fields else e


def transform(e: Expr, fn) -> Expr:
    """Rebuild ``e`` bottom-up, calling ``fn(node_with_new_children)``; shared subtrees once."""
    memo: dict[int, Expr] = {}

    def go(n: Expr) -> Expr:
        key = id(n)
        if key in memo:
            return memo[key]
        kids = n.children()
        if kids:
            new_kids = [go(k) for k in kids]
            if any(a is not b for a, b in zip(new_kids, kids)):
                n2 = replace_children(n, new_kids)
            else:
                n2 = n
        else:
            n2 = n
        out = fn(n2)
        memo[key] = out
        return out

    return go(e)


def substitute(e: Expr, mapping: dict[str, Expr]) -> Expr:
    """Replace ``Feature(name)`` by ``mapping[name]`` (how a pipeline chains its steps)."""

    def fn(n: Expr) -> Expr:
        if isinstance(n, Feature) and n.name in mapping:
            return mapping[n.name]
        return n

    return transform(e, fn)


def size(e: Expr) -> int:
    """Number of IR nodes, counting tree-ensemble nodes, shared subtrees once."""
    total = 0
    for n in walk(e):
        total += 1
        if isinstance(n, TreeEnsemble):
            total += sum(t.n_nodes for t in n.trees)
    return total


def inline_size(e: Expr) -> int:
    """Number of IR nodes with every shared subtree written out at each of its uses.

    ``size`` counts a shared subtree once, as the numpy evaluator computes it; SQL
    without common subexpressions repeats it at every use, so this is the cheap
    estimate a router reads to choose between SQL and the PL/Python engine. A tree
    ensemble counts each of its nodes, plus the input a split reads at every split;
    a ``Var`` counts the value its ``Let`` binds. The number can be astronomically
    large (an MLP, an unrolled iteration): Python integers do not overflow.

    >>> x = Feature("x")
    >>> y = add(x, x)
    >>> (size(mul(y, y)), inline_size(mul(y, y)))
    (3, 7)
    """
    return _inline_size(e, {})


def _inline_size(root: Expr, env: dict[str, int]) -> int:
    memo: dict[int, int] = {}
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        n, expanded = stack.pop()
        if id(n) in memo:
            continue
        if isinstance(n, Let):
            inner = dict(env)
            inner[n.name] = _inline_size(n.value, env)
            memo[id(n)] = 1 + _inline_size(n.body, inner)
            continue
        kids = n.children()
        if not expanded:
            stack.append((n, True))
            stack.extend((k, False) for k in kids if id(k) not in memo)
            continue
        if isinstance(n, Var):
            memo[id(n)] = env.get(n.name, 1)
        elif isinstance(n, TreeEnsemble):
            reads = [memo[id(k)] for k in kids]
            total = 1
            for t in n.trees:
                total += sum(1 if f < 0 else 1 + reads[f] for f in t.feature)
            memo[id(n)] = total
        else:
            memo[id(n)] = 1 + sum(memo[id(k)] for k in kids)
    return memo[id(root)]


# ----------------------------------------------------------------- JSON round trip

_NODE_TYPES = {
    cls.__name__: cls
    for cls in (Feature, Const, BinOp, Sum, Func, Compare, InSet, IsMissing, And, Or, Not, Case, Lazy, Fail, Vector, Index, ArgMax, Let, Var, TreeEnsemble)
}


def _enc_scalar(v: Any) -> Any:
    if isinstance(v, float):
        if math.isinf(v):
            return {"f": "inf" if v > 0 else "-inf"}
        return v
    return v


def _dec_scalar(v: Any) -> Any:
    if isinstance(v, dict) and "f" in v:
        return float(v["f"])
    return v


def _enc_tree(t: Tree) -> dict:
    return {
        "feature": list(t.feature),
        "threshold": [_enc_scalar(float(x)) for x in t.threshold],
        "left": list(t.left),
        "right": list(t.right),
        "missing_left": [bool(b) for b in t.missing_left],
        "value": [[_enc_scalar(float(x)) for x in v] for v in t.value],
        "categories": [None if c is None else [_enc_scalar(x) for x in c] for c in t.categories],
    }


def _dec_tree(d: dict) -> Tree:
    return Tree(
        feature=tuple(d["feature"]),
        threshold=tuple(float(_dec_scalar(x)) for x in d["threshold"]),
        left=tuple(d["left"]),
        right=tuple(d["right"]),
        missing_left=tuple(d["missing_left"]),
        value=tuple(tuple(float(_dec_scalar(x)) for x in v) for v in d["value"]),
        categories=tuple(None if c is None else tuple(_dec_scalar(x) for x in c) for c in d["categories"]),
    )


def to_data(e: Expr) -> Any:
    """A JSON-able form of ``e``; shared subtrees are written once and referenced."""
    ids: dict[int, int] = {}
    nodes: list[Any] = []

    def enc(n: Expr) -> int:
        if id(n) in ids:
            return ids[id(n)]
        d: dict[str, Any] = {"t": type(n).__name__}
        for f in fields(n):  # type: ignore[arg-type]
            v = getattr(n, f.name)
            if isinstance(v, Expr):
                d[f.name] = {"n": enc(v)}
            elif f.name == "trees":
                d[f.name] = [_enc_tree(t) for t in v]
            elif f.name == "whens":
                d[f.name] = [[{"n": enc(c)}, {"n": enc(x)}] for c, x in v]
            elif isinstance(v, tuple) and v and isinstance(v[0], Expr):
                d[f.name] = [{"n": enc(x)} for x in v]
            elif isinstance(v, tuple):
                d[f.name] = [_enc_scalar(x) for x in v]
            else:
                d[f.name] = _enc_scalar(v)
        ids[id(n)] = len(nodes)
        nodes.append(d)
        return ids[id(n)]

    root = enc(e)
    return {"nodes": nodes, "root": root}


def from_data(data: Any, shared: dict | None = None) -> Expr:
    """The expression ``to_data`` wrote. With ``shared`` (one dict across calls), a node
    equal to one decoded before (the same JSON, children included) is that same
    object: a model's outputs then share the subtrees they have in common (its trees,
    its layers), and an evaluator that memoises by node computes them once. Nodes
    that read a ``Var`` are never merged (their value depends on the enclosing Let).

    ``data`` is checked first (``indb.ir.validate``): a malformed or hostile document
    raises ``validate.InvalidIR`` (a ValueError) before any node is built."""
    _validator().expr_data(data)
    return _from_data(data, shared)


def _validator():
    try:
        from indb.ir import validate
    except ImportError:  # pragma: no cover - loaded stand-alone inside PL/Python
        import validate  # type: ignore[no-redef]
    return validate


def _from_data(data: Any, shared: dict | None) -> Expr:
    nodes = data["nodes"]
    built: list[Expr] = []
    ids: list[int] = []  # each node's number in ``shared`` (-1: reads a Var, not shared)

    def dec_field(name: str, v: Any) -> Any:
        if isinstance(v, dict) and "n" in v:
            return built[v["n"]]
        if name == "trees":
            return tuple(_dec_tree(t) for t in v)
        if name == "whens":
            return tuple((built[c["n"]], built[x["n"]]) for c, x in v)
        if isinstance(v, list):
            return tuple(built[x["n"]] if isinstance(x, dict) and "n" in x else _dec_scalar(x) for x in v)
        return _dec_scalar(v)

    def canonical(v: Any, seen: list[int]) -> Any:  # child references by their number in ``shared``
        if isinstance(v, dict) and "n" in v and len(v) == 1:
            seen.append(ids[v["n"]])
            return {"c": ids[v["n"]]}
        if isinstance(v, list):
            return [canonical(x, seen) for x in v]
        return v

    for d in nodes:  # children are always encoded before their parents
        key = None
        if shared is not None:
            children: list[int] = []
            key = json.dumps({k: canonical(v, children) for k, v in d.items()}, sort_keys=True)
            if d["t"] == "Var" or -1 in children:
                key = None
            else:
                got = shared.get(key)
                if got is not None:
                    ids.append(got[1])
                    built.append(got[0])
                    continue
        cls = _NODE_TYPES[d["t"]]
        kwargs = {k: dec_field(k, v) for k, v in d.items() if k != "t"}
        built.append(cls(**kwargs))
        if shared is not None:
            if key is None:
                ids.append(-1)
            else:
                ids.append(len(shared))
                shared[key] = (built[-1], ids[-1])
    return built[data["root"]]


def model_to_json(m: Model) -> str:
    """Canonical JSON of a model (sorted keys, no whitespace): what the registry stores and checksums."""
    data = {
        "format": 1,
        "features": [[f.name, f.kind] for f in m.features],
        "outputs": [[k, to_data(e)] for k, e in m.outputs],
        "classes": None if m.classes is None else [_enc_scalar(c) for c in m.classes],
        "source": m.source,
        "extra": [[k, v] for k, v in m.extra],
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def model_from_json(s: str, share: bool = False) -> Model:
    """The model ``model_to_json`` wrote; ``share``: its outputs share equal subtrees
    (``from_data``), for an evaluator (the SQL lowering keeps the stored sharing).
    The document is checked first: ``indb.ir.validate.InvalidIR`` (a ValueError) says
    what is wrong with it."""
    data = _validator().model_json(s)  # every field checked (validate.InvalidIR) before use
    shared: dict | None = {} if share else None
    return Model(
        features=tuple(FeatureSpec(n, k) for n, k in data["features"]),
        outputs=tuple((k, _from_data(e, shared)) for k, e in data["outputs"]),
        classes=None if data["classes"] is None else tuple(_dec_scalar(c) for c in data["classes"]),
        source=data["source"],
        extra=tuple((k, v) for k, v in data["extra"]),
    )


def validate_model(m: Model) -> None:
    """Check ``m`` as the engine will check it when it loads it (``validate.InvalidIR``):
    what a deploy refuses before it writes anything."""
    _validator().model_data(json.loads(model_to_json(m)))


def checksum(model_json: str) -> str:
    return hashlib.sha256(model_json.encode("utf-8")).hexdigest()
