"""``guard``: guarded IEEE forms where a target raises on float errors (or gives NULL for x / 0)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from indb import ir
from indb.sqlgen.dialects import target
from indb.sqlgen.passes import guard
from indb.sqlgen.passes.guards import _div_const_limits, _mul_const_limits, _scaled_leaves_range
from indb.sqlgen.passes.ranges import Range
from indb.sqlgen.passes.limits import DBL_MAX, EXP_MAX_ARG, EXP_MIN_ARG
from tests.passes.edges import EXPRESSIONS, SQUARE, C, X, Y, assert_same_values

INF, NEG_INF, NULL = C(math.inf), C(-math.inf), C(None)
#: the largest |x| with a finite x * 1e10, with a finite square, and with a square of 0
OVER_1E10 = 1.7976931348623157e298
ROOT_MAX = 1.3407807929942596e154
ROOT_MIN = 1.5717277847026285e-162


def _exp_guard(x: ir.Expr) -> ir.Expr:
    return ir.Case(
        (
            (ir.Compare("<=", x, C(EXP_MAX_ARG)), ir.Lazy(ir.Func("exp", (ir.Func("max", (x, C(EXP_MIN_ARG))),)))),
            (ir.Compare(">", x, C(EXP_MAX_ARG)), INF),
        ),
        x,
    )


CASES = {
    "exp_postgres": ("postgres", ir.Func("exp", (X,)), _exp_guard(X)),
    "exp_duckdb_unchanged": ("duckdb", ir.Func("exp", (X,)), ir.Func("exp", (X,))),
    "exp_in_range_unchanged": ("postgres", ir.Func("exp", (ir.Func("tanh", (X,)),)), ir.Func("exp", (ir.Func("tanh", (X,)),))),
    "log_postgres": (
        "postgres",
        ir.Func("log", (X,)),
        ir.Case(((ir.Compare("==", X, C(0.0)), NEG_INF), (ir.Compare("<", X, C(0.0)), NULL)), ir.Lazy(ir.Func("log", (X,)))),
    ),
    "log_sqlite": ("sqlite", ir.Func("log", (X,)), ir.Case(((ir.Compare("==", X, C(0.0)), NEG_INF),), ir.Func("log", (X,)))),
    "log_of_non_zero_unchanged": ("sqlite", ir.Func("log", (C(2.0),)), ir.Func("log", (C(2.0),))),
    "sqrt_postgres": ("postgres", ir.Func("sqrt", (X,)), ir.Case(((ir.Compare("<", X, C(0.0)), NULL),), ir.Lazy(ir.Func("sqrt", (X,))))),
    "sqrt_of_abs_unchanged": ("postgres", ir.Func("sqrt", (ir.Func("abs", (X,)),)), ir.Func("sqrt", (ir.Func("abs", (X,)),))),
    "divide_sqlite": (
        "sqlite",
        ir.BinOp("/", X, Y),
        ir.Case(
            ((ir.Compare("==", Y, C(0.0)), ir.Case(((ir.Compare(">", X, C(0.0)), INF), (ir.Compare("<", X, C(0.0)), NEG_INF)), NULL)),),
            ir.Lazy(ir.BinOp("/", X, Y)),
        ),
    ),
    "divide_by_constant_sqlite_unchanged": ("sqlite", ir.BinOp("/", X, C(3.0)), ir.BinOp("/", X, C(3.0))),
    # |x| <= 1e300 on the input domain: only a factor above ~1.8 can overflow
    "scale_in_range_unchanged": ("postgres", ir.BinOp("*", X, C(1.5)), ir.BinOp("*", X, C(1.5))),
    "scale_overflow": (
        "postgres",
        ir.BinOp("*", X, C(1e10)),
        ir.Case(((ir.Compare(">", X, C(OVER_1E10)), INF), (ir.Compare("<", X, C(-OVER_1E10)), NEG_INF)), ir.Lazy(ir.BinOp("*", X, C(1e10)))),
    ),
    "scale_negative_overflow": (
        "postgres",
        ir.BinOp("*", X, C(-1e10)),
        ir.Case(((ir.Compare(">", X, C(OVER_1E10)), NEG_INF), (ir.Compare("<", X, C(-OVER_1E10)), INF)), ir.Lazy(ir.BinOp("*", X, C(-1e10)))),
    ),
    "square": (
        "postgres",
        SQUARE,
        ir.Case(
            ((ir.Compare(">", ir.Func("abs", (X,)), C(ROOT_MAX)), INF), (ir.Compare("<=", ir.Func("abs", (X,)), C(ROOT_MIN)), C(0.0))),
            ir.Lazy(SQUARE),
        ),
    ),
    "sum_in_range_unchanged": ("postgres", ir.Sum((X, Y)), ir.Sum((X, Y))),
}


@pytest.mark.parametrize("dialect, before, after", CASES.values(), ids=CASES.keys())
def test_guard(dialect: str, before: ir.Expr, after: ir.Expr) -> None:
    assert guard(before, target(dialect)) == after


def test_guard_limits_are_the_last_doubles() -> None:
    """The constants the fixtures expect are the exact limits, one ulp from failing."""
    with np.errstate(all="ignore"):
        assert math.isfinite(OVER_1E10 * 1e10) and not math.isfinite(np.nextafter(OVER_1E10, math.inf) * 1e10)
        assert math.isfinite(ROOT_MAX * ROOT_MAX) and not math.isfinite(np.nextafter(ROOT_MAX, math.inf) ** 2)
        assert ROOT_MIN * ROOT_MIN == 0.0 and np.nextafter(ROOT_MIN, 1.0) ** 2 > 0.0
        assert EXP_MAX_ARG < 709.8 and DBL_MAX == np.finfo(np.float64).max


@pytest.mark.parametrize("c", [1.5, -1.9999999999999998, 1e10, 0.75, -3e-5, 1e-300])
def test_scaled_limits_are_the_last_doubles(c: float) -> None:
    """``x * c`` / ``x / c`` limits one ulp from failing, also above DBL_MAX / 2 (|c| < 2,
    where a bisection of values once overflowed its midpoint and stopped at DBL_MAX / 2)."""
    ac = abs(c)
    over, under = _mul_const_limits(c)
    dover, dunder = _div_const_limits(c)
    up = math.inf
    if ac > 1:
        assert math.isfinite(over * ac) and not math.isfinite(math.nextafter(over, up) * ac)
        assert dunder / ac == 0.0 and math.nextafter(dunder, up) / ac > 0.0
    else:
        assert math.isfinite(dover / ac) and not math.isfinite(math.nextafter(dover, up) / ac)
        assert under * ac == 0.0 and math.nextafter(under, up) * ac > 0.0


@pytest.mark.parametrize("op", ["*", "/"])
@pytest.mark.parametrize("c", [1.5, -3e300, 1e-310, 0.75, -0.5, 2.0, 1e-20])
@pytest.mark.parametrize("hi, lo", [(1e300, 1e-300), (1.7e308, 0.0), (1e10, 5e-324), (1.0, 1e-310)])
def test_guard_test_matches_the_limits(op: str, c: float, hi: float, lo: float) -> None:
    """The guard decides from the range's own products what the searched limits would say."""
    over, under = (_mul_const_limits if op == "*" else _div_const_limits)(c)
    expected = (hi > over and over < DBL_MAX) or (under > 0 and lo <= under)
    assert _scaled_leaves_range(op, c, Range(hi, lo)) == expected


def test_guarded_sums_of_one_sign_are_checked_once() -> None:
    """Three squares: one test of the largest terms, then the plain sum (partial sums cannot overflow one sign)."""
    e = guard(EXPRESSIONS["sum_of_squares"], target("postgres"))
    assert isinstance(e, ir.Case) and len(e.whens) == 1 and e.default == ir.Lazy(EXPRESSIONS["sum_of_squares"].with_children(e.default.operand.terms))


#: where the guarded form differs from IEEE today (found by the test below; not changed
#: here): the guard of ``x / y`` at y == 0 reads the sign of x only, so x / -0.0 is +inf
#: where IEEE (numpy, DuckDB) gives -inf
DIFFERS = {"quotient": "x / -0.0 gives +inf for x > 0 where IEEE gives -inf (the zero's sign is not read)"}


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.xfail(reason=DIFFERS[n], strict=True)) if n in DIFFERS else n for n in EXPRESSIONS]
)
def test_guard_keeps_values(dialect: str, name: str) -> None:
    """IEEE values on every edge row; an underflow clamped at ``exp``'s argument may give
    the smallest subnormal (5e-324) where IEEE gives 0."""
    e = EXPRESSIONS[name]
    assert_same_values(e, guard(e, target(dialect)), atol=5e-324)


def test_long_sums_of_both_signs_are_checked_once() -> None:
    """Past MIXED_SUM_CHAIN terms a sum of both signs is one test, not one guarded addition
    per term (which nested the SQL as deep as the sum was long), and it keeps the IEEE
    value on every edge row except where the finite terms, added left to right, pass
    DBL_MAX: IEEE says infinity from there on (NaN after an opposite infinity), this says
    the value of the whole sum (the documented difference)."""
    from indb.sqlgen.passes.guards import MIXED_SUM_CHAIN
    from tests.passes.edges import Z, edge_columns, values

    signs = [1.0, -1.0, 1.0]
    terms = [ir.BinOp("*", v, C(signs[i % 3] * 1e8 * (1 + i / 16))) for i, v in enumerate([X, Y, Z] * 4)]
    assert len(terms) > MIXED_SUM_CHAIN
    e = ir.Sum(tuple(terms))
    g = guard(e, target("postgres"))
    assert isinstance(g, ir.Case) and len(g.whens) == 1, "one test of the large terms, then the plain sum"
    assert len(g.default.operand.terms) == len(terms), "not a chain of guarded additions"
    cols = edge_columns()
    with np.errstate(all="ignore"):
        parts = np.column_stack([values(t, cols) for t in terms])
        finite = np.isfinite(parts)
        # rows where the finite terms, added left to right, pass DBL_MAX at some point
        passed = np.isinf(np.cumsum(np.where(finite, parts, 0.0), axis=1)).any(axis=1)
        want, got = values(e, cols), values(g, cols)
    same = (want == got) | (np.isnan(want) & np.isnan(got))
    assert same[~passed].all()
    assert passed.any() and same[passed].sum() < passed.sum()  # the class is reached, and differs
    assert np.isfinite(got[passed & finite.all(axis=1) & (np.abs(np.sum(parts / 32, axis=1)) < 1e307)]).all()
