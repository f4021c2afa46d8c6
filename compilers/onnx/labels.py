"""Label expressions: an argmax over scores as onnxruntime scans it, read back
(:func:`argmax_items`) and relabelled (:func:`relabel`), and table lookups by a computed
index (:func:`lookup`) that fuse into such an argmax."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from indb import ir


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


def lookup(index: ir.Expr, table: Sequence[Any], kind: str, default: Any = None) -> ir.Expr:
    """``table[index]`` for a computed integer index; an argmax index becomes an argmax of labels."""

    def entry(v: Any) -> Any:
        ok = isinstance(v, float) and v.is_integer() and 0 <= v < len(table)
        return label_value(table[int(v)], kind) if ok else None

    fused = relabel(index, entry, kind)
    if fused is not None:
        return fused
    whens = tuple((ir.Compare("==", index, ir.Const(float(i))), ir.Const(label_value(v, kind), kind)) for i, v in enumerate(table))
    return ir.Case(whens, ir.Const(None if default is None else label_value(default, kind), kind))


def label_value(v: Any, kind: str) -> Any:
    """A label as an IR constant value of ``kind`` (text or float)."""
    if kind == ir.TEXT:
        return v.decode() if isinstance(v, bytes) else str(v)
    return float(v)
