"""Range analysis: what each float node of an expression can be, on the input domain.

The guards (``indb.sqlgen.passes.guards``), ``drop_impossible_missing`` and the SQL
lowering read it: ``analyse(e)`` gives a function from any node of ``e`` to its
``Range`` (largest and smallest non-zero magnitude, possible signs, zero, NaN, NULL).
Inputs are assumed to lie in the domain of ``indb.sqlgen.passes.limits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from indb import ir
from indb.sqlgen.passes.limits import DBL_MAX, DBL_TRUE_MIN, EXP_MAX_ARG, EXP_MIN_ARG, INPUT_MAX, INPUT_MIN


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


def add_ranges(rs: list[Range]) -> Range:
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
            r = add_ranges([a, b if e.op == "+" else _neg(b)])
            if e.op == "-" and isinstance(e.right, ir.Func) and e.right.name == "max" and e.left in e.right.args:
                r = Range(r.hi, r.lo, r.neg, False, r.zero, r.nan, r.bottom, 0.0, null=r.null)  # z - max(.., z, ..) <= 0
            return r
        if isinstance(e, ir.Sum):
            return add_ranges([self.of(t) for t in e.terms])
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
