"""IR → IR passes: constant folding, sharing, and guards for engines that raise on float errors.

* ``fold`` evaluates constant subtrees with the evaluator's own arithmetic (so the
  folded constant is bit-identical to what the model computes) and removes neutral
  operations that are exact for every input (``x * 1``, ``x + 0``).
* ``intern`` makes structurally equal subtrees one object, so every backend can
  compute a shared subexpression once (the numpy evaluator memoises by identity; the
  SQL lowering sees the sharing and decides how to express it).
* ``guard`` rewrites operations that could raise on an engine with
  ``float_errors_raise`` (PostgreSQL: overflow, underflow, ``exp``/``ln``/``sqrt``
  domain, division by zero) into guarded forms with the IEEE-754 result, so no single
  row can abort a query. Which operations need a guard is decided by a range
  analysis over the *input domain*: finite inputs of magnitude 0 or within
  [1e-300, 1e300], plus +-Infinity, NULL and NaN. Inputs outside that domain
  (|x| > 1e300, or 0 < |x| < 1e-300) are still exact on engines with IEEE arithmetic
  (DuckDB, SQLite, the numpy evaluator), but PostgreSQL may raise "value out of range"
  on them where the analysis did not need a guard.

``balance`` is not here on purpose: sums are added left to right like the libraries
do, and the lowering switches to a balanced shape only when a dialect's depth limit
requires it (``indb.sqlgen.lowering``).
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from indb import ir
from indb.sqlgen.dialects import Target
from indb.ir.evaluate import evaluate

DBL_MAX = float(np.finfo(np.float64).max)
DBL_TRUE_MIN = 5e-324
INPUT_MAX = 1e300
INPUT_MIN = 1e-300


def _bisect(ok: Callable[[float], bool], good: float, bad: float) -> float:
    """The last double from ``good`` towards ``bad`` for which ``ok`` holds."""
    for _ in range(2000):
        mid = (good + bad) / 2
        if mid in (good, bad):
            break
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good


def _exp_finite(x: float) -> bool:
    try:
        return math.isfinite(math.exp(x)) and math.isfinite(float(np.exp(x)))
    except OverflowError:
        return False


#: exp(x) is finite for x <= EXP_MAX_ARG (in libm and numpy) and non-zero for x >= EXP_MIN_ARG
EXP_MAX_ARG = _bisect(_exp_finite, 709.0, 710.0)
EXP_MIN_ARG = _bisect(lambda x: math.exp(x) > 0 and float(np.exp(x)) > 0, -745.0, -746.0)
#: softmax terms are clamped here so that term / sum (sum >= 1) cannot underflow to 0
SOFTMAX_MIN_ARG = -700.0


# ------------------------------------------------------------------------- folding


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


# ------------------------------------------------------------------------- sharing


def intern(e: ir.Expr) -> ir.Expr:
    """Make structurally equal subtrees the same object (hash-consing, linear time)."""
    table: dict[tuple, ir.Expr] = {}
    key_of: dict[int, tuple] = {}

    def fn(n: ir.Expr) -> ir.Expr:
        kids = n.children()
        if isinstance(n, ir.TreeEnsemble):
            key = ("TreeEnsemble", tuple(id(k) for k in kids), id(n.trees), n.n_outputs, n.base, n.strict)
        elif kids:
            attrs = tuple(
                getattr(n, f) for f in n.__dataclass_fields__ if not isinstance(getattr(n, f), (ir.Expr, tuple)) or f in ("values", "labels")
            )
            key = (type(n).__name__, attrs, tuple(id(k) for k in kids))
        else:
            key = (type(n).__name__, n)
        got = table.get(key)
        if got is None:
            table[key] = n
            got = n
        key_of[id(got)] = key
        return got

    return ir.transform(e, fn)


def shared_nodes(e: ir.Expr) -> set[int]:
    """ids of non-leaf nodes referenced from more than one parent."""
    parents: dict[int, int] = {}
    for n in ir.walk(e):
        for c in n.children():
            if c.children() or isinstance(c, ir.TreeEnsemble):
                parents[id(c)] = parents.get(id(c), 0) + 1
    return {k for k, v in parents.items() if v > 1}


# ------------------------------------------------------------------ range analysis


@dataclass(frozen=True)
class Range:
    """What a float node can be: largest finite magnitude, smallest non-zero magnitude, signs.

    ``neg``/``pos`` include the infinities; ``nan`` means NaN or NULL is possible.
    """

    hi: float
    lo: float
    neg: bool = True
    pos: bool = True
    zero: bool = True
    nan: bool = True
    #: signed bounds of the finite values (None: -hi / +hi)
    vmin: float | None = None
    vmax: float | None = None
    #: may be SQL NULL (a missing input, a NULL constant); ``nan`` is about NaN only
    null: bool = True

    @property
    def missing(self) -> bool:
        return self.nan or self.null

    @property
    def top(self) -> float:
        if self.vmax is not None:
            return self.vmax
        return self.hi if self.pos else 0.0

    @property
    def bottom(self) -> float:
        if self.vmin is not None:
            return self.vmin
        return -self.hi if self.neg else 0.0


INPUT = Range(INPUT_MAX, INPUT_MIN)
BOOLEAN = Range(1.0, 1.0, False, True, True, False, null=False)


def _const_range(v: float | None) -> Range:
    if v is None:  # NULL: missing, but not a NaN (which is what SQL must handle specially)
        return Range(0.0, math.inf, False, False, False, False, null=True)
    a = abs(v)
    if math.isinf(v):
        return Range(0.0, math.inf, v < 0, v > 0, False, False, null=False)
    return Range(a, a if a else math.inf, v < 0, v > 0, v == 0, False, v, v, null=False)


def _union(rs: list[Range]) -> Range:
    return Range(
        max(r.hi for r in rs),
        min(r.lo for r in rs),
        any(r.neg for r in rs),
        any(r.pos for r in rs),
        any(r.zero for r in rs),
        any(r.nan for r in rs),
        null=any(r.null for r in rs),
    )


def _times(x: float, y: float) -> float:
    """A bound's product where 0 * inf (a zero range times an unbounded one) is 0, not NaN."""
    return 0.0 if x == 0.0 or y == 0.0 else x * y


def _mul(a: Range, b: Range) -> Range:
    return Range(
        _times(a.hi, b.hi),
        _times(a.lo, b.lo),
        (a.neg and b.pos) or (a.pos and b.neg),
        (a.pos and b.pos) or (a.neg and b.neg),
        a.zero or b.zero,
        a.nan or b.nan or ((a.zero and (b.neg or b.pos)) or (b.zero and (a.neg or a.pos))),
        null=a.null or b.null,
    )


def _div(a: Range, b: Range) -> Range:
    return Range(
        a.hi / b.lo if b.lo else math.inf,
        a.lo / b.hi if b.hi else DBL_TRUE_MIN,
        (a.neg and b.pos) or (a.pos and b.neg),
        (a.pos and b.pos) or (a.neg and b.neg),
        a.zero or (b.hi >= DBL_MAX),
        a.nan or b.nan or b.zero,
        null=a.null or b.null,
    )


def _ulp_floor(x: float) -> float:
    """The spacing of doubles at magnitude ``x``: every double >= x is a multiple of it."""
    if not (0 < x < math.inf):
        return DBL_TRUE_MIN
    return max(math.ldexp(1.0, math.frexp(x)[1] - 53), DBL_TRUE_MIN)


def _add(rs: list[Range]) -> Range:
    # each term is a multiple of the spacing at its smallest magnitude, so a non-zero
    # sum (exact, then rounded to a double) is at least the smallest of those spacings
    lo = min(r.lo for r in rs) if len(rs) == 1 else min(_ulp_floor(r.lo) for r in rs)
    return Range(
        sum(r.hi for r in rs),
        lo,
        any(r.neg for r in rs),
        any(r.pos for r in rs),
        all(r.zero for r in rs) or (any(r.neg for r in rs) and any(r.pos for r in rs)),
        any(r.nan for r in rs) or (any(r.neg for r in rs) and any(r.pos for r in rs)),
        sum(r.bottom for r in rs),
        sum(r.top for r in rs),
        null=any(r.null for r in rs),
    )


def _neg(a: Range) -> Range:
    return Range(a.hi, a.lo, a.pos, a.neg, a.zero, a.nan, -a.top, -a.bottom, null=a.null)


class _Analysis:
    def __init__(self) -> None:
        self.memo: dict[int, Range] = {}
        self.env: dict[str, Range] = {}

    def of(self, e: ir.Expr) -> Range:
        got = self.memo.get(id(e))
        if got is None:
            got = self._compute(e)
            self.memo[id(e)] = got
        return got

    def _compute(self, e: ir.Expr) -> Range:
        if isinstance(e, ir.Feature):
            return INPUT
        if isinstance(e, ir.Const):
            return _const_range(e.value) if e.kind == ir.FLOAT else BOOLEAN
        if isinstance(e, ir.Var):
            return self.env.get(e.name, INPUT)
        if isinstance(e, ir.Lazy):
            return self.of(e.operand)
        if isinstance(e, ir.Let):
            self.env[e.name] = self.of(e.value)
            return self.of(e.body)
        if isinstance(e, ir.BinOp):
            a, b = self.of(e.left), self.of(e.right)
            if e.op == "*" and e.left is e.right:  # a square: never negative
                return Range(a.hi * a.hi, a.lo * a.lo, False, a.neg or a.pos, a.zero or a.lo * a.lo == 0.0, a.nan, 0.0, a.hi * a.hi, null=a.null)
            if e.op == "*":
                return _mul(a, b)
            if e.op == "/":
                return _div(a, b)
            r = _add([a, b if e.op == "+" else _neg(b)])
            if e.op == "-" and isinstance(e.right, ir.Func) and e.right.name == "max" and e.left in e.right.args:
                r = Range(r.hi, r.lo, r.neg, False, r.zero, r.nan, r.bottom, 0.0, null=r.null)  # z - max(.., z, ..) <= 0
            return r
        if isinstance(e, ir.Sum):
            return _add([self.of(t) for t in e.terms])
        if isinstance(e, ir.Func):
            return self._func(e)
        if isinstance(e, ir.Case):
            return _union([self.of(v) for _, v in e.whens] + [self.of(e.default)])
        if isinstance(e, ir.Index):
            if isinstance(e.vector, ir.Vector):
                return self.of(e.vector.items[e.i])
            if isinstance(e.vector, ir.TreeEnsemble):
                te = e.vector
                k = e.i
                hi = abs(te.base[k]) + sum(max(abs(v[k]) for v in t.value) for t in te.trees)
                # every partial sum is a multiple of the smallest ulp among the summands,
                # so a non-zero sum is at least that large
                vals = [abs(te.base[k])] + [abs(v[k]) for t in te.trees for v in t.value]
                nz = [x for x in vals if x != 0.0 and math.isfinite(x)]
                lo = min(float(np.spacing(min(nz))), min(nz)) if nz else math.inf
                lows = [min(v[k] for v in t.value) for t in te.trees]
                highs = [max(v[k] for v in t.value) for t in te.trees]
                # trees route NULL and NaN somewhere: a tree sum is never missing
                return Range(hi, lo, True, True, True, False, te.base[k] + sum(lows), te.base[k] + sum(highs), null=False)
        if isinstance(e, ir.ArgMax):
            labels = [float(v) for v in e.labels if not isinstance(v, str)] or [0.0]
            return _union([_const_range(v) for v in labels] + [_const_range(None)])
        if isinstance(e, (ir.Compare, ir.IsMissing, ir.InSet, ir.And, ir.Or, ir.Not)):
            return BOOLEAN
        return Range(DBL_MAX, DBL_TRUE_MIN)

    def _func(self, e: ir.Func) -> Range:
        r = self._func_values(e)
        null = any(self.of(a).null for a in e.args)
        return Range(r.hi, r.lo, r.neg, r.pos, r.zero, r.nan, r.vmin, r.vmax, null=null)

    def _func_values(self, e: ir.Func) -> Range:
        args = [self.of(a) for a in e.args]
        a = args[0]
        name = e.name
        if name == "neg":
            return _neg(a)
        if name == "abs":
            return Range(a.hi, a.lo, False, a.neg or a.pos, a.zero, a.nan)
        if name in ("tanh", "sign"):
            return Range(1.0, min(a.lo, 1.0) if name == "tanh" else 1.0, a.neg, a.pos, a.zero, a.nan)
        if name == "expit":
            return Range(1.0, DBL_TRUE_MIN, False, True, True, a.nan)
        if name == "exp":
            hi = math.exp(min(a.hi, EXP_MAX_ARG)) if a.pos else 1.0
            lo = math.exp(-min(a.hi, -EXP_MIN_ARG)) if a.neg else 1.0
            return Range(hi, max(lo, DBL_TRUE_MIN), False, True, a.neg, a.nan)
        if name == "log":
            big = max(abs(math.log(a.hi)) if a.hi > 0 else 0.0, abs(math.log(a.lo)) if 0 < a.lo < math.inf else 0.0, 745.2)
            return Range(big, DBL_TRUE_MIN, True, True, True, a.nan or a.neg)
        if name == "sqrt":
            return Range(math.sqrt(a.hi), math.sqrt(a.lo) if a.lo < math.inf else 1.0, False, a.pos, a.zero, a.nan or a.neg)
        if name in ("floor", "ceil"):
            return Range(a.hi + 1, 1.0, True, True, True, a.nan)
        if name in ("min", "max"):
            u = _union(args)
            pick = max if name == "max" else min
            return Range(u.hi, u.lo, u.neg, u.pos, u.zero, u.nan, pick(r.bottom for r in args), pick(r.top for r in args))
        return Range(math.inf, DBL_TRUE_MIN)  # pow: anything


def analyse(e: ir.Expr) -> Callable[[ir.Expr], Range]:
    """A function giving the ``Range`` of any node of ``e``."""
    an = _Analysis()
    return an.of


# -------------------------------------------------------------------------- guards

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
    over = _bisect(lambda x: math.isfinite(x * ac), 0.0, DBL_MAX) if ac > 1 else DBL_MAX
    under = 0.0
    if ac < 1:
        under = _bisect(lambda x: x * ac == 0.0, 0.0, 1.0)  # largest |x| whose product is 0
    return over, under


@functools.lru_cache(maxsize=4096)
def _div_const_limits(c: float) -> tuple[float, float]:
    ac = abs(c)
    over = _bisect(lambda x: math.isfinite(x / ac), 0.0, DBL_MAX) if ac < 1 else DBL_MAX
    under = 0.0
    if ac > 1:
        under = _bisect(lambda x: x / ac == 0.0, 0.0, 1.0)
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
    return _bisect(lambda x: math.isfinite(x * x), 1.0, DBL_MAX), _bisect(lambda x: x * x == 0.0, 0.0, 1.0)


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


def _guard_sum(terms: list[ir.Expr], rs: list[Range]) -> ir.Expr:
    """``t1 + ... + tn`` (terms of one sign) with an IEEE overflow result, checked once.

    With every |t| at most DBL_MAX / 2**k (2**k >= 2n) no partial sum can overflow, and
    the plain sum runs. Otherwise (a term above that) the sum is taken of the terms
    scaled by 2**-k, exactly, and scaled back, or infinite where that would overflow:
    with one sign, the additions overflow exactly where this sum exceeds DBL_MAX. NaN
    and NULL fall through both paths unchanged.
    """
    k = max(1, math.ceil(math.log2(len(terms)))) + 1
    scale = 2.0**k
    limit = DBL_MAX / scale
    big = [t for t, r in zip(terms, rs) if r.hi > limit]
    if not big:
        return ir.Sum(tuple(terms))
    cond = ir.Or(tuple(_cmp(">", ir.Func("abs", (t,)), limit) for t in big)) if len(big) > 1 else _cmp(">", ir.Func("abs", (big[0],)), limit)
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
                over, under = (_mul_const_limits if n.op == "*" else _div_const_limits)(b.value)
                if (ra.hi > over and over < DBL_MAX) or (under > 0 and ra.lo <= under):
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
            acc = n.terms[0]
            racc = rs[0]
            for t, rt in zip(n.terms[1:], rs[1:]):
                if racc.hi + rt.hi > DBL_MAX:
                    acc = _guard_add(acc, t)
                else:
                    acc = ir.Sum((acc, t)) if not isinstance(acc, ir.Sum) else ir.Sum(acc.terms + (t,))
                racc = _add([racc, rt])
            return acc
        return n

    return ir.transform(e, fn)


def drop_impossible_missing(e: ir.Expr) -> ir.Expr:
    """``IsMissing(x)`` is false where x can be neither NULL nor NaN (a tree sum, a constant)."""
    rng = analyse(e)

    def fn(n: ir.Expr) -> ir.Expr:
        if isinstance(n, ir.IsMissing) and n.operand.type == ir.FLOAT and not rng(n.operand).missing:
            return ir.Const(False, ir.BOOL)
        return n

    return ir.transform(e, fn)


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
            tail = ir.Func("exp", (ir.Func("max", (z, _C(EXP_MIN_ARG))),))
            return ir.Case(((ir.Compare(">=", z, _C(-EXP_MAX_ARG)), n),), tail)
        return n

    return ir.transform(e, fn)


def optimise(e: ir.Expr, target: Target) -> ir.Expr:
    """fold → guard → fold → intern: the pipeline the SQL lowering runs."""
    e = fold(e)
    e = guard(e, target)
    e = intern(fold(e))
    e = intern(fold(drop_impossible_missing(e)))
    return intern(exact_shared_expit(e, target))


def parent_counts(e: ir.Expr) -> dict[int, int]:
    """How many parents each node has in the DAG (shared subtrees counted once)."""
    counts: dict[int, int] = {}
    for n in ir.walk(e):
        for c in n.children():
            counts[id(c)] = counts.get(id(c), 0) + 1
    return counts


def split_tree_sums(e: ir.Expr, per_chunk: int) -> tuple[ir.Expr, set[int]]:
    """Rewrite each large tree sum as running partial sums of at most ``per_chunk`` trees.

    ``Index(ensemble, k)`` becomes ``s1 = base + t0 + ... + t9``, ``s2 = s1 + t10 + ...``,
    the same additions in the same order (so bitwise the same sum); the partial sums are
    returned to be named (``shared_to_bind(force=...)``).
    """
    forced: set[int] = set()

    def fn(n: ir.Expr) -> ir.Expr:
        if not (isinstance(n, ir.Index) and isinstance(n.vector, ir.TreeEnsemble)):
            return n
        te = n.vector
        if len(te.trees) <= per_chunk:
            return n
        k = n.i

        def one(t: ir.Tree) -> ir.Expr:
            single = ir.TreeEnsemble(te.inputs, (t,), te.n_outputs, tuple(0.0 for _ in te.base), te.strict)
            return ir.Index(single, k)

        acc: ir.Expr | None = None
        for start in range(0, len(te.trees), per_chunk):
            terms = [one(t) for t in te.trees[start:start + per_chunk]]
            head: ir.Expr = ir.Const(float(te.base[k])) if acc is None else acc
            acc = ir.Sum((head, *terms))
            forced.add(id(acc))
        return acc  # type: ignore[return-value]

    out = ir.transform(e, fn)
    return out, forced


def shared_to_bind(e: ir.Expr, min_size: int = 6, max_nesting: int | None = None, force: set[int] | None = None) -> list[ir.Expr]:
    """Non-trivial scalar nodes used more than once, children before parents.

    A backend that can name a value (a PL/pgSQL variable, a column of a derived
    table) computes these once instead of at every use. With ``max_nesting``, a node
    is also named where the expression below it (down to named values) would nest
    deeper than that, so that no single SQL expression nests beyond the engine's limit.
    """
    counts = parent_counts(e)
    sizes: dict[int, int] = {}
    order: list[ir.Expr] = []
    seen: set[int] = set()

    def visit(n: ir.Expr) -> int:
        if id(n) in seen:
            return sizes[id(n)]
        seen.add(id(n))
        total = 1 + sum(visit(c) for c in n.children())
        if isinstance(n, ir.TreeEnsemble):
            total += sum(t.n_nodes for t in n.trees)
        sizes[id(n)] = total
        order.append(n)
        return total

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        visit(e)
    finally:
        sys.setrecursionlimit(old)
    # nodes reached from the root without passing through a Lazy marker: computing them
    # ahead of time cannot raise where the original would not have
    eager: set[int] = set()
    stack = [e]
    while stack:
        n = stack.pop()
        if id(n) in eager or isinstance(n, ir.Lazy):
            continue
        eager.add(id(n))
        stack.extend(n.children())
    out = []
    height: dict[int, int] = {}
    for n in order:  # children come before parents
        kids = n.children()
        h = 1 + max((height[id(c)] for c in kids), default=0) if kids else 0
        if isinstance(n, ir.TreeEnsemble):
            h += max((t.depth() for t in n.trees), default=0)
        bindable = (
            id(n) in eager
            and not isinstance(n, (ir.Feature, ir.Const, ir.Var, ir.Fail, ir.Vector, ir.TreeEnsemble))
            and n.type in (ir.FLOAT, ir.TEXT, ir.BOOL)
        )
        shared = counts.get(id(n), 0) >= 2 and (sizes[id(n)] >= min_size or (isinstance(n, ir.Index) and isinstance(n.vector, ir.TreeEnsemble)))
        deep = max_nesting is not None and h >= max_nesting
        if bindable and (shared or deep or (force is not None and id(n) in force)):
            out.append(n)
            h = 0
        height[id(n)] = h
    return out
