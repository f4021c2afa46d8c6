"""ai.onnx.ml preprocessing: ``Scaler``, ``Normalizer``, ``Binarizer``, ``Imputer``, the
encoders (``LabelEncoder``, ``CategoryMapper``, ``OneHotEncoder``), ``ArrayFeatureExtractor``,
``ZipMap`` and ``FeatureVectorizer``."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from indb import ir
from indb.compilers.onnx.core import (
    FLOAT_TYPES, Graph, Node, Tensor, along_axis, as_float, constant, fold_mul, fold_sub, gather, label_kind,
    labels_attr, map_cells, obj_array, register, select,
)
from indb.compilers.onnx.labels import argmax_items, label_value, lookup, relabel
from indb.compilers.trees_shared import compare_const, float32_le_bound


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
    xs = [as_float(e) for e in x.data.reshape(-1)]
    last = x.row_shape[-1] if x.row_shape else 1
    off = _per_column(node, "offset", np.asarray(node.attr("offset", [0.0]), np.float32), last).astype(np.float64)
    sc = _per_column(node, "scale", np.asarray(node.attr("scale", [1.0]), np.float32), last).astype(np.float64)
    out = [fold_mul(fold_sub(e, ir.Const(float(off[i % last]))), ir.Const(float(sc[i % last]))) for i, e in enumerate(xs)]
    return [Tensor(obj_array(out, x.row_shape), "float32", True)]


@register("ai.onnx.ml", "Normalizer", attrs=("norm",))
def _normalizer(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    norm = node.attr("norm", "MAX")
    if norm not in ("MAX", "L1", "L2"):
        raise node.refuse(f"norm={norm!r}; supported: MAX, L1, L2")

    def fn(items: list[ir.Expr]) -> list[ir.Expr]:
        items = [as_float(e) for e in items]
        if norm == "MAX":
            # onnxruntime's running std::max skips NaN and starts from the lowest float
            present = [select(ir.IsMissing(e), ir.Const(-3.4028234663852886e38), e) for e in items]
            d = ir.Func("max", tuple(present + [ir.Const(-3.4028234663852886e38)]))
        else:
            d = ir.add(*[ir.func("abs", e) for e in items]) if norm == "L1" else ir.func("sqrt", ir.add(*[fold_mul(e, e) for e in items]))
            # d >= |x_i| >= 0, and d = 0 only when every x_i is 0, which onnxruntime leaves
            # as it is: dividing by at least the smallest double gives that, writing d once
            safe = ir.Func("max", (d, ir.Const(5e-324)))
            if norm == "L1" or not f32:
                return [ir.div(e, safe) for e in items]
            # onnxruntime squares in float32, where |x| <= 2**-75 squares to 0: a row of
            # such values has a zero norm there and stays as it is
            tiny = float32_le_bound(2.0**-75)
            small = ir.And(tuple(ir.Compare("<=", ir.func("abs", e), ir.Const(tiny)) for e in items))
            return [select(small, e, ir.div(e, safe)) for e in items]
        zero = ir.Compare("==", d, ir.Const(0.0))
        return [select(zero, e, ir.div(e, d)) for e in items]

    if not x.batched:
        raise node.refuse("its input does not depend on the graph inputs")
    f32 = x.dtype == "float32"
    if norm == "L1" and x.logits is not None:
        # softmax rows already sum to 1 (to a few ulps, well inside float32's rounding)
        return [x]
    return [Tensor(along_axis(node, x, -1, fn), "float32", True)]


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
    out = [select(compare_const(">", e, t, f32), ir.Const(1.0), ir.Const(0.0)) for e in cells]
    return [Tensor(obj_array(out, x.row_shape), x.dtype, True)]


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
        out.append(select(hit, ir.Const(float(values[i % last])), e))
    return [Tensor(obj_array(out, x.row_shape), x.dtype, True)]


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
        return None if v is None else label_value(v, out_kind)

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
    kind = label_kind(out)
    res = _encode_cells(node, x, g, keys, values, default, kind)
    return [Tensor(obj_array(res, x.row_shape), out, True)]


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
    res = _encode_cells(node, x, g, keys, values, default, label_kind(out))
    return [Tensor(obj_array(res, x.row_shape), out, True)]


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
        out.extend(select(h, ir.Const(1.0), ir.Const(0.0)) for h in hits)
    n = len(strs if strs is not None else ints)
    return [Tensor(obj_array(out, x.row_shape + (n,)), "float32", True)]


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
        return [gather(node, x, idx, -1 if x.rank else 0)]
    if x.data.ndim != 1:
        raise node.refuse("a computed index into a constant table of rank > 1 is not supported")
    # onnxruntime returns [1, N] here; every converter reshapes it back to one value per row
    kind = ir.TEXT if x.dtype == "string" else ir.FLOAT
    table = list(x.data)
    return [Tensor(map_cells(lambda i: lookup(i, table, kind), [idx], node.what), x.dtype, True)]


@register("ai.onnx.ml", "ZipMap", attrs=("classlabels_int64s", "classlabels_strings"))
def _zipmap(node: Node, ins: list, g: Graph) -> list:
    x = ins[0]
    labels, _ = labels_attr(node, "classlabels_int64s", "classlabels_strings")
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
        cells = [as_float(e) for e in t.data.reshape(-1)]
        if len(cells) < d:
            cells = cells + [ir.Const(0.0)] * (d - len(cells))
        out.extend(cells[:d])
    return [Tensor(obj_array(out), "float32", True)]
