"""ai.onnx operators along an axis of a row: ``Softmax``/``LogSoftmax``, ``ArgMax``/``ArgMin`` and the ``Reduce*`` family."""

from __future__ import annotations

import numpy as np

from indb import ir
from indb.compilers.onnx.core import (
    INT_TYPES, Graph, Node, Tensor, along_axis, const_ints, fold_div, fold_mul, obj_array, register, row_axis,
)
from indb.compilers.onnx.labels import scan_argmax
from indb.compilers.trees_shared import softmax_exprs


# --------------------------------------------------------------------------- ai.onnx: normalisations and reductions


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

    last = row_axis(node, x, axis) == x.data.ndim - 1
    return [Tensor(along_axis(node, x, axis, fn), x.dtype, True, x.classes, x.data if last and not log else None)]


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
    ax = row_axis(node, x, axis)
    # the largest probability of a softmax is that of the largest logit; the two differ only
    # where the float32 probabilities tie, and the logits are far smaller in SQL
    data = x.logits if x.logits is not None and ax == x.data.ndim - 1 and node.op_type == "ArgMax" else x.data
    moved = np.moveaxis(data, ax, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    out = []
    for row in flat:
        items = [e if node.op_type == "ArgMax" else ir.func("neg", e) for e in row]
        out.append(scan_argmax(items, _index_labels(len(items)), bool(last)))
    res = obj_array(out, moved.shape[:-1])
    if keep:
        res = np.expand_dims(res, ax)
    return [Tensor(res, "int64", True)]


def _reduce_axes(node: Node, ins: list) -> list[int] | None:
    takes_input = (node.op_type == "ReduceSum" and node.opset >= 13) or node.opset >= 18
    if takes_input:
        return const_ints(node, ins[1] if len(ins) > 1 else None, "axes")
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
    rows = sorted({row_axis(node, x, a) for a in axes})
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
                acc = fold_mul(acc, e)
            return acc
        if op == "ReduceLogSumExp":
            # log(sum(exp(x))) without overflow: the largest term is exp(0)
            m = ir.Func("max", tuple(items)) if len(items) > 1 else items[0]
            return ir.add(m, ir.func("log", ir.add(*[ir.func("exp", ir.Func("max", (ir.sub(e, m), ir.Const(-700.0)))) for e in items])))
        if op in ("ReduceSumSquare", "ReduceL2"):
            items = [fold_mul(e, e) for e in items]
        if op == "ReduceL1":
            items = [ir.func("abs", e) for e in items]
        total = ir.add(*items)
        if op == "ReduceL2":
            return ir.func("sqrt", total)
        if op == "ReduceLogSum":
            return ir.func("log", total)
        return fold_div(total, ir.Const(float(len(items)))) if op == "ReduceMean" else total

    out = obj_array([red(list(r)) for r in flat], kept_shape)
    if keep:
        for a in rows:
            out = np.expand_dims(out, a)
    return [Tensor(out, x.dtype, True)]
