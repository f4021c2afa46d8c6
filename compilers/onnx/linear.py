"""ai.onnx.ml linear models: ``LinearRegressor`` and ``LinearClassifier`` (onnxruntime's two-class rules)."""

from __future__ import annotations

import numpy as np

from indb import ir
from indb.compilers.onnx.core import (
    Graph, Node, Tensor, label_kind, label_tensor, labels_attr, numeric_row, obj_array, post_transform, register,
    scores_tensor, transform_name,
)
from indb.compilers.onnx.labels import label_value


# --------------------------------------------------------------------------- ai.onnx.ml: linear


@register("ai.onnx.ml", "LinearRegressor", attrs=("coefficients", "intercepts", "targets", "post_transform"))
def _linear_regressor(node: Node, ins: list, g: Graph) -> list:
    xs, _ = numeric_row(node, ins[0])
    targets = int(node.attr("targets", 1))
    coef = np.asarray(node.attr("coefficients", []), dtype=np.float32).astype(np.float64)
    if coef.size != targets * len(xs):
        raise node.refuse(f"{coef.size} coefficients for {targets} target(s) of {len(xs)} features")
    coef = coef.reshape(targets, len(xs))
    icpt = np.asarray(node.attr("intercepts", [0.0] * targets), dtype=np.float32).astype(np.float64)
    if icpt.size not in (targets,):
        raise node.refuse(f"{icpt.size} intercepts for {targets} target(s)")
    scores = [ir.linear(xs, coef[t], float(icpt[t])) for t in range(targets)]
    return [scores_tensor(node, transform_name(node), scores)]


@register("ai.onnx.ml", "LinearClassifier", attrs=("coefficients", "intercepts", "classlabels_ints", "classlabels_strings", "multi_class", "post_transform"))
def _linear_classifier(node: Node, ins: list, g: Graph) -> list:
    xs, _ = numeric_row(node, ins[0])
    labels, ldtype = labels_attr(node, "classlabels_ints", "classlabels_strings")
    kind = label_kind(ldtype)
    coef = np.asarray(node.attr("coefficients", []), dtype=np.float32).astype(np.float64)
    if coef.size % len(xs):
        raise node.refuse(f"{coef.size} coefficients do not fit {len(xs)} features")
    rows = coef.size // len(xs)
    coef = coef.reshape(rows, len(xs))
    icpt = np.asarray(node.attr("intercepts", [0.0] * rows), dtype=np.float32).astype(np.float64)
    if icpt.size != rows:
        raise node.refuse(f"{icpt.size} intercepts for {rows} coefficient rows")
    scores = [ir.linear(xs, coef[r], float(icpt[r])) for r in range(rows)]
    pt = transform_name(node)
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
        label = ir.ArgMax(tuple(scores), tuple(label_value(v, kind) for v in labels))
        return [label_tensor(label, ldtype), scores_tensor(node, pt, scores, classes=tuple(labels))]
    return [label_tensor(label, ldtype), Tensor(obj_array(probs), "float32", True, tuple(labels))]
