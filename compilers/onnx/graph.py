"""The graph walker: graph inputs to features, each node to its registered handler,
graph outputs to the model's outputs (``predict``, ``proba`` or ``transform``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from indb import ir
from indb.compilers.converters import refusal_guard
from indb.compilers.onnx.core import (
    BATCH_SHAPE, BATCH_SHAPE_USERS, INT_TYPES, Graph, Node, Tensor, as_float, constant, domain_name, elem_type,
    handler_spec, obj_array, supported_ops,
)
from indb.compilers.onnx.labels import argmax_items
from indb.errors import CompileError, UnsupportedModelError

# --------------------------------------------------------------------------- the walker


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
        values[inp.name] = Tensor(obj_array(feats, () if rank1 else (width,)), dtype, batched=True)
    return values, specs


def _run_node(pb: Any, g: Graph, opsets: dict[str, int]) -> None:
    domain = domain_name(pb.domain)
    spec = handler_spec(domain, pb.op_type)
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
    opsets = {domain_name(o.domain): int(o.version) for o in model.opset_import}
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
    guard = refusal_guard(g.refuse, on_missing)
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
                result.append(("transform", ir.vector([guard(as_float(e)) for e in items])))
                return ir.Model(features=tuple(specs), outputs=tuple(result), classes=None, source=source)
            classes = probs.classes or _label_classes(label)
            if classes is None or len(classes) != len(items):
                classes = tuple(range(len(items)))
            result.append(("proba", ir.vector([guard(as_float(e)) for e in items])))
            classes = tuple(_python_label(c) for c in classes)
    else:
        items = [e for _, t in others for e in t.data.reshape(-1)]
        if len(others) == 1 and len(items) == 1:
            result.append(("predict", guard(as_float(items[0]))))
        else:
            result.append(("transform", ir.vector([guard(as_float(e)) for e in items])))
    return ir.Model(features=tuple(specs), outputs=tuple(result), classes=classes, source=source)
