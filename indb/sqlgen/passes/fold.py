"""Constant folding: exact for every input.

Constant subtrees are evaluated with the numpy evaluator's own arithmetic, so a folded
constant is bit-identical to what the model computes; operations that are neutral for
every input (``x * 1``, ``x + 0``) are removed, adjacent one-hot terms of one input
merged into one ``CASE``, and branches decided by a constant condition dropped.

    >>> from indb import ir
    >>> x = ir.Feature("x")
    >>> fold(ir.Sum((ir.Const(1.0), ir.Const(2.0), ir.BinOp("*", x, ir.Const(1.0)))))
    Sum(terms=(Const(value=3.0, kind='float'), Feature(name='x', kind='float')))
"""

from __future__ import annotations

from indb import ir
from indb.ir.evaluate import evaluate


def _is_const(e: ir.Expr) -> bool:
    return isinstance(e, ir.Const)


def _const_value(e: ir.Expr) -> ir.Const:
    v = evaluate(e, {}, n=1)
    x = v[0]
    if e.type == ir.BOOL:
        return ir.Const(bool(x), ir.BOOL)
    if e.type == ir.TEXT:
        return ir.Const(x, ir.TEXT)
    return ir.Const(float(x), ir.FLOAT)


def _same(new: list[ir.Expr], old: tuple[ir.Expr, ...]) -> bool:
    return len(new) == len(old) and all(a is b for a, b in zip(new, old))


def _fold_node(n: ir.Expr) -> ir.Expr:
    if isinstance(n, (ir.BinOp, ir.Func, ir.Compare)) and all(_is_const(c) for c in n.children()):
        if isinstance(n, ir.Compare) and n.left.type != n.right.type:
            return n
        return _const_value(n)
    if isinstance(n, ir.BinOp):
        r = n.right
        if n.op == "*" and isinstance(r, ir.Const) and r.value is not None and _const_case(n.left):
            # (CASE ... THEN a ELSE b END) * c is CASE ... THEN a*c ELSE b*c END exactly:
            # each row computes the same product (one-hot columns times coefficients)
            return _map_case(n.left, lambda v: _const_value(ir.BinOp("*", v, r)))
        if isinstance(r, ir.Const) and r.value is not None:
            if (n.op in ("*", "/") and r.value == 1.0) or (n.op in ("+", "-") and r.value == 0.0):
                return n.left
        return n
    if isinstance(n, ir.Sum):
        terms = list(n.terms)
        # leading constants are added first anyway: folding them keeps the order exact
        while len(terms) >= 2 and _is_const(terms[0]) and _is_const(terms[1]):
            terms[:2] = [_const_value(ir.Sum((terms[0], terms[1])))]
        terms = [t for i, t in enumerate(terms) if not (i > 0 and isinstance(t, ir.Const) and t.value == 0.0)]
        terms = _merge_indicators(terms)
        if _same(terms, n.terms):
            return n  # unchanged: the same object, so a later pass sees nothing to redo
        return terms[0] if len(terms) == 1 else ir.Sum(tuple(terms))
    if isinstance(n, ir.IsMissing) and _is_const(n.operand):
        return ir.Const(n.operand.value is None, ir.BOOL)  # type: ignore[attr-defined]
    if isinstance(n, ir.InSet) and _is_const(n.operand):
        v = n.operand.value  # type: ignore[attr-defined]
        return ir.Const(v is not None and v in n.values, ir.BOOL)
    if isinstance(n, ir.Not):
        if _is_const(n.operand):
            return ir.Const(not n.operand.value, ir.BOOL)  # type: ignore[attr-defined]
        if isinstance(n.operand, ir.Not):
            return n.operand.operand
        return n
    if isinstance(n, (ir.And, ir.Or)):
        is_and = isinstance(n, ir.And)
        kept = []
        for t in n.terms:
            if _is_const(t):
                if bool(t.value) != is_and:  # type: ignore[attr-defined]
                    return ir.Const(not is_and, ir.BOOL)  # False in AND, True in OR decides
                continue
            kept.append(t)
        if not kept:
            return ir.Const(is_and, ir.BOOL)
        if _same(kept, n.terms):
            return n
        return kept[0] if len(kept) == 1 else type(n)(tuple(kept))
    if isinstance(n, ir.Case):
        whens = []
        for c, v in n.whens:
            if _is_const(c):
                if c.value:  # type: ignore[attr-defined]
                    return ir.Case(tuple(whens), v) if whens else v
                continue
            whens.append((c, v))
        if not whens:
            return n.default
        if all(v == n.default for _, v in whens):
            return n.default
        if len(whens) == len(n.whens):
            return n
        return ir.Case(tuple(whens), n.default)
    if isinstance(n, ir.Index) and isinstance(n.vector, ir.Vector):
        return n.vector.items[n.i]
    return n


def _const_case(e: ir.Expr) -> bool:
    return (
        isinstance(e, ir.Case)
        and e.type == ir.FLOAT
        and isinstance(e.default, ir.Const)
        and all(isinstance(v, ir.Const) for _, v in e.whens)
    )


def _map_case(e: ir.Case, fn) -> ir.Case:
    return ir.Case(tuple((c, fn(v)) for c, v in e.whens), fn(e.default))


def _indicator_key(t: ir.Expr):
    """(input, value) of ``CASE WHEN input == value THEN const ELSE 0 END``, else None."""
    if not (_const_case(t) and len(t.whens) == 1 and t.default.value == 0.0):  # type: ignore[attr-defined]
        return None
    cond = t.whens[0][0]  # type: ignore[attr-defined]
    if isinstance(cond, ir.Compare) and cond.op == "==" and isinstance(cond.right, ir.Const) and cond.right.value is not None:
        return cond.left, cond.right.value
    return None


def _merge_indicators(terms: list[ir.Expr]) -> list[ir.Expr]:
    """Adjacent one-hot terms of one input become one CASE.

    At most one of ``CASE WHEN x = a THEN wa ELSE 0 END + CASE WHEN x = b ...`` is
    non-zero, and adding zeros is exact, so the merged CASE gives the same partial sum.
    """
    out: list[ir.Expr] = []
    run: list[ir.Expr] = []
    run_input = None

    def flush() -> None:
        if len(run) > 1:
            whens = tuple(w for t in run for w in t.whens)  # type: ignore[attr-defined]
            out.append(ir.Case(whens, ir.Const(0.0)))
        else:
            out.extend(run)
        run.clear()

    for t in terms:
        key = _indicator_key(t)
        if key is not None and run and key[0] == run_input and all(_indicator_key(r)[1] != key[1] for r in run):  # type: ignore[index]
            run.append(t)
            continue
        flush()
        if key is not None:
            run.append(t)
            run_input = key[0]
        else:
            out.append(t)
    flush()
    return out


def fold(e: ir.Expr) -> ir.Expr:
    """Constant folding with the evaluator's arithmetic; exact for every input."""
    return ir.transform(e, _fold_node)
