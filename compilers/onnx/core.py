"""What every ONNX operator handler works with: graph values (:class:`Tensor`), nodes
(:class:`Node`), the operator registry (:func:`register`), the state of the graph being
compiled (:class:`Graph`) and the helpers the operator families share.

A value that depends on the graph inputs is *symbolic*: an object array of IR
expressions, one per element of a row (the batch axis 0 is implicit). A constant is a
numpy array in its own dtype. Helpers that build expressions fold constants
(:func:`fold_add` of two constants is a constant) so a constant subgraph costs nothing in SQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from indb import ir
from indb.compilers.onnx.labels import lookup
from indb.compilers.trees_shared import softmax_exprs
from indb.errors import UnsupportedModelError


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


def obj_array(items: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An object array of expressions (numpy must not look inside the dataclasses)."""
    flat = list(items)
    out = np.empty(len(flat), dtype=object)
    for i, v in enumerate(flat):
        out[i] = v
    return out.reshape(shape if shape is not None else (len(flat),))


def const_expr(v: Any, dtype: str) -> ir.Expr:
    """One constant element as an IR constant of its element type."""
    if dtype == "string":
        return ir.Const(None if v is None else (v.decode() if isinstance(v, bytes) else str(v)), ir.TEXT)
    if dtype == "bool":
        return ir.Const(bool(v))
    return ir.Const(float(v))


def as_exprs(t: Tensor) -> np.ndarray:
    """The elements of ``t`` as IR expressions (a constant keeps its full shape)."""
    if t.batched:
        return t.data
    flat = [const_expr(v, t.dtype) for v in t.data.reshape(-1)]
    return obj_array(flat, t.data.shape)


def _align(t: Tensor, row_rank: int, what: str) -> np.ndarray:
    """A constant as a row of a batched value of row rank ``row_rank`` (numpy broadcasting)."""
    e = as_exprs(t)
    if t.batched:
        return e
    if e.ndim > row_rank:
        if e.ndim != row_rank + 1 or e.shape[0] != 1:
            raise UnsupportedModelError(f"{what}: a constant of shape {t.data.shape} would broadcast along the batch dimension")
        e = e.reshape(e.shape[1:])
    return e

def map_cells(fn: Callable[..., ir.Expr], ts: Sequence[Tensor], what: str) -> np.ndarray:
    """``fn`` applied elementwise over batched and constant tensors (broadcasting rows)."""
    rank = max(len(t.row_shape) for t in ts if t.batched)
    arrays = [_align(t, rank, what) for t in ts]
    try:
        shape = np.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:
        raise UnsupportedModelError(f"{what}: shapes {[a.shape for a in arrays]} do not broadcast") from None
    arrays = [np.broadcast_to(a, shape) for a in arrays]
    out = [fn(*vals) for vals in zip(*[a.reshape(-1) for a in arrays])]
    return obj_array(out, shape)


def const_value(e: ir.Expr) -> float | None:
    """The value of a float constant expression, else None."""
    if isinstance(e, ir.Const) and e.kind == ir.FLOAT:
        return math.nan if e.value is None else float(e.value)
    return None


def fold_add(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    """``a + b``, folded when both are float constants."""
    x, y = const_value(a), const_value(b)
    if x is not None and y is not None:
        return ir.Const(x + y)
    return ir.add(a, b)


def fold_mul(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    """``a * b``, folded when both are float constants."""
    x, y = const_value(a), const_value(b)
    if x is not None and y is not None:
        return ir.Const(x * y)
    return ir.mul(a, b)


def fold_sub(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    """``a - b``, folded when both are float constants."""
    x, y = const_value(a), const_value(b)
    if x is not None and y is not None:
        return ir.Const(x - y)
    return ir.sub(a, b)


def fold_div(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    """``a / b``, folded when both are float constants (and ``b`` is not 0)."""
    x, y = const_value(a), const_value(b)
    if x is not None and y is not None and y != 0:
        return ir.Const(x / y)
    return ir.div(a, b)


def select(cond: ir.Expr, yes: ir.Expr, no: ir.Expr) -> ir.Expr:
    """``cond ? yes : no``, decided at compile time when ``cond`` is a constant."""
    if isinstance(cond, ir.Const):
        return yes if cond.value else no
    return ir.Case(((cond, yes),), no)


def as_float(e: ir.Expr) -> ir.Expr:
    """A boolean expression as 1.0/0.0; numbers unchanged."""
    if e.type == ir.BOOL:
        return select(e, ir.Const(1.0), ir.Const(0.0))
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


def domain_name(d: str) -> str:
    """An operator domain as the registry keys it (``""`` is ``ai.onnx``)."""
    return "ai.onnx" if d in ("", "ai.onnx") else d


def register(domain: str, *op_types: str, attrs: Sequence[str] = ()) -> Callable[[Handler], Handler]:
    """Register a handler for ONNX operators; ``attrs`` lists the attributes it understands.

    Registering an operator twice is an error; a node with an attribute outside
    ``attrs`` is refused by name.
    """

    def deco(fn: Handler) -> Handler:
        for op in op_types:
            key = (domain_name(domain), op)
            if key in _OPS:
                raise ValueError(f"ONNX operator {key[0]}.{op} already has a handler ({_OPS[key].fn.__name__})")
            _OPS[key] = OpSpec(fn, frozenset(attrs))
        return fn

    return deco


def handler_spec(domain: str, op_type: str) -> OpSpec | None:
    """The registered handler of ``domain.op_type`` (domain as the graph writes it), else None."""
    return _OPS.get((domain_name(domain), op_type))


def supported_ops() -> list[str]:
    """Every supported operator as ``domain.op_type``, sorted."""
    return sorted(f"{d}.{op}" for d, op in _OPS)


# --------------------------------------------------------------------------- the graph's state


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


def np_dtype(dtype: str) -> Any:
    """The numpy dtype of an element type (object for strings)."""
    return object if dtype == "string" else np.dtype(dtype)


def constant(value: Any, dtype: str | None = None) -> Tensor:
    """A constant tensor from a numpy value."""
    arr = np.asarray(value)
    if arr.dtype.kind in "OUS":
        arr = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(arr) if arr.size else arr.astype(object)
        return Tensor(arr.astype(object), "string")
    return Tensor(arr, dtype or arr.dtype.name)


#: the element type of a ``Shape`` that includes the batch axis: ``[-1, *row_shape]``
BATCH_SHAPE = "batch_shape"
#: the operators that can use such a shape: -1 is "infer" to Reshape, and ConstantOfShape
#: makes a value per row of it
BATCH_SHAPE_USERS = ("Reshape", "ConstantOfShape")


# --------------------------------------------------------------------------- ai.onnx: helpers


def same_kind(node: Node, ts: Sequence[Tensor]) -> str:
    """The one element type of ``ts``; refuses inputs of different types."""
    dtypes = {t.dtype for t in ts}
    if len(dtypes) != 1:
        raise node.refuse(f"inputs of different element types {sorted(dtypes)}")
    return dtypes.pop()


def row_axis(node: Node, t: Tensor, axis: int) -> int:
    """A full-tensor axis of batched ``t`` as an axis of its rows (axis 0 is the batch)."""
    a = axis + t.rank if axis < 0 else axis
    if not 0 <= a < t.rank:
        raise node.refuse(f"axis {axis} is out of range for rank {t.rank}")
    if t.batched:
        if a == 0:
            raise node.refuse("works along the batch dimension (axis 0), which mixes rows; indb scores rows independently")
        return a - 1
    return a


def const_ints(node: Node, t: Tensor | None, what: str) -> list[int] | None:
    """A constant integer input (axes, shapes) as a list; refuses a computed one."""
    if t is None:
        return None
    if t.batched:
        raise node.refuse(f"{what} must be a constant, not computed from the inputs")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def unary(node: Node, x: Tensor, fn_expr: Callable[[ir.Expr], ir.Expr], fn_np: Callable[[np.ndarray], np.ndarray]) -> list[Tensor]:
    """An elementwise unary operator: numpy on a constant, ``fn_expr`` on each cell of computed rows."""
    if not x.batched:
        with np.errstate(all="ignore"):
            return [Tensor(np.asarray(fn_np(x.data)).astype(x.data.dtype), x.dtype)]
    if not x.is_float:
        raise node.refuse(f"needs float input, got {x.dtype}")
    return [Tensor(map_cells(fn_expr, [x], node.what), x.dtype, True)]


def binary(node: Node, a: Tensor, b: Tensor, fn_expr: Callable, fn_np: Callable) -> list[Tensor]:
    """An elementwise binary operator with numpy broadcasting: numpy on constants, ``fn_expr`` per cell otherwise."""
    dtype = same_kind(node, [a, b])
    if not a.batched and not b.batched:
        with np.errstate(all="ignore"):
            return [Tensor(np.asarray(fn_np(a.data, b.data)).astype(np_dtype(dtype)), dtype)]
    if dtype not in FLOAT_TYPES and node.op_type == "Div":
        raise node.refuse("integer division of computed values is not supported")
    if dtype == "string" or dtype == "bool":
        raise node.refuse(f"arithmetic on {dtype} values")
    return [Tensor(map_cells(fn_expr, [a, b], node.what), dtype, True)]


def along_axis(node: Node, x: Tensor, axis: int, fn: Callable[[list[ir.Expr]], list[ir.Expr]]) -> np.ndarray:
    """``fn`` applied to every run of cells along ``axis`` of computed rows (a softmax, a norm)."""
    ax = row_axis(node, x, axis)
    moved = np.moveaxis(x.data, ax, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    out = obj_array([e for row in flat for e in fn(list(row))], moved.shape)
    return np.moveaxis(out, -1, ax)


def gather(node: Node, data: Tensor, indices: Tensor, axis: int) -> Tensor:
    """``Gather`` along ``axis``: constant indices select cells; a computed index looks up a constant table."""
    if not indices.batched:
        idx = np.asarray(indices.data, dtype=np.int64)
        if not data.batched:
            return Tensor(np.take(data.data, idx, axis=axis), data.dtype)
        ax = row_axis(node, data, axis)
        n = data.data.shape[ax]
        if ((idx < -n) | (idx >= n)).any():
            raise node.refuse(f"index out of range for an axis of {n}")
        classes = None
        if data.classes is not None and ax == data.data.ndim - 1 and idx.ndim == 1:
            classes = tuple(data.classes[i] for i in idx)
        res = np.take(data.data, idx, axis=ax)
        return Tensor(res if isinstance(res, np.ndarray) else obj_array([res], ()), data.dtype, True, classes)
    if data.batched:
        raise node.refuse("indices computed from the inputs select from computed values; only constant tables are supported")
    if data.data.ndim != 1:
        raise node.refuse("a computed index into a constant table of rank > 1 is not supported")
    kind = ir.TEXT if data.dtype == "string" else ir.FLOAT
    table = list(data.data)
    out = map_cells(lambda i: lookup(i, table, kind), [indices], node.what)
    return Tensor(out, data.dtype, True)


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


def softmax_zero_exprs(items: Sequence[ir.Expr]) -> list[ir.Expr]:
    """onnxruntime's SOFTMAX_ZERO: a zero score stays zero, the others share the softmax."""
    m = ir.Func("max", tuple(items)) if len(items) > 1 else items[0]
    exps = [select(ir.Compare("==", z, ir.Const(0.0)), ir.Const(0.0), ir.func("exp", ir.Func("max", (ir.sub(z, m), ir.Const(-700.0))))) for z in items]
    total = ir.add(*exps)
    return [ir.div(e, total) for e in exps]


def scores_tensor(node: Node, name: str, items: list[ir.Expr], dtype: str = "float32", classes: tuple | None = None) -> Tensor:
    """One row of scores after ``post_transform`` ``name``, as a tensor."""
    out = post_transform(node, name, items)
    return Tensor(obj_array(out), dtype, True, classes, obj_array(items) if name == "SOFTMAX" else None)


def transform_name(node: Node, default: str = "NONE") -> str:
    """The node's ``post_transform`` as a name (ai.onnx.ml 5 writes it as an enum)."""
    v = node.attr("post_transform", default)
    if isinstance(v, int):  # ai.onnx.ml 5 encodes it as an enum
        names = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
        if not 0 <= v < len(names):
            raise node.refuse(f"post_transform={v} is not a valid value")
        return names[v]
    return str(v)


def numeric_row(node: Node, x: Tensor) -> tuple[list[ir.Expr], str]:
    """The features of a [N, F] (or [N]) numeric input, as expressions, and the comparison precision."""
    if not x.batched:
        raise node.refuse("its input does not depend on the graph inputs")
    if x.data.ndim > 1:
        raise node.refuse(f"rows of shape {x.row_shape}; it takes [N, F] input")
    if x.dtype == "string" or x.dtype == "bool":
        raise node.refuse(f"needs numeric input, got {x.dtype}")
    return [as_float(e) for e in x.data.reshape(-1)], x.dtype


def labels_attr(node: Node, ints: str, strings: str) -> tuple[tuple, str]:
    """Class labels from an integer or a string attribute, and the label element type."""
    li, ls = node.attr(ints), node.attr(strings)
    if li is not None and ls is not None:
        raise node.refuse(f"sets both {ints} and {strings}")
    if li is None and ls is None:
        raise node.refuse(f"sets neither {ints} nor {strings}")
    if li is not None:
        return tuple(float(v) for v in li), "int64"
    return tuple(str(v) for v in ls), "string"


def label_kind(dtype: str) -> str:
    """The IR kind of labels of an element type."""
    return ir.TEXT if dtype == "string" else ir.FLOAT


def label_tensor(e: ir.Expr, dtype: str) -> Tensor:
    """One label per row as a tensor."""
    return Tensor(obj_array([e], ()), dtype, True)
