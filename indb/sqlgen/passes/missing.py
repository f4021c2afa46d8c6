"""``IsMissing`` tests that cannot be true, removed (a tree sum, a guarded constant)."""

from __future__ import annotations

from indb import ir
from indb.sqlgen.passes.ranges import analyse


def drop_impossible_missing(e: ir.Expr) -> ir.Expr:
    """``IsMissing(x)`` is false where x can be neither NULL nor NaN (a tree sum, a constant)."""
    rng = analyse(e)

    def fn(n: ir.Expr) -> ir.Expr:
        if isinstance(n, ir.IsMissing) and n.operand.type == ir.FLOAT and not rng(n.operand).missing:
            return ir.Const(False, ir.BOOL)
        return n

    return ir.transform(e, fn)
