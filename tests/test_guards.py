"""PostgreSQL raises on float overflow and underflow where numpy gives inf or 0: the guards
the lowering adds must give numpy's (IEEE) answer on exactly the rows near those limits.

Each case is a small IR expression evaluated by numpy (the oracle) and by PostgreSQL on
rows chosen to sit on and either side of the limits: squares one ulp either side of
sqrt(DBL_MAX) and of the smallest non-zero square, sums of one sign whose partial sums
overflow while no term does, and the kernel of an RBF machine on far-away rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from indb import ir
from indb.sqlgen.compile import lower_model
from indb.ir.evaluate import evaluate
from tests.sql_engines import load_postgres, mismatches

X0, X1, X2 = ir.Feature("x0"), ir.Feature("x1"), ir.Feature("x2")
FEATURES = (ir.FeatureSpec("x0"), ir.FeatureSpec("x1"), ir.FeatureSpec("x2"))

ROOT_MAX = 1.3407807929942596e154  # the largest double whose square is finite


def _sq(e: ir.Expr) -> ir.Expr:
    return ir.BinOp("*", e, e)


def _d(e: ir.Expr, c: float) -> ir.Expr:
    return ir.sub(e, ir.const(c))


EXPRS = {
    # x0 * x0 alone: overflow above ROOT_MAX, underflow below ~1.5e-162
    "square": _sq(X0),
    # a sum of three squares: the sum can overflow while no square does
    "sum_of_squares": ir.add(_sq(_d(X0, 0.5)), _sq(X1), _sq(X2)),
    # an RBF kernel: exp(-gamma * |x - c|^2), 0 far away, 1 at the centre
    "rbf": ir.func("exp", ir.mul(ir.const(-0.25), ir.add(_sq(_d(X0, 0.5)), _sq(_d(X1, -2.0)), _sq(X2)))),
    # a sum of terms of one sign (negative): overflows to -inf
    "negative_sum": ir.add(ir.mul(ir.const(-3.0), _sq(X0)), ir.mul(ir.const(-1.0), _sq(X1)), ir.mul(ir.const(-0.5), _sq(X2))),
}

_up, _down = (lambda v: math.nextafter(v, math.inf)), (lambda v: math.nextafter(v, -math.inf))
ROWS = [
    (0.0, 0.0, 0.0),
    (1.0, 2.0, 3.0),
    (ROOT_MAX, 0.0, 0.0),
    (_up(ROOT_MAX), 0.0, 0.0),
    (-_up(ROOT_MAX), 1.0, 1.0),
    (_down(ROOT_MAX), _down(ROOT_MAX), 0.0),  # two finite squares whose sum overflows
    (1e154, 1e154, 1e-170),
    (9e153, 9e153, 9e153),  # three 8.1e307 squares: the second partial sum overflows
    (1.4916681462400413e-154, 0.0, 0.0),  # squares to a subnormal
    (1.5717277847026285e-162, 1e-170, 0.0),  # the last double whose square is 0, and below
    (_up(1.5717277847026285e-162), -1e-200, 0.0),
    (1e300, -1e300, 1e300),
    (math.inf, 0.0, 1.0),
    (-math.inf, math.inf, 0.0),
    (math.nan, 1.0, 1.0),
    (0.5, -2.0, 0.0),  # the rbf centre
    (0.5, -2.0, 1e-160),
    (0.5 + 55.0, -2.0, 0.0),  # exp's argument below -745: the kernel underflows to 0
    (None, 1.0, 1.0),
]


@pytest.mark.parametrize("name", sorted(EXPRS))
def test_postgres_gives_ieee_answers_at_the_limits(name, pg_schema_conn):
    model = ir.Model(FEATURES, (("predict", EXPRS[name]),))
    cols = {f: [np.nan if r[i] is None else r[i] for r in ROWS] for i, f in enumerate(("x0", "x1", "x2"))}
    with np.errstate(all="ignore"):
        want = list(np.asarray(evaluate(model.output("predict"), cols), dtype=float))
    rows = [(i, *r) for i, r in enumerate(ROWS)]
    table = f"t_{name}"
    load_postgres(pg_schema_conn, table, model, rows)
    query = lower_model(model, dialect="postgres", share=True).select(table, keep=["id"]).order_by("id").sql("postgres")
    got = [r[1] for r in pg_schema_conn.execute(query).fetchall()]
    # exp's argument is clamped at -745.13 (read once): 5e-324 where IEEE gives 0
    bad = mismatches(want, got, 1e-12, 5e-324)
    assert not bad, f"{name}: PostgreSQL differs from numpy on rows {[(i, ROWS[i], w, g) for i, w, g in bad]}"
    # the scalar (unshared) form too: the same guards, written out
    query = lower_model(model, dialect="postgres").select(table, keep=["id"]).order_by("id").sql("postgres")
    got = [r[1] for r in pg_schema_conn.execute(query).fetchall()]
    assert not mismatches(want, got, 1e-12, 5e-324)


def test_guarded_squares_are_small_sql():
    """The kernel of a 6-feature RBF machine, each value computed once, stays under 1 kB per feature."""
    xs = [ir.Feature(f"x{i}") for i in range(6)]
    e = ir.func("exp", ir.mul(ir.const(-0.1), ir.add(*[_sq(_d(x, 0.25 * i)) for i, x in enumerate(xs)])))
    model = ir.Model(tuple(ir.FeatureSpec(f"x{i}") for i in range(6)), (("predict", e),))
    sql = lower_model(model, dialect="postgres", share=True).select("t").sql("postgres")
    assert len(sql) < 6_000, len(sql)
