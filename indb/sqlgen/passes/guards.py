"""Guards for engines that raise on float errors, so no single row can abort a query.

``guard`` rewrites operations that could raise on a target with ``float_errors_raise``
(PostgreSQL: overflow, underflow, ``exp``/``ln``/``sqrt`` domain, division by zero) into
guarded forms with the IEEE-754 result, and on a target where division by zero is NULL
(``div_zero_is_null``, SQLite) gives ``x / 0`` and ``log(0)`` their IEEE values. Which
operations need a guard is decided by the range analysis (``indb.sqlgen.passes.ranges``)
over the input domain: finite inputs of magnitude 0 or within [1e-300, 1e300], plus
+-Infinity, NULL and NaN. Inputs outside that domain (|x| > 1e300, or 0 < |x| < 1e-300)
are still exact on engines with IEEE arithmetic (DuckDB, SQLite, the numpy evaluator),
but PostgreSQL may raise "value out of range" on them where the analysis did not need a
guard. A guarded operation sits inside ``ir.Lazy`` so that no backend computes it ahead
of its guard.
"""

from __future__ import annotations

import functools
import math

from indb import ir
from indb.sqlgen.dialects import Target
from indb.sqlgen.passes.limits import DBL_MAX, DBL_TRUE_MIN, EXP_MAX_ARG, EXP_MIN_ARG, last_double
from indb.sqlgen.passes.ranges import Range, add_ranges, analyse

_C = ir.Const
INF = _C(math.inf)
NEG_INF = _C(-math.inf)
ZERO = _C(0.0)


def _cmp(op: str, a: ir.Expr, v: float) -> ir.Expr:
    return ir.Compare(op, a, _C(v))


def _guard_exp(x: ir.Expr, rx: Range) -> ir.Expr:
    """``exp(x)`` with IEEE results where the engine would raise.

    Underflow is clamped (``exp(max(x, EXP_MIN_ARG))`` is 5e-324 where IEEE gives 0: an
    absolute difference far below any tolerance) because ``max`` reads ``x`` once;
    overflow needs a comparison: ``x <= EXP_MAX_ARG`` is false for NaN on every engine,
    so NaN/NULL fall through to the default and stay missing.
    """
    arg = ir.Func("max", (x, _C(EXP_MIN_ARG))) if rx.bottom < EXP_MIN_ARG else x
    e = ir.Func("exp", (arg,))
    if rx.top <= EXP_MAX_ARG:
        return e
    return ir.Case(((_cmp("<=", x, EXP_MAX_ARG), ir.Lazy(e)), (_cmp(">", x, EXP_MAX_ARG), INF)), x)


@functools.lru_cache(maxsize=4096)
def _mul_const_limits(c: float) -> tuple[float, float]:
    """For ``x * c``: the largest |x| with a finite product, and the smallest |x| with a non-zero one."""
    ac = abs(c)
    over = last_double(lambda x: math.isfinite(x * ac), 0.0, DBL_MAX) if ac > 1 else DBL_MAX
    under = 0.0
    if ac < 1:
        under = last_double(lambda x: x * ac == 0.0, 0.0, 1.0)  # largest |x| whose product is 0
    return over, under


@functools.lru_cache(maxsize=4096)
def _div_const_limits(c: float) -> tuple[float, float]:
    ac = abs(c)
    over = last_double(lambda x: math.isfinite(x / ac), 0.0, DBL_MAX) if ac < 1 else DBL_MAX
    under = 0.0
    if ac > 1:
        under = last_double(lambda x: x / ac == 0.0, 0.0, 1.0)
    return over, under


def _guard_scaled(x: ir.Expr, op: str, c: float, rx: Range) -> ir.Expr:
    """``x * c`` or ``x / c`` (constant c) with IEEE overflow/underflow results."""
    over, under = (_mul_const_limits if op == "*" else _div_const_limits)(c)
    whens = []
    sign = 1.0 if c > 0 else -1.0
    if rx.hi > over and over < DBL_MAX:
        whens.append((_cmp(">", x, over), _C(sign * math.inf)))
        whens.append((_cmp("<", x, -over), _C(-sign * math.inf)))
    if under > 0 and rx.lo <= under:
        whens.append((ir.And((_cmp("<=", x, under), _cmp(">=", x, -under))), ir.BinOp("*", x, ZERO)))
    body = ir.BinOp(op, x, _C(c))
    return ir.Case(tuple(whens), ir.Lazy(body)) if whens else body


def _scaled_leaves_range(op: str, c: float, rx: Range) -> bool:
    """Whether ``x * c`` / ``x / c`` can overflow or underflow to 0 for ``x`` in ``rx``.

    The same answer as comparing ``rx`` with the limits of ``_mul_const_limits`` /
    ``_div_const_limits`` (``rx.hi > over`` exactly when ``rx.hi``'s own result is
    infinite; ``rx.lo <= under`` when its result is 0), without searching for them:
    an MLP multiplies by thousands of distinct weights.
    """
    ac = abs(c)
    scale = (lambda x: x * ac) if op == "*" else (lambda x: x / ac)
    over = not math.isfinite(scale(rx.hi))
    under = scale(DBL_TRUE_MIN) == 0.0 and scale(rx.lo) == 0.0
    return over or under


def _guard_mul(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    """``a * b`` of two variables with IEEE overflow/underflow results."""
    aa, ab = ir.Func("abs", (a,)), ir.Func("abs", (b,))
    prod = ir.BinOp("*", a, b)
    same_sign = ir.Compare("==", ir.Func("sign", (a,)), ir.Func("sign", (b,)))
    # conditions are safe to evaluate on any row, in any order: the divisors are
    # clamped so that they cannot overflow, underflow or be zero
    limit = ir.BinOp("/", _C(DBL_MAX * (1 - 2**-50)), ir.Func("max", (ab, _C(1.0))))
    floor = ir.BinOp("/", _C(2.0**-1073), ir.Func("min", (ir.Func("max", (ab, _C(2.0**-1073))), _C(1.0))))
    overflow = ir.And((_cmp(">", aa, 1.0), _cmp(">", ab, 1.0), ir.Compare(">", aa, limit)))
    underflow = ir.And((_cmp("<", aa, 1.0), _cmp("<", ab, 1.0), _cmp(">", aa, 0.0), _cmp(">", ab, 0.0), ir.Compare("<", aa, floor)))
    return ir.Case(((overflow, ir.Case(((same_sign, INF),), NEG_INF)), (underflow, ZERO)), ir.Lazy(prod))


def _guard_div(a: ir.Expr, b: ir.Expr, ra: Range, rb: Range, target: Target) -> ir.Expr:
    """``a / b`` of two variables with IEEE results for b == 0 (and over/underflow)."""
    q = ir.BinOp("/", a, b)
    whens: list[tuple[ir.Expr, ir.Expr]] = []
    if rb.zero:
        ieee = ir.Case(((_cmp(">", a, 0.0), INF), (_cmp("<", a, 0.0), NEG_INF)), _C(None))
        whens.append((_cmp("==", b, 0.0), ieee))
    if target.float_errors_raise and (ra.hi / rb.lo > DBL_MAX if rb.lo else True):
        aa, ab = ir.Func("abs", (a,)), ir.Func("abs", (b,))
        big = ir.And((_cmp("<", ab, 1.0), ir.Compare(">", aa, ir.BinOp("*", _C(DBL_MAX * (1 - 2**-50)), ir.Func("min", (ab, _C(1.0)))))))
        same = ir.Compare("==", ir.Func("sign", (a,)), ir.Func("sign", (b,)))
        whens.append((big, ir.Case(((same, INF),), NEG_INF)))
    if target.float_errors_raise and ra.lo / max(rb.hi, 1e-300) < 2.0**-1073:
        aa, ab = ir.Func("abs", (a,)), ir.Func("abs", (b,))
        small = ir.And((_cmp(">", ab, 1.0), ir.Compare("<", aa, ir.BinOp("*", _C(2.0**-1073), ir.Func("max", (ab, _C(1.0)))))))
        whens.append((small, ir.BinOp("*", a, ZERO)))
    return ir.Case(tuple(whens), ir.Lazy(q)) if whens else q


@functools.lru_cache(maxsize=None)
def _square_limits() -> tuple[float, float]:
    """For ``x * x``: the largest |x| with a finite square, the largest |x| whose square is 0."""
    return last_double(lambda x: math.isfinite(x * x), 1.0, DBL_MAX), last_double(lambda x: x * x == 0.0, 0.0, 1.0)


def _guard_square(x: ir.Expr, rx: Range) -> ir.Expr:
    """``x * x`` with IEEE overflow/underflow results, reading ``|x|`` against two constants."""
    over, under = _square_limits()
    ax = ir.Func("abs", (x,))
    whens = []
    if rx.hi > over:
        whens.append((_cmp(">", ax, over), INF))
    if rx.lo <= under:
        whens.append((_cmp("<=", ax, under), ZERO))
    body = ir.BinOp("*", x, x)
    return ir.Case(tuple(whens), ir.Lazy(body)) if whens else body


def _large_terms(terms: list[ir.Expr], rs: list[Range]) -> tuple[float, ir.Expr | None]:
    """(2**k with 2**k >= 2n, the test that some term exceeds DBL_MAX / 2**k, or None when
    no term can: then no partial sum of the n terms can overflow)."""
    scale = 2.0 ** (max(1, math.ceil(math.log2(len(terms)))) + 1)
    limit = DBL_MAX / scale
    big = [t for t, r in zip(terms, rs) if r.hi > limit]
    if not big:
        return scale, None
    tests = tuple(_cmp(">", ir.Func("abs", (t,)), limit) for t in big)
    return scale, ir.Or(tests) if len(tests) > 1 else tests[0]


def _guard_sum(terms: list[ir.Expr], rs: list[Range]) -> ir.Expr:
    """``t1 + ... + tn`` (terms of one sign) with an IEEE overflow result, checked once.

    With every |t| at most DBL_MAX / 2**k (2**k >= 2n) no partial sum can overflow, and
    the plain sum runs. Otherwise (a term above that) the sum is taken of the terms
    scaled by 2**-k, exactly, and scaled back, or infinite where that would overflow:
    with one sign, the additions overflow exactly where this sum exceeds DBL_MAX. NaN
    and NULL fall through both paths unchanged.
    """
    scale, cond = _large_terms(terms, rs)
    if cond is None:
        return ir.Sum(tuple(terms))
    # below 1 in magnitude a term cannot change a sum this large, so it counts as 1 (or
    # -1), which keeps its scaled value clear of underflow without a test
    positive = any(r.pos for r in rs)
    clear = [ir.Func("max" if positive else "min", (t, _C(1.0 if positive else -1.0))) if r.lo < 1.0 else t for t, r in zip(terms, rs)]
    ssum = ir.Sum(tuple(ir.BinOp("*", t, _C(1.0 / scale)) for t in clear))
    whens = []
    if any(r.pos for r in rs):
        whens.append((_cmp(">", ssum, DBL_MAX / scale), INF))
    if any(r.neg for r in rs):
        whens.append((_cmp("<", ssum, -DBL_MAX / scale), NEG_INF))
    back = ir.Case(tuple(whens), ir.BinOp("*", ssum, _C(scale)))
    return ir.Case(((cond, ir.Lazy(back)),), ir.Lazy(ir.Sum(tuple(terms))))


#: sums of both signs up to this many terms are guarded addition by addition (exactly as
#: left-to-right IEEE additions); longer ones are checked once (:func:`_guard_mixed_sum`)
MIXED_SUM_CHAIN = 8

#: below this magnitude a term is counted as 0 in a scaled sum of both signs (its scaled
#: value could underflow to 0, which PostgreSQL raises on)
_TINY = 2.0**-1000


def _guard_mixed_sum(terms: list[ir.Expr], rs: list[Range]) -> ir.Expr:
    """``t1 + ... + tn`` (terms of both signs) with an IEEE overflow result, checked once.

    As :func:`_guard_sum`: with every |t| at most DBL_MAX / 2**k (2**k >= 2n) no partial
    sum can overflow and the plain sum runs; otherwise the sum is taken of the terms
    scaled by 2**-k (exact: a power of two) and scaled back, or infinite where that
    would overflow. One difference from adding left to right: where a partial sum would
    pass DBL_MAX and later terms bring the total back below it (or an infinite term
    follows), the sequence of additions says infinity (or NaN) and this says the value of
    the whole sum: the finite total (or that infinity). A term under 2**-1000 in magnitude
    counts as 0 on that path (the path runs only with a term above DBL_MAX / 2**k, so it
    changes nothing unless those terms cancel to within 1e-290). Where the additions were
    guarded one by one, each partial sum was a value of its own and the SQL nested as
    deep as the sum was long: a 150-vector polynomial SVM planned for a minute.
    """
    scale, cond = _large_terms(terms, rs)
    if cond is None:
        return ir.Sum(tuple(terms))

    def scaled(t: ir.Expr, r: Range) -> ir.Expr:
        down = ir.BinOp("*", t, _C(1.0 / scale))
        if r.lo < _TINY:
            return ir.Case(((_cmp("<", ir.Func("abs", (t,)), _TINY), ZERO),), ir.Lazy(down))
        return down

    ssum = ir.Sum(tuple(scaled(t, r) for t, r in zip(terms, rs)))
    back = ir.Case(((_cmp(">", ssum, DBL_MAX / scale), INF), (_cmp("<", ssum, -DBL_MAX / scale), NEG_INF)), ir.BinOp("*", ssum, _C(scale)))
    return ir.Case(((cond, ir.Lazy(back)),), ir.Lazy(ir.Sum(tuple(terms))))


def _guard_add(acc: ir.Expr, t: ir.Expr) -> ir.Expr:
    """``acc + t`` with an IEEE overflow result: halve both (exact for |x| >= 1), add, double."""
    h = 2.0**1022
    half = ir.Sum((ir.BinOp("*", acc, _C(0.5)), ir.BinOp("*", t, _C(0.5))))
    big = ir.Case(
        (
            (_cmp("<", ir.Func("abs", (acc,)), 1.0), t),
            (_cmp("<", ir.Func("abs", (t,)), 1.0), acc),
            (_cmp(">", half, DBL_MAX / 2), INF),
            (_cmp("<", half, -DBL_MAX / 2), NEG_INF),
        ),
        ir.BinOp("*", half, _C(2.0)),
    )
    cond = ir.Or((_cmp(">", ir.Func("abs", (acc,)), h), _cmp(">", ir.Func("abs", (t,)), h)))
    return ir.Case(((cond, ir.Lazy(big)),), ir.Lazy(ir.Sum((acc, t))))


def guard(e: ir.Expr, target: Target) -> ir.Expr:
    """Rewrite operations that would raise on ``target`` into guarded IEEE forms."""
    if not (target.float_errors_raise or target.div_zero_is_null):
        return e
    rng = analyse(e)
    raise_ = target.float_errors_raise

    def fn(n: ir.Expr) -> ir.Expr:
        if isinstance(n, ir.Func) and n.name == "log" and not raise_:
            if rng(n.args[0]).zero:
                return ir.Case(((_cmp("==", n.args[0], 0.0), NEG_INF),), n)
            return n
        if isinstance(n, ir.Func) and raise_:
            a = n.args[0]
            ra = rng(a)
            if n.name == "exp" and (ra.top > EXP_MAX_ARG or ra.bottom < EXP_MIN_ARG):
                return _guard_exp(a, ra)
            if n.name == "log" and (ra.neg or ra.zero):
                return ir.Case(((_cmp("==", a, 0.0), NEG_INF), (_cmp("<", a, 0.0), _C(None))), ir.Lazy(n))
            if n.name == "sqrt" and ra.neg:
                return ir.Case(((_cmp("<", a, 0.0), _C(None)),), ir.Lazy(n))
            if n.name == "pow":
                return n  # lowered with its own guard
            return n
        if isinstance(n, ir.BinOp) and n.op in ("*", "/"):
            a, b = n.left, n.right
            ra, rb = rng(a), rng(b)
            if isinstance(b, ir.Const) and b.value is not None and not math.isinf(b.value) and b.value != 0.0:
                if not raise_:
                    return n
                if _scaled_leaves_range(n.op, b.value, ra):
                    return _guard_scaled(a, n.op, b.value, ra)
                return n
            if n.op == "*" and a is b and raise_:
                return _guard_square(a, ra)
            if n.op == "*":
                if raise_ and (ra.hi * rb.hi > DBL_MAX or ra.lo * rb.lo < 2.0**-1073):
                    if isinstance(a, ir.Const):
                        return fn(ir.BinOp("*", b, a)) if a.value not in (None, 0.0) and not math.isinf(a.value) else n
                    return _guard_mul(a, b)
                return n
            return _guard_div(a, b, ra, rb, target)
        if isinstance(n, ir.Sum) and raise_:
            rs = [rng(t) for t in n.terms]
            if sum(r.hi for r in rs) <= DBL_MAX:
                return n
            if len(n.terms) > 2 and (not any(r.neg for r in rs) or not any(r.pos for r in rs)):
                # one sign: the partial sums grow monotonically, so the sum overflows
                # exactly where the sequence of additions would
                return _guard_sum(list(n.terms), rs)
            if len(n.terms) > MIXED_SUM_CHAIN:
                return _guard_mixed_sum(list(n.terms), rs)
            acc = n.terms[0]
            racc = rs[0]
            for t, rt in zip(n.terms[1:], rs[1:]):
                if racc.hi + rt.hi > DBL_MAX:
                    acc = _guard_add(acc, t)
                else:
                    acc = ir.Sum((acc, t)) if not isinstance(acc, ir.Sum) else ir.Sum(acc.terms + (t,))
                racc = add_ranges([racc, rt])
            return acc
        return n

    return ir.transform(e, fn)
