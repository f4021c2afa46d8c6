"""ai.onnx linear algebra: ``MatMul`` and ``Gemm`` of computed rows by constant weights."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from indb import ir
from indb.compilers.onnx.core import FLOAT_TYPES, Graph, Node, Tensor, as_exprs, fold_add, fold_mul, np_dtype, obj_array, register, same_kind


# --------------------------------------------------------------------------- ai.onnx: linear algebra


def _dot(xs: Sequence[ir.Expr], ws: Sequence[ir.Expr]) -> ir.Expr:
    terms = [fold_mul(x, w) for x, w in zip(xs, ws)]
    return ir.add(*terms) if terms else ir.Const(0.0)


@register("", "MatMul")
def _matmul(node: Node, ins: list, g: Graph) -> list:
    a, b = ins
    dtype = same_kind(node, [a, b])
    if not a.batched and not b.batched:
        return [Tensor(np.matmul(a.data, b.data), dtype)]
    if not a.batched:
        raise node.refuse("multiplies a constant by computed rows from the left; only rows x constant is supported")
    if dtype not in FLOAT_TYPES:
        raise node.refuse(f"on {dtype} values")
    A = a.data
    if A.ndim < 1:
        raise node.refuse("needs rows of rank >= 1")
    B = b.data if b.batched else as_exprs(b)
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
    return [Tensor(obj_array(out, shape), dtype, True)]


@register("", "Gemm", attrs=("alpha", "beta", "transA", "transB"))
def _gemm(node: Node, ins: list, g: Graph) -> list:
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha = float(node.attr("alpha", 1.0))
    beta = float(node.attr("beta", 1.0))
    dtype = same_kind(node, [t for t in (a, b, c) if t is not None])
    if not any(t.batched for t in (a, b, c) if t is not None):
        A = a.data.T if node.attr("transA", 0) else a.data
        B = b.data.T if node.attr("transB", 0) else b.data
        out = alpha * (A @ B)
        if c is not None:
            out = out + beta * c.data
        return [Tensor(np.asarray(out).astype(np_dtype(dtype)), dtype)]
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
        bias = obj_array([ir.Const(float(v)) for v in np.broadcast_to(cd, (m,))])
    elif c is not None:
        if c.data.ndim != 1 or c.data.shape[0] not in (1, m):
            raise node.refuse(f"a computed bias C of row shape {c.row_shape} does not broadcast to {m} columns")
        bias = obj_array([fold_mul(ir.Const(beta), e) if beta != 1.0 else e for e in np.broadcast_to(c.data, (m,))])
    xs = list(a.data)
    out = []
    for j in range(m):
        e = _dot(xs, [ir.Const(float(w)) for w in W[:, j]])
        if bias is not None:
            e = fold_add(e, bias[j])
        out.append(e)
    return [Tensor(obj_array(out), dtype, True)]
