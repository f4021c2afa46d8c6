"""ai.onnx elementwise operators: arithmetic, unary functions, comparisons, logic, ``Where`` and ``Cast``."""

from __future__ import annotations

from typing import Callable

import numpy as np

from indb import ir
from indb.compilers.onnx.core import (
    FLOAT_TYPES, INT_TYPES, Graph, Node, Tensor, as_float, binary, const_value, constant, elem_type, fold_add,
    fold_div, fold_mul, fold_sub, map_cells, np_dtype, register, same_kind, select, unary,
)
from indb.compilers.trees_shared import compare_const


# --------------------------------------------------------------------------- ai.onnx: elementwise


@register("", "Identity", "Dropout", attrs=("seed", "ratio"))
def _identity(node: Node, ins: list, g: Graph) -> list:
    if node.op_type == "Dropout" and len([o for o in node.outputs if o]) > 1:
        raise node.refuse("the dropout mask output is not supported")
    return [ins[0]]


@register("", "Add", "Sub", "Mul", "Div")
def _arith(node: Node, ins: list, g: Graph) -> list:
    fns = {
        "Add": (fold_add, np.add),
        "Sub": (fold_sub, np.subtract),
        "Mul": (fold_mul, np.multiply),
        "Div": (fold_div, lambda a, b: np.trunc(np.divide(a, b)) if a.dtype.kind in "iu" else np.divide(a, b)),
    }
    fe, fn = fns[node.op_type]
    return binary(node, ins[0], ins[1], fe, fn)


@register("", "Sum", "Max", "Min", "Mean")
def _variadic(node: Node, ins: list, g: Graph) -> list:
    ts = [t for t in ins if t is not None]
    dtype = same_kind(node, ts)
    op = node.op_type
    if not any(t.batched for t in ts):
        arrays = [t.data for t in ts]
        red = {"Sum": np.add, "Max": np.maximum, "Min": np.minimum, "Mean": np.add}[op]
        out = arrays[0]
        for a in arrays[1:]:
            out = red(out, a)
        if op == "Mean":
            out = out / len(arrays)
        return [Tensor(np.asarray(out).astype(np_dtype(dtype)), dtype)]
    if dtype not in FLOAT_TYPES + INT_TYPES:
        raise node.refuse(f"on {dtype} values")

    def fe(*xs: ir.Expr) -> ir.Expr:
        if op == "Max":
            return ir.Func("max", xs)
        if op == "Min":
            return ir.Func("min", xs)
        total = ir.add(*xs)
        return fold_div(total, ir.Const(float(len(xs)))) if op == "Mean" else total

    return [Tensor(map_cells(fe, ts, node.what), dtype, True)]


_UNARY: dict[str, tuple[Callable[[ir.Expr], ir.Expr], Callable]] = {
    "Neg": (lambda x: ir.func("neg", x), np.negative),
    "Abs": (lambda x: ir.func("abs", x), np.abs),
    "Exp": (lambda x: ir.func("exp", x), np.exp),
    "Log": (lambda x: ir.func("log", x), np.log),
    "Sqrt": (lambda x: ir.func("sqrt", x), np.sqrt),
    "Tanh": (lambda x: ir.func("tanh", x), np.tanh),
    "Sigmoid": (lambda x: ir.func("expit", x), lambda a: 1 / (1 + np.exp(-a))),
    "Relu": (lambda x: ir.Func("max", (x, ir.Const(0.0))), lambda a: np.maximum(a, 0)),
    "Reciprocal": (lambda x: fold_div(ir.Const(1.0), x), np.reciprocal),
    "Floor": (lambda x: ir.func("floor", x), np.floor),
    "Ceil": (lambda x: ir.func("ceil", x), np.ceil),
    "Sign": (lambda x: ir.func("sign", x), np.sign),
    "Softplus": (lambda x: ir.func("log", ir.add(ir.func("exp", x), ir.Const(1.0))), lambda a: np.log(np.exp(a) + 1)),
}


@register("", *_UNARY)
def _unary_op(node: Node, ins: list, g: Graph) -> list:
    fe, fn = _UNARY[node.op_type]
    return unary(node, ins[0], fe, fn)


@register("", "LeakyRelu", attrs=("alpha",))
def _leaky_relu(node: Node, ins: list, g: Graph) -> list:
    alpha = float(np.float32(node.attr("alpha", 0.01)))
    fe = lambda x: select(ir.Compare("<", x, ir.Const(0.0)), fold_mul(x, ir.Const(alpha)), x)  # noqa: E731
    return unary(node, ins[0], fe, lambda a: np.where(a < 0, a * np.float32(alpha), a))


@register("", "Pow")
def _pow(node: Node, ins: list, g: Graph) -> list:
    x, y = ins
    if not x.batched and not y.batched:
        return [Tensor(np.power(x.data, y.data).astype(x.data.dtype), x.dtype)]
    if not x.is_float:
        raise node.refuse(f"needs float input, got {x.dtype}")
    y = Tensor(y.data.astype(np.float64), x.dtype, y.batched) if not y.batched else y
    return [Tensor(map_cells(lambda a, b: ir.Func("pow", (a, b)), [x, Tensor(y.data, x.dtype, y.batched)], node.what), x.dtype, True)]


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

    return [Tensor(map_cells(fe, [x], node.what), x.dtype, True)]


# --------------------------------------------------------------------------- ai.onnx: comparisons


_CMP = {"Greater": ">", "Less": "<", "GreaterOrEqual": ">=", "LessOrEqual": "<=", "Equal": "=="}
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "=="}
_NP_CMP = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal, "==": np.equal}


@register("", *_CMP)
def _compare(node: Node, ins: list, g: Graph) -> list:
    a, b = ins
    op = _CMP[node.op_type]
    dtype = same_kind(node, [a, b])
    if not a.batched and not b.batched:
        return [Tensor(_NP_CMP[op](a.data, b.data), "bool")]
    if dtype == "string":
        if op != "==":
            raise node.refuse("orders strings; only Equal is supported on text")
        return [Tensor(map_cells(lambda x, y: ir.Compare("==", x, y), [a, b], node.what), "bool", True)]
    f32 = dtype == "float32"

    def fe(x: ir.Expr, y: ir.Expr) -> ir.Expr:
        cx, cy = const_value(x), const_value(y)
        if cy is not None and cx is None:
            return compare_const(op, x, cy, f32)
        if cx is not None and cy is None:
            return compare_const(_FLIP[op], y, cx, f32)
        return ir.Compare(op, x, y)

    return [Tensor(map_cells(fe, [a, b], node.what), "bool", True)]


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

    return [Tensor(map_cells(fe, ins, node.what), "bool", True)]


@register("", "Where")
def _where(node: Node, ins: list, g: Graph) -> list:
    c, x, y = ins
    dtype = same_kind(node, [x, y])
    if not any(t.batched for t in ins):
        return [Tensor(np.where(c.data, x.data, y.data), dtype)]
    return [Tensor(map_cells(select, [c, x, y], node.what), dtype, True)]


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
            return [Tensor(x.data.astype(np.float64).astype(np_dtype(to)), to)]
        return [Tensor(x.data.astype(np_dtype(to)), to)]
    src = x.dtype
    if to == src:
        return [x]
    if to == "string" or src == "string":
        raise node.refuse(f"casts {src} to {to}; casts between text and numbers are not supported")
    if to == "bool":
        fe = lambda e: e if e.type == ir.BOOL else ir.Not(ir.Compare("==", e, ir.Const(0.0)))  # noqa: E731
    elif src == "bool":
        fe = as_float
    elif to in INT_TYPES and src in FLOAT_TYPES:
        fe = _trunc
    else:
        # float <-> float and int -> float keep the value (float32 rounding is within the tolerance)
        return [x.same(to)]
    return [Tensor(map_cells(fe, [x], node.what), to, True, x.classes)]
