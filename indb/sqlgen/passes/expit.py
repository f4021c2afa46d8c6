"""A shared ``expit`` gets its exact tail on engines that raise on float errors."""

from __future__ import annotations

from indb import ir
from indb.sqlgen.dialects import Target
from indb.sqlgen.passes.limits import EXP_MAX_ARG, EXP_MIN_ARG
from indb.sqlgen.passes.sharing import parent_counts


def exact_shared_expit(e: ir.Expr, target: Target) -> ir.Expr:
    """A shared ``expit(z)`` gets its exact tail where the engine's ``exp`` would overflow.

    On PostgreSQL ``expit`` clamps ``exp``'s argument so that it reads ``z`` once; below
    z = -709.78 that gives 5.6e-309 where the exact value is far smaller. Alone that is
    nothing, but a one-vs-rest normalisation divides expits by their sum, and there the
    floor shows. A shared expit (the normalisation reads each twice) is computed once
    wherever sharing is possible, so it can afford to read ``z`` twice:
    ``CASE WHEN z >= -709.78 THEN expit(z) ELSE exp(max(z, EXP_MIN_ARG)) END`` (below
    -37, 1 + exp(z) is 1, so exp(z) is expit(z) to the last bit).
    """
    if not target.float_errors_raise:
        return e
    counts = parent_counts(e)

    def fn(n: ir.Expr) -> ir.Expr:
        if isinstance(n, ir.Func) and n.name == "expit" and counts.get(id(n), 0) >= 2:
            z = n.args[0]
            tail = ir.Func("exp", (ir.Func("max", (z, ir.Const(EXP_MIN_ARG))),))
            return ir.Case(((ir.Compare(">=", z, ir.Const(-EXP_MAX_ARG)), n),), tail)
        return n

    return ir.transform(e, fn)
