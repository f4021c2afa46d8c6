"""ai.onnx shape operators: ``Constant``, ``Shape``, ``ConstantOfShape``, ``Concat``,
``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``Transpose`` and ``Gather``.

Shapes are static; the batch axis may only be inferred (``-1``/``0``), never moved."""

from __future__ import annotations

import numpy as np

from indb.compilers.onnx.core import (
    BATCH_SHAPE, Graph, Node, Tensor, const_expr, const_ints, constant, gather, obj_array, register, row_axis,
    same_kind,
)


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
    return [Tensor(obj_array([const_expr(value, dtype)] * int(np.prod(row, dtype=np.int64)), row), dtype, True)]


@register("", "Concat", attrs=("axis",))
def _concat(node: Node, ins: list, g: Graph) -> list:
    ts = [t for t in ins if t is not None]
    axis = int(node.attr("axis"))
    dtype = same_kind(node, ts)
    if not any(t.batched for t in ts):
        return [Tensor(np.concatenate([t.data for t in ts], axis=axis), dtype)]
    if not all(t.batched for t in ts):
        raise node.refuse("concatenates constants with computed rows along a row axis; the constant would need the batch size")
    ax = row_axis(node, ts[0], axis)
    classes = None
    return [Tensor(np.concatenate([t.data for t in ts], axis=ax), dtype, True, classes)]


@register("", "Reshape", attrs=("allowzero",))
def _reshape(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    shape = const_ints(node, ins[1], "the target shape")
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
        return const_ints(node, ins[1] if len(ins) > 1 else None, "axes")
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
        rows = tuple(row_axis(node, x, a) for a in axes)
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


@register("", "Gather", attrs=("axis",))
def _gather_op(node: Node, ins: list, g: Graph) -> list:
    return [gather(node, ins[0], ins[1], int(node.attr("axis", 0)))]
