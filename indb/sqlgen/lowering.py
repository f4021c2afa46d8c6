"""IR → sqlglot expressions, for any target in ``indb.sqlgen.dialects``.

The lowering knows SQL and nothing about models. It reads the target's flags (NaN
order, float errors, depth limits) and the range analysis of ``indb.sqlgen.passes`` to emit
the cheapest SQL whose result equals the IR's on every row:

* constants are the shortest round-trip literals, cast to the float type where a bare
  decimal would be exact numeric (PostgreSQL ``numeric`` is several times slower);
* a comparison that must be false for NaN is written so that it is, on engines where
  NaN is greater than every number (``NULLIF(x, 'NaN') > t``), and only where the
  operand can be NaN;
* trees become nested searched ``CASE``; a sum is left-deep (the libraries add left to
  right) unless the target's depth limit needs a balanced shape;
* with ``qualify=True`` (PostgreSQL function bodies that must be inlined and so cannot
  pin ``search_path``) every operator is ``OPERATOR(pg_catalog.op)`` and every
  function ``pg_catalog.fn``, so a caller's ``search_path`` cannot change the result.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from sqlglot import exp

from indb import ir
from indb.sqlgen.dialects.base import Target
from indb.errors import CompileError
from indb.sqlgen.passes import Range, analyse, optimise

_CMP = {"<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE, "==": exp.EQ, "!=": exp.NEQ}
_CMP_SQL = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "!=": "<>"}
_ARITH = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def float_literal(v: float) -> str:
    """The shortest decimal that reads back as ``v`` (Python's repr), SQL-safe."""
    s = repr(float(v))
    return s


def _missing_tested(c: ir.Expr) -> list[ir.Expr]:
    """Expressions a condition tests for missing values (so a false condition means present)."""
    if isinstance(c, ir.IsMissing):
        return [c.operand]
    if isinstance(c, ir.Or):
        out: list[ir.Expr] = []
        for t in c.terms:
            out.extend(_missing_tested(t))
        return out
    return []


def _significant_digits(text: str) -> int:
    mantissa = text.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if mantissa else 0


def _exact_product(v: float, dialect: str | None = None) -> exp.Expression:
    """``v`` as ``m * 2**e`` built from exactly representable literals (integers < 2**63).

    With ``dialect``, the usual one-step product is returned as its text (what sqlglot
    renders for the tree, in parentheses): an MLP has thousands of these, and rendering
    each ``CAST`` took SQLite's generator milliseconds.
    """
    f, e = math.frexp(v)
    m = int(f * 2**53)
    e -= 53
    while m % 2 == 0 and m:
        m //= 2
        e += 1
    if dialect is not None and 0 < abs(e) <= 62:
        lit = repr(float(2 ** abs(e)))
        return exp.Paren(this=exp.Var(this=f"{_cast_double_sql(dialect, str(m))} {'*' if e > 0 else '/'} {lit}"))
    acc: exp.Expression = exp.Cast(this=exp.Literal.number(str(m)), to=exp.DataType.build("double"))
    while e != 0:
        step = max(-62, min(62, e))
        lit = exp.Literal.number(repr(float(2**abs(step))))
        acc = exp.Paren(this=exp.Mul(this=acc, expression=lit) if step > 0 else exp.Div(this=acc, expression=lit))
        e -= step
    return acc


def _number(text: str, v: float) -> exp.Expression:
    """``exp.Literal.number(text)`` for ``text == repr(v)``, without its parse of the text
    back to a number (thousands of weights)."""
    if v < 0:
        if "e" in text:  # sqlglot writes these through Decimal ("2E-323"): keep its text
            return exp.Literal.number(text)
        return exp.Neg(this=exp.Literal(this=text[1:], is_string=False))
    return exp.Literal(this=text, is_string=False)


@functools.lru_cache(maxsize=None)
def _cast_double_template(dialect: str) -> tuple[str, str]:
    head, _, tail = exp.Cast(this=exp.Literal.number("12345"), to=exp.DataType.build("double")).sql(dialect).partition("12345")
    return head, tail


def _cast_double_sql(dialect: str, integer: str) -> str:
    head, tail = _cast_double_template(dialect)
    return head + integer + tail


def _atomic(e: exp.Expression) -> bool:
    return isinstance(e, (exp.Column, exp.Literal, exp.Cast, exp.Paren, exp.Func, exp.Null, exp.Boolean, exp.Dot, exp.Case, exp.Nullif))


def _constant_sql(e: exp.Expression) -> bool:
    """A literal, possibly cast or negated (never NULL or NaN where a lowering wrote it)."""
    while isinstance(e, (exp.Cast, exp.Neg, exp.Paren)):
        e = e.this
    return isinstance(e, exp.Literal)


def refuse_infinite(e: ir.Expr, target: Target, model_name: str) -> None:
    """Refuse a model whose own constants are infinite, for a target that writes an
    infinite *result* as NULL (``inf_literal="null"``): an infinite threshold or
    coefficient written as NULL would change every row."""
    if target.inf_literal != "null":
        return
    for n in ir.walk(e):
        values: list[float] = []
        if isinstance(n, ir.Const) and n.kind == ir.FLOAT and n.value is not None:
            values.append(n.value)  # type: ignore[arg-type]
        elif isinstance(n, ir.TreeEnsemble):
            values.extend(n.base)
            for t in n.trees:
                values.extend(t.threshold)
                values.extend(v for leaf in t.value for v in leaf)
        if any(math.isinf(v) for v in values):
            raise CompileError(
                f"model {model_name}: it has an infinite constant, which {target.name}'s float type cannot hold; "
                "compile it for another dialect or score it with the PL/Python engine"
            )


def as_value(e: exp.Expression, kind: str, target: Target) -> exp.Expression:
    """An output column's expression: a predicate becomes 1/0 (NULL stays NULL) where a
    select list cannot hold a boolean (T-SQL)."""
    if kind != ir.BOOL or target.bool_values:
        return e
    one, zero = exp.Literal.number(1), exp.Literal.number(0)
    return exp.Case(ifs=[exp.If(this=e, true=one), exp.If(this=exp.Not(this=exp.Paren(this=e.copy())), true=zero)])


def no_nan(low: "Lowering", item: ir.Expr, e: exp.Expression) -> exp.Expression:
    """A classifier's output column with NaN written as NULL: one row, one rule.

    SQL NULL and NaN are both *missing*; a row the model refuses must be NULL in every
    output column (its label cannot be NaN, and SQLite has no NaN at all), so a float
    output (probability, decision, numeric label) that can be NaN is passed through ``NULLIF(e, 'NaN')`` (NaN equals NaN on
    these engines), or, in a body that must not resolve ``=`` through the caller's
    search_path, ``(pg_catalog.array_replace(ARRAY[e], 'NaN', NULL))[1]``: both read
    ``e`` once. Targets whose comparisons are IEEE's (no NaN equality) are left as is.
    """
    t = low.target
    if item.type != ir.FLOAT or not t.has_nan or not t.nan_is_greatest or not low.range(item).nan:
        return e
    if low.qualify:
        call = low._fn("array_replace", exp.Array(expressions=[e]), low.nan_const(), exp.Null())
        return exp.Bracket(this=exp.Paren(this=call), expressions=[exp.Literal.number(1)], offset=1)  # already 1-based
    return exp.Nullif(this=e, expression=low.nan_const())


def _as_is(low: "Lowering", item: ir.Expr, e: exp.Expression) -> exp.Expression:
    return e


def _p(e: exp.Expression) -> exp.Expression:
    return e if _atomic(e) else exp.Paren(this=e)


_FLOAT_TYPES: dict[str, exp.DataType] = {}


@dataclass
class Lowering:
    """Lower IR expressions for one target.

    ``columns`` maps a feature name to the SQL expression that reads it (a column, a
    function parameter, a field of a row argument).
    """

    target: Target
    columns: Mapping[str, exp.Expression]
    qualify: bool = False
    model_name: str = "model"
    #: how to raise an error from SQL in this context (deployed functions call indb.fail)
    fail_hook: object = None
    _range: object = None
    _env: dict = field(default_factory=dict)
    #: ids of expressions known not to be missing here (tested by an earlier WHEN)
    _present: set = field(default_factory=set)
    #: ids of nodes computed elsewhere (a variable, a derived column) -> their reference
    bound: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers
    def _float_type(self) -> exp.DataType:
        cached = _FLOAT_TYPES.get(self.target.float_type)
        if cached is None:
            cached = _FLOAT_TYPES[self.target.float_type] = exp.DataType.build(self.target.float_type)
        if any(isinstance(v, exp.Expression) for v in cached.args.values()):
            return cached.copy()
        return exp.DataType(**cached.args)  # a plain type: no deep copy (one per constant)

    def _cast_float(self, e: exp.Expression) -> exp.Expression:
        return exp.Cast(this=e, to=self._float_type())

    def _fn(self, name: str, *args: exp.Expression) -> exp.Expression:
        """A function call; ``pg_catalog.name(...)`` when qualifying."""
        if self.qualify:
            return exp.Dot(this=exp.to_identifier("pg_catalog"), expression=exp.Anonymous(this=name, expressions=list(args)))
        builders = {
            "exp": lambda a: exp.Exp(this=a),
            "ln": lambda a: exp.Ln(this=a),
            "sqrt": lambda a: exp.Sqrt(this=a),
            "abs": lambda a: exp.Abs(this=a),
            "floor": lambda a: exp.Floor(this=a),
            "ceil": lambda a: exp.Ceil(this=a),
            "sign": lambda a: exp.Sign(this=a),
        }
        if name in builders:
            return builders[name](*args)
        if name == "power":
            return exp.Pow(this=args[0], expression=args[1])
        return exp.Anonymous(this=name.upper(), expressions=list(args))

    def _op(self, op: str, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """A binary arithmetic/comparison operator (op in IR spelling).

        The left operand of a left-associative chain (``a + b + c``, ``a * b / c``) is
        written without parentheses, so a long sum does not nest (SQLite's parser has
        a small stack); everything else is parenthesised.
        """
        if self.qualify:
            sql_op = _CMP_SQL.get(op, op)
            # every OPERATOR(...) has the same precedence, left-associative
            left = a if (op in _ARITH and isinstance(a, exp.Operator) and a.args.get("operator", "").split(".")[-1] in "+-*/") else _p(a)
            return exp.Operator(this=left, operator=f"pg_catalog.{sql_op}", expression=_p(b))
        if op in _ARITH:
            same = (exp.Add, exp.Sub) if op in "+-" else (exp.Mul, exp.Div)
            left = a if isinstance(a, same) else _p(a)
            return _ARITH[op](this=left, expression=_p(b))
        return _CMP[op](this=_p(a), expression=_p(b))

    def _neg(self, a: exp.Expression) -> exp.Expression:
        if self.qualify:
            return exp.Paren(this=exp.Operator(this=None, operator="pg_catalog.-", expression=_p(a)))
        return exp.Neg(this=_p(a))

    def float_const(self, v: float | None, cast: bool | None = None) -> exp.Expression:
        t = self.target
        if v is None:
            return exp.Cast(this=exp.Null(), to=self._float_type()) if t.cast_constants else exp.Null()
        if math.isnan(v):
            if not t.has_nan:
                return exp.Null()
            if t.inf_literal == "function":
                return exp.Anonymous(this="nan", expressions=[])
            return self._cast_float(exp.Literal.string("NaN"))
        if math.isinf(v):
            if t.inf_literal == "null":
                # the model's own constants were checked to be finite (refuse_infinite):
                # this is a guard's result for an overflow, x / 0 or ln(0)
                return self.float_const(None)
            if t.inf_literal == "function":
                inf = exp.Anonymous(this="infinity", expressions=[])
                return inf if v > 0 else exp.Neg(this=inf)
            if t.inf_literal == "none":
                raise CompileError(
                    f"model {self.model_name}: its SQL needs an infinite constant, which {t.name}'s float type cannot hold; "
                    "compile it for another dialect or score it with the PL/Python engine"
                )
            if t.inf_literal == "overflow":
                return exp.Literal.number("9e999" if v > 0 else "-9e999")
            return self._cast_float(exp.Literal.string("Infinity" if v > 0 else "-Infinity"))
        text = float_literal(v)
        if t.inexact_literals and _significant_digits(text) >= 16:
            return _exact_product(v, t.name)
        lit = _number(text, v)
        if cast is None:
            cast = t.cast_constants
        return self._cast_float(lit) if cast else lit

    def nan_const(self) -> exp.Expression:
        return self.float_const(math.nan)

    def _nan_to_null(self, e: exp.Expression) -> exp.Expression:
        """``e`` with NaN turned into NULL (a comparison with NULL is false everywhere)."""
        if self.target.nan_test:
            # NULLIF compares with '=', which is false for NaN on these engines
            return exp.Case(ifs=[exp.If(this=self._nan_fn(e), true=self.float_const(None))], default=e.copy())
        if self.qualify:
            # NULLIF resolves '=' through search_path; a CASE on a qualified '<' does not
            return exp.Case(ifs=[exp.If(this=self._op("<", e, self.nan_const()), true=e)])
        return exp.Nullif(this=e, expression=self.nan_const())

    def _not_true(self, c: exp.Expression) -> exp.Expression:
        """``c IS NOT TRUE``: true for false and for NULL."""
        if self.target.is_true_predicate:
            return exp.Not(this=exp.Is(this=exp.Paren(this=c), expression=exp.true()))
        # a searched CASE sends NULL to its ELSE on every engine
        one = exp.Literal.number(1)
        return exp.EQ(this=exp.Case(ifs=[exp.If(this=c, true=exp.Literal.number(0))], default=one), expression=one.copy())

    def _nan_fn(self, e: exp.Expression) -> exp.Expression:
        return exp.Anonymous(this=self.target.nan_test, expressions=[e.copy()])

    def _is_missing(self, e: exp.Expression, kind: str, may_nan: bool) -> exp.Expression:
        if kind != ir.FLOAT or not self.target.has_nan or not may_nan:
            return exp.Is(this=_p(e), expression=exp.Null())
        if self.target.nan_is_greatest:
            # x < 'NaN' is true exactly for the non-missing numbers (+inf included)
            return self._not_true(self._op("<", e, self.nan_const()))
        if self.target.nan_test:
            # IEEE comparisons: no comparison finds a NaN, the engine's test does
            return exp.Paren(this=exp.Or(this=exp.Is(this=_p(e), expression=exp.Null()), expression=self._nan_fn(e)))
        raise CompileError(f"{self.target.name}: a target whose NaN is not greatest needs a nan_test function")

    # ------------------------------------------------------------------ entry
    def lower(self, e: ir.Expr) -> exp.Expression:
        if self._range is None:
            self._range = analyse(e)
        return self._lower(e)

    def range(self, e: ir.Expr) -> Range:
        return self._range(e)  # type: ignore[misc]

    def _lower(self, e: ir.Expr) -> exp.Expression:
        ref = self.bound.get(id(e))
        if ref is not None:
            return ref.copy()
        fn = getattr(self, "_l_" + type(e).__name__, None)
        if fn is None:
            raise CompileError(f"cannot lower IR node {type(e).__name__} to SQL")
        return fn(e)

    # ------------------------------------------------------------------ nodes
    def _l_Feature(self, e: ir.Feature) -> exp.Expression:
        try:
            return self.columns[e.name].copy()
        except KeyError:
            raise CompileError(f"model {self.model_name}: no column for feature {e.name!r}") from None

    def _l_Const(self, e: ir.Const) -> exp.Expression:
        if e.kind == ir.TEXT:
            return exp.Cast(this=exp.Null(), to=exp.DataType.build("text")) if e.value is None else exp.Literal.string(e.value)
        if e.kind == ir.BOOL:
            return exp.true() if e.value else exp.false()
        return self.float_const(e.value)  # type: ignore[arg-type]

    def _l_Var(self, e: ir.Var) -> exp.Expression:
        return self._env[e.name].copy()

    def _l_Let(self, e: ir.Let) -> exp.Expression:
        saved = self._env.get(e.name)
        self._env[e.name] = self._lower(e.value)
        try:
            return self._lower(e.body)
        finally:
            if saved is None:
                self._env.pop(e.name, None)
            else:
                self._env[e.name] = saved

    def _l_BinOp(self, e: ir.BinOp) -> exp.Expression:
        right = self._lower(e.right)
        if e.op == "/" and self.target.div_zero_raises and not (isinstance(e.right, ir.Const) and e.right.value):
            # the guard pass's CASE gives y = 0 its IEEE result; NULLIF keeps an engine
            # that evaluates the division anyway (ANSI Spark) from raising
            right = exp.Nullif(this=right, expression=self.float_const(0.0))
        return self._op(e.op, self._lower(e.left), right)

    def _l_Sum(self, e: ir.Sum) -> exp.Expression:
        return self.sum([self._lower(t) for t in e.terms])

    def sum(self, terms: Sequence[exp.Expression]) -> exp.Expression:
        """Left-deep ``((a + b) + c) + ...``; balanced when the target's depth limit needs it."""
        terms = list(terms)
        limit = self.target.max_depth
        if limit is not None and len(terms) > limit // 2:
            return self._balanced(terms)
        acc = terms[0]
        for t in terms[1:]:
            acc = self._op("+", acc, t)
        return acc

    def _balanced(self, terms: list[exp.Expression]) -> exp.Expression:
        if len(terms) == 1:
            return terms[0]
        mid = len(terms) // 2
        return self._op("+", self._balanced(terms[:mid]), self._balanced(terms[mid:]))

    def _l_Func(self, e: ir.Func) -> exp.Expression:
        name = e.name
        args = [self._lower(a) for a in e.args]
        if name == "neg":
            return self._neg(args[0])
        if name == "expit":
            return self._expit(args[0])
        if name == "log":
            return self._fn("ln", args[0])
        if name == "pow":
            return self._fn("power", args[0], args[1])
        if name in ("max", "min"):
            return self._minmax(name, e.args, args)
        if name == "tanh":
            return self._fn("tanh", args[0])
        return self._fn(name, args[0])

    def _expit(self, z: exp.Expression) -> exp.Expression:
        """``1 / (1 + exp(-z))``, scikit-learn's (and SciPy's) formula, to the last bit."""
        one = self.float_const(1.0)
        arg = self._neg(z)
        if self.target.float_errors_raise:
            # clamp exp's argument to where it neither overflows nor underflows; both
            # clamps read z once and keep NaN and NULL (float8larger is strict and
            # orders NaN above numbers). Beyond them the exact result is 1.0, or below
            # 6e-309 where this gives 5.6e-309: an absolute difference of nothing.
            from indb.sqlgen.passes import EXP_MAX_ARG, EXP_MIN_ARG

            upper = self._neg(self._strict_max(z, self.float_const(-EXP_MAX_ARG)))
            arg = self._strict_max(upper, self.float_const(EXP_MIN_ARG))
        return self._op("/", one, self._op("+", one, self._fn("exp", arg)))

    def _minmax(self, name: str, items: Sequence[ir.Expr], args: list[exp.Expression]) -> exp.Expression:
        """IR max/min: missing if any argument is missing, NaN propagates."""
        t = self.target
        if not t.strict_max and not t.scalar_minmax_strict and not t.greatest:
            # constants second: they need no missing test
            order = sorted(range(len(args)), key=lambda i: isinstance(items[i], ir.Const))
            acc = args[order[0]]
            for i in order[1:]:
                acc = self._case_minmax(name, acc, args[i], not isinstance(items[i], ir.Const))
            return acc
        if t.strict_max:
            # a strict max that orders NaN above numbers is exactly the IR's max;
            # min(a, b) = -max(-a, -b) keeps NaN too
            acc = args[0]
            for a in args[1:]:
                if name == "max":
                    acc = self._strict_max(acc, a)
                else:
                    acc = self._neg(self._strict_max(self._neg(acc), self._neg(a)))
            return acc
        if t.scalar_minmax_strict:
            return exp.Anonymous(this=name.upper(), expressions=args)
        # GREATEST/LEAST skip NULLs elsewhere: test for NULL first
        cls = exp.Greatest if name == "max" else exp.Least
        if name == "min" and t.nan_is_greatest:
            core: exp.Expression = self._neg(exp.Greatest(this=self._neg(args[0]), expressions=[self._neg(a) for a in args[1:]]))
        else:
            core = cls(this=args[0], expressions=args[1:])
        nullable = [self._lower(i) for i in items if not isinstance(i, ir.Const)]
        if not nullable:
            return core
        cond = nullable[0] if len(nullable) == 1 else None
        tests = [exp.Is(this=_p(a), expression=exp.Null()) for a in nullable]
        any_null = tests[0]
        for tst in tests[1:]:
            any_null = exp.Or(this=any_null, expression=tst)
        del cond
        return exp.Case(ifs=[exp.If(this=any_null, true=self.float_const(None))], default=core)

    def _pgfn(self, name: str, *args: exp.Expression) -> exp.Expression:
        if self.qualify:
            return self._fn(name, *args)
        return exp.Anonymous(this=name, expressions=list(args))

    def _strict_max(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        fn = self.target.strict_max
        if fn is None:
            return self._case_minmax("max", a, b, not _constant_sql(b))
        return self._pgfn(fn, a, b)

    def _case_minmax(self, name: str, a: exp.Expression, b: exp.Expression, b_may_miss: bool) -> exp.Expression:
        """The IR's max/min of two values as a searched CASE, for engines whose
        comparisons are IEEE's or that have no NaN: a missing ``a`` fails the comparison
        and is the ELSE value; a missing ``b`` is tested (unless it is a constant)."""
        if self.target.has_nan and self.target.nan_is_greatest:
            raise CompileError(f"{self.target.name}: a CASE max/min needs IEEE comparisons; set strict_max or greatest")
        ifs = []
        if b_may_miss:
            ifs.append(exp.If(this=self._is_missing(b.copy(), ir.FLOAT, True), true=b.copy()))
        ifs.append(exp.If(this=self._op("<" if name == "max" else ">", a.copy(), b.copy()), true=b.copy()))
        return exp.Case(ifs=ifs, default=a.copy())

    def _l_Compare(self, e: ir.Compare) -> exp.Expression:
        op = e.op
        left, right = e.left, e.right
        if isinstance(left, ir.Const) and not isinstance(right, ir.Const):
            left, right, op = right, left, _FLIP[op]
        a, b = self._lower(left), self._lower(right)
        if left.type == ir.FLOAT and self.target.nan_is_greatest and op in (">", ">=", "!=", "=="):
            ra, rb = self.range(left), self.range(right)
            if id(left) in self._present:
                ra = Range(ra.hi, ra.lo, ra.neg, ra.pos, ra.zero, False)
            if id(right) in self._present:
                rb = Range(rb.hi, rb.lo, rb.neg, rb.pos, rb.zero, False)
            # NaN > x, NaN >= x, NaN = NaN and NaN <> x are true here, false in the IR
            if ra.nan and (op != "==" or rb.nan):
                a = self._nan_to_null(a)
            if rb.nan and op != "!=" and not isinstance(right, ir.Const):
                b = self._nan_to_null(b)
            elif rb.nan and op == "!=":
                b = self._nan_to_null(b)
        elif left.type == ir.FLOAT and self.target.nan_test and op == "!=":
            # IEEE's NaN <> x is true, the IR's false
            if self.range(left).nan:
                a = self._nan_to_null(a)
            if self.range(right).nan:
                b = self._nan_to_null(b)
        if isinstance(right, ir.Const) and right.kind == ir.FLOAT and right.value is not None and left.type == ir.FLOAT:
            # the float column fixes the comparison's type: no cast needed on the literal
            b = self.float_const(right.value, cast=self.target.cast_constants and not self.target.literal_takes_column_type)
        if left.type == ir.TEXT and op in ("==", "!=") and not self.target.text_eq_exact:
            pass  # emitted as is; engines with case-insensitive collations are not executed in tests
        return self._op(op, a, b)

    def _l_InSet(self, e: ir.InSet) -> exp.Expression:
        a = self._lower(e.operand)
        if e.operand.type == ir.TEXT:
            vals = [exp.Literal.string(v) for v in e.values]
        else:
            vals = [self.float_const(float(v), cast=False) for v in e.values]
        if self.qualify:
            arr = exp.Array(expressions=vals)
            if e.operand.type != ir.TEXT:
                arr = exp.Cast(this=arr, to=exp.DataType.build("double precision[]", dialect="postgres"))
            return exp.Operator(this=_p(a), operator="pg_catalog.=", expression=exp.Any(this=exp.Paren(this=arr)))
        return exp.In(this=_p(a), expressions=vals)

    def _l_IsMissing(self, e: ir.IsMissing) -> exp.Expression:
        return self._is_missing(self._lower(e.operand), e.operand.type, self.range(e.operand).nan if e.operand.type == ir.FLOAT else True)

    def _bool_chain(self, cls, terms: list[exp.Expression]) -> exp.Expression:
        acc = terms[0]
        for t in terms[1:]:
            acc = cls(this=_p(acc) if not isinstance(acc, cls) else acc, expression=_p(t))
        return exp.Paren(this=acc)

    def _l_And(self, e: ir.And) -> exp.Expression:
        return self._bool_chain(exp.And, [self._lower(t) for t in e.terms])

    def _l_Or(self, e: ir.Or) -> exp.Expression:
        return self._bool_chain(exp.Or, [self._lower(t) for t in e.terms])

    def _l_Not(self, e: ir.Not) -> exp.Expression:
        # SQL's NOT keeps NULL; the IR's booleans are two-valued (missing is false)
        return self._not_true(self._lower(e.operand))

    def _l_Case(self, e: ir.Case) -> exp.Expression:
        bucket = self._bucket_case(e)
        if bucket is not None:
            return bucket
        # after WHEN missing(x) THEN ..., later branches know x is present: its NaN
        # guards can go (a label chosen by comparing a score needs none then)
        saved = set(self._present)
        ifs = []
        try:
            for c, v in e.whens:
                ifs.append(exp.If(this=self._lower(c), true=self._lower(v)))
                self._present.update(id(x) for x in _missing_tested(c))
            default = self._lower(e.default)
        finally:
            self._present = saved
        return exp.Case(ifs=ifs, default=default)

    def _bucket_case(self, e: ir.Case) -> exp.Expression | None:
        """``CASE WHEN missing(a) THEN NULL WHEN a > c THEN v ELSE w END`` reading ``a`` once.

        A binary linear classifier's label has this shape, and ``a`` is its whole score:
        written as a CASE, the score is computed twice per row (its missing test, then
        the comparison). ``width_bucket(a, ARRAY[t, 'NaN'])`` counts the thresholds at or
        below ``a`` in one C call: 0 below ``t``, 1 from ``t`` on, 2 for NaN (PostgreSQL
        orders NaN above every number), NULL for NULL; it picks from ``ARRAY[below,
        above, NULL]``. ``a > c`` is ``a >= nextafter(c, +inf)`` on doubles, and ``a <= c``
        is ``a < nextafter(c, +inf)``, so every comparison is exact. Any other shape:
        None (the CASE as written).
        """
        if not self.target.bucket_lookup or len(e.whens) != 2:
            return None
        (miss, v_miss), (cmp, v_cmp) = e.whens
        if not (isinstance(miss, ir.IsMissing) and isinstance(cmp, ir.Compare) and cmp.op in ("<", "<=", ">", ">=")):
            return None
        a, c = miss.operand, cmp.right
        if a.type != ir.FLOAT or cmp.left is not a or not isinstance(c, ir.Const):
            return None
        values = (v_miss, v_cmp, e.default)
        if not all(isinstance(v, ir.Const) for v in values) or v_miss.value is not None:  # type: ignore[union-attr]
            return None
        if v_cmp.value is None or e.default.value is None or not isinstance(c.value, float) or not math.isfinite(c.value):  # type: ignore[union-attr]
            return None
        t = c.value if cmp.op in (">=", "<") else math.nextafter(c.value, math.inf)
        if not math.isfinite(t):
            return None
        below, above = (e.default, v_cmp) if cmp.op in (">", ">=") else (v_cmp, e.default)
        kind = e.type
        labels = exp.Array(expressions=[self._lower(below), self._lower(above), self._label(None, kind)])
        thresholds = exp.Array(expressions=[self.float_const(t, cast=True), self.nan_const()])
        index = self._op("+", self._fn("width_bucket", self._lower(a), thresholds), exp.Literal.number(1))
        return exp.Bracket(this=exp.Paren(this=labels), expressions=[index], offset=1)

    def _l_Lazy(self, e: ir.Lazy) -> exp.Expression:
        return self._lower(e.operand)

    def _l_Fail(self, e: ir.Fail) -> exp.Expression:
        t = self.target
        msg = f"indb: model {self.model_name}: {e.message}"
        if self.fail_hook is not None:
            return self.fail_hook(msg, e.kind)  # type: ignore[operator]
        if t.error_function:
            err: exp.Expression = exp.Anonymous(this=t.error_function, expressions=[exp.Literal.string(msg)])
            return exp.Cast(this=err, to=self._float_type() if e.kind == ir.FLOAT else exp.DataType.build("text"))
        if t.raise_by_cast:
            # CONCAT is stable, so the planner cannot fold (and raise) it; at run time
            # the cast fails with the message in the error text
            text = self._pgfn("concat", exp.Literal.string(msg))
            return exp.Cast(this=text, to=self._float_type())
        raise CompileError(f"{t.name} cannot raise an error from SQL; use on_missing='null' (missing inputs give NULL)")

    def _l_Index(self, e: ir.Index) -> exp.Expression:
        v = e.vector
        if isinstance(v, ir.Vector):
            return self._lower(v.items[e.i])
        if isinstance(v, ir.TreeEnsemble):
            return self.tree_sum(v, e.i)
        raise CompileError(f"cannot index {type(v).__name__}")

    def _l_Vector(self, e: ir.Vector) -> exp.Expression:
        raise CompileError("a vector output must be lowered item by item (see lower_outputs)")

    def _l_TreeEnsemble(self, e: ir.TreeEnsemble) -> exp.Expression:
        if e.n_outputs != 1:
            raise CompileError("a multi-output tree ensemble must be indexed")
        return self.tree_sum(e, 0)

    def _l_ArgMax(self, e: ir.ArgMax) -> exp.Expression:
        items = list(e.items)
        kind = e.type
        label = [self._label(v, kind) for v in e.labels]
        lowered = [self._lower(i) for i in items]
        ifs = []
        may_missing = [self.range(i).nan for i in items]
        if any(may_missing):
            tests = [self._is_missing(self._lower(i), ir.FLOAT, True) for i, m in zip(items, may_missing) if m]
            cond = tests[0]
            for t in tests[1:]:
                cond = exp.Or(this=cond, expression=t)
            ifs.append(exp.If(this=cond, true=self._label(None, kind)))
        k = len(items)
        for i in range(k - 1):
            conds = [self._op(">=", lowered[i].copy(), lowered[j].copy()) for j in range(i + 1, k)]
            c = conds[0]
            for x in conds[1:]:
                c = exp.And(this=c, expression=x)
            ifs.append(exp.If(this=c, true=label[i]))
        return exp.Case(ifs=ifs, default=label[-1])

    def _label(self, v, kind: str) -> exp.Expression:
        if kind == ir.TEXT:
            return exp.Cast(this=exp.Null(), to=exp.DataType.build("text")) if v is None else exp.Literal.string(str(v))
        return self.float_const(None if v is None else float(v))

    # ------------------------------------------------------------------ trees
    def tree_sum(self, te: ir.TreeEnsemble, k: int) -> exp.Expression:
        inputs = [self._lower(i).sql(self.target.name) for i in te.inputs]
        # an input an enclosing WHEN has tested for missing (a model that refuses NaN
        # returns NULL first) is present here: its splits need no NaN test
        nan_inputs = [self.range(i).nan and i.type == ir.FLOAT and id(i) not in self._present for i in te.inputs]
        emit = TreeText(self, inputs, nan_inputs, te.strict)
        terms: list[exp.Expression] = []
        if te.base[k] != 0.0 or not te.trees:
            terms.append(self.float_const(te.base[k]))
        for t in te.trees:
            terms.append(exp.Var(this=emit.tree(t, k)))
        return self.sum(terms) if len(terms) > 1 else terms[0]


class TreeText:
    """Nested searched CASE for one tree, written straight to text.

    Trees are the one place where sqlglot's node-by-node building and generation is too
    slow (a 100-tree forest of depth 8 has 50,000 nodes: about a minute). The text is
    made from a closed vocabulary: keywords, the input expressions rendered by sqlglot,
    and numbers from ``repr(float)`` (text categories are rendered by sqlglot too), so
    nothing from outside reaches SQL unquoted. Tests parse it back with sqlglot.
    """

    def __init__(self, low: Lowering, inputs: list[str], nan_inputs: list[bool], strict: bool) -> None:
        self.low = low
        t = low.target
        self.dialect = t.name
        self.inputs = [x if _simple_sql(x) else f"({x})" for x in inputs]
        self.nan_inputs = nan_inputs
        self.strict = strict
        self.qualify = low.qualify
        self.float_sql = t.float_type_short or low._float_type().sql(t.name)
        if low.qualify:
            self.float_sql = "pg_catalog." + self.float_sql
        # an untyped 'NaN' takes the float type of the other operand (PostgreSQL, DuckDB);
        # a qualified body spells the type out so search_path cannot matter
        if not t.has_nan:
            self.nan = ""
        elif low.qualify:
            self.nan = self._typed("'NaN'")
        else:
            self.nan = "'NaN'" if t.untyped_nan else low.nan_const().sql(t.name)
        self.literal_fix = _SqliteLiterals() if t.inexact_literals else None
        # CASEs a tree may nest: half the engine's limit, the rest for the expression
        # around it (a sum, an argmax, a NULL test)
        self.case_budget = None if t.max_case_nesting is None else max(t.max_case_nesting // 2, 1)

    def _typed(self, lit: str) -> str:
        if self.low.target.cast_operator:
            return f"{lit}::{self.float_sql}"
        return f"CAST({lit} AS {self.float_sql})"

    def _num(self, v: float) -> str:
        if math.isinf(v) or math.isnan(v):
            return self.low.float_const(v).sql(self.dialect)
        text = float_literal(v)
        if self.literal_fix is not None:
            return self.literal_fix.fix(v, text)
        return text

    def _leaf(self, v: float) -> str:
        if not self.low.target.cast_constants:
            return self._num(v)
        return self._typed(self._num(v))

    def _cmp(self, x: str, op: str, t: str) -> str:
        if self.qualify:
            return f"{x} OPERATOR(pg_catalog.{op}) {t}"
        return f"{x}{op}{t}"

    def _members(self, cats) -> str:
        if cats and isinstance(cats[0], str):
            return ",".join(exp.Literal.string(c).sql(self.dialect) for c in cats)
        return ",".join(self._num(float(c)) for c in cats)

    def _in(self, x: str, cats) -> str:
        if self.qualify:
            arr = f"ARRAY[{self._members(cats)}]"
            if not (cats and isinstance(cats[0], str)):
                arr += "::pg_catalog.float8[]"
            return f"{x} OPERATOR(pg_catalog.=) ANY({arr})"
        return f"{x} IN ({self._members(cats)})"

    def _present(self, x: str, f: int, categorical: bool = False) -> str | None:
        """A test that is false for NaN, where a split's own condition would hold for NaN; else None."""
        t = self.low.target
        if self.nan_inputs[f] and t.nan_is_greatest:
            return self._cmp(x, "<", self.nan)
        if self.nan_inputs[f] and t.nan_test and categorical:
            # IEEE: NaN > t is false already, but NaN NOT IN (...) is true
            return f"NOT {t.nan_test.upper()}({x})"
        return None

    def _outside(self, x: str, cats) -> str:
        """True for a present value outside the set, false or NULL for a missing one."""
        if self.low.target.is_true_predicate:
            return f"({self._in(x, cats)}) IS FALSE"
        return f"{x} NOT IN ({self._members(cats)})"  # NULL NOT IN (...) is NULL

    def _not_true(self, cond: str) -> str:
        if self.low.target.is_true_predicate:
            return f"({cond}) IS NOT TRUE"
        return f"CASE WHEN {cond} THEN 0 ELSE 1 END=1"

    def tree(self, t: ir.Tree, k: int) -> str:
        feature, left, right = t.feature, t.left, t.right
        # a subtree whose leaves agree for output k needs no test
        uniform: dict[int, float | None] = {}
        size: dict[int, int] = {}
        order: list[int] = []
        stack = [0]
        while stack:
            n = stack.pop()
            order.append(n)
            if feature[n] >= 0:
                stack.append(left[n])
                stack.append(right[n])
        for n in reversed(order):
            if feature[n] < 0:
                uniform[n] = t.value[n][k]
                size[n] = 1
            else:
                a, b = uniform[left[n]], uniform[right[n]]
                uniform[n] = a if (a is not None and a == b) else None
                size[n] = 1 if uniform[n] is not None else 1 + size[left[n]] + size[right[n]]
        out: list[str] = []
        le, gt = ("<", ">=") if self.strict else ("<=", ">")

        def split(n: int) -> tuple[str, int, int]:
            """(condition, the child it sends a row to, the child for false and NULL)"""
            f = feature[n]
            x = self.inputs[f]
            cats = t.category_set(n)
            present = self._present(x, f, categorical=cats is not None)
            if cats is not None:
                if not t.missing_left[n]:
                    return self._in(x, cats), left[n], right[n]
                # right only for a present value outside the set
                outside = self._outside(x, cats)
                return (outside if present is None else f"{outside} AND {present}"), right[n], left[n]
            thr = self._num(t.threshold[n])
            if not t.missing_left[n]:
                return self._cmp(x, le, thr), left[n], right[n]
            return (self._cmp(x, gt, thr) if present is None else f"{self._cmp(x, gt, thr)} AND {present}"), right[n], left[n]

        def leaf(u: float, typed: bool) -> None:
            # a CASE takes the float type if one branch has it; an untyped literal
            # beside it is cast at plan time. One typed leaf per CASE is enough.
            out.append(self._leaf(u) if typed else self._num(u))

        def node(n: int, typed: bool = True) -> None:
            u = uniform[n]
            if u is not None:
                leaf(u, typed)
                return
            cond, first, second = split(n)
            out.append("CASE WHEN ")
            out.append(cond)
            out.append(" THEN ")
            node(first, typed=False)  # the ELSE branch below is typed (a leaf or a CASE)
            out.append(" ELSE ")
            node(second)
            out.append(" END")

        def chain(n: int, nest: int, typed: bool = True) -> None:
            # one CASE per chain of larger children (WHEN c THEN <smaller> ... ELSE leaf):
            # a nested CASE holds at most half the nodes of its parent, so nesting
            # grows with log2(size), and below the budget a subtree is written flat
            u = uniform[n]
            if u is not None:
                leaf(u, typed)
                return
            if nest >= self.case_budget:
                flat(n, typed)
                return
            out.append("CASE")
            while uniform[n] is None:
                cond, first, second = split(n)
                if size[first] > size[second]:
                    cond, light, n = self._not_true(cond), second, first
                else:
                    light, n = first, second
                out.append(" WHEN ")
                out.append(cond)
                out.append(" THEN ")
                chain(light, nest + 1, typed=False)
            out.append(" ELSE ")
            leaf(uniform[n], True)  # type: ignore[arg-type]
            out.append(" END")

        def flat(n: int, typed: bool) -> None:
            # one WHEN per leaf, in order, the first child before the second: a leaf
            # needs only the conditions of the splits where its path takes the first
            # child (had any other condition on its path held, an earlier WHEN would
            # have matched), and the last leaf none
            leaves: list[tuple[list[str], float]] = []

            def visit(m: int, conds: list[str]) -> None:
                if uniform[m] is not None:
                    leaves.append((conds, uniform[m]))  # type: ignore[arg-type]
                    return
                cond, first, second = split(m)
                visit(first, [*conds, cond])
                visit(second, conds)

            visit(n, [])
            out.append("CASE")
            for conds, v in leaves[:-1]:
                out.append(" WHEN ")
                out.append(" AND ".join(conds))
                out.append(" THEN ")
                leaf(v, False)
            out.append(" ELSE ")
            leaf(leaves[-1][1], True)
            out.append(" END")

        if self.case_budget is None:
            node(0)
        else:
            chain(0, 0)
        return "".join(out)


def _simple_sql(s: str) -> bool:
    return s.replace("_", "a").replace('"', "").replace(".", "").isalnum()


class _SqliteLiterals:
    """Checks long literals against this machine's SQLite parser (correctly rounded only
    since 3.43) and writes the few it misreads as exact ``m * 2**e`` products."""

    def __init__(self) -> None:
        import sqlite3  # noqa: PLC0415

        self.conn = sqlite3.connect(":memory:")
        self.cache: dict[float, str] = {}

    def fix(self, v: float, text: str) -> str:
        if _significant_digits(text) < 16:
            return text
        got = self.cache.get(v)
        if got is None:
            # one query per literal is fast enough at tree scale (tens of thousands)
            back = self.conn.execute("SELECT " + text).fetchone()[0]
            got = text if back == v else _exact_product(v).sql("sqlite")
            self.cache[v] = got
        return got


# ---------------------------------------------------------------------- outputs


def output_label(v) -> str:
    """A class label as a column-name fragment: lower-case, ``[a-z0-9_]`` only."""
    s = str(v)
    if isinstance(v, float) and v.is_integer():
        s = str(int(v))
    return "".join(c if ("a" <= c <= "z" or "0" <= c <= "9" or c == "_") else "_" for c in s.lower())


def _unique(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        cand, i = n, 1
        while cand in seen:
            i += 1
            cand = f"{n}_{i}"
        seen.add(cand)
        out.append(cand)
    return out


def output_names(model: ir.Model, kind: str) -> list[str]:
    """Column names of one output kind, per DESIGN.md."""
    e = model.output(kind)
    if kind == "predict":
        return ["prediction"]
    if kind == "proba":
        return _unique([f"probability_{output_label(c)}" for c in model.classes or ()])
    if kind == "decision":
        if isinstance(e, ir.Vector):
            labels = model.classes if model.classes is not None and len(model.classes) == len(e.items) else range(len(e.items))
            return _unique([f"decision_{output_label(c)}" for c in labels])
        return ["decision"]
    if kind == "transform":
        return [f"transform_{i}" for i in range(len(e.items))]  # type: ignore[attr-defined]
    raise CompileError(f"unknown output {kind!r}; choose from predict, proba, decision, transform")


@dataclass
class Shared:
    """One output kind lowered with its shared subexpressions named once.

    ``bindings`` are (name, IR type, SQL) in dependency order, each with a nesting
    ``level`` (a binding only reads bindings of lower levels); ``columns`` are the
    outputs, reading bindings through the references the caller chose.
    """

    bindings: list[tuple[str, str, exp.Expression]]
    levels: list[int]
    columns: list[tuple[str, exp.Expression]]
    #: IR nodes with shared subtrees counted once, and written out at every use
    dag_nodes: int = 0
    inline_nodes: int = 0

    #: the target needs the bindings whatever they save (its parser nests only so deep)
    required: bool = False

    def worth_sharing(self) -> bool:
        """Naming the shared values saves real work (not just a repeated input test)."""
        if self.required and self.bindings:
            return True
        return bool(self.bindings) and self.inline_nodes > max(2 * self.dag_nodes, self.dag_nodes + 400)


def _repeated_minmax_arguments(e: ir.Expr, target: Target) -> set[int]:
    """Arguments of max/min that the target's SQL would write more than once.

    Without a strict max (PostgreSQL's ``float8larger``, SQLite's ``MAX``), the IR's
    max is ``GREATEST`` behind a NULL test of its arguments, or a searched CASE: an
    MLP's ReLU wrote each dot product three times (DuckDB's SQL 2.4x PostgreSQL's).
    Named once, the test and the GREATEST read a column.
    """
    if target.strict_max or target.scalar_minmax_strict:
        return set()
    return {
        id(a)
        for n in ir.walk(e)
        if isinstance(n, ir.Func) and n.name in ("max", "min")
        for a in n.args
        if not isinstance(a, (ir.Const, ir.Feature))
    }


def lower_shared(
    model: ir.Model,
    kind: str,
    target: Target,
    columns: Mapping[str, exp.Expression],
    reference,
    *,
    qualify: bool = False,
    model_name: str = "model",
    fail_hook=None,
) -> Shared:
    """Lower one output kind, naming each shared subexpression once.

    ``reference(name)`` is how the SQL reads a binding (a PL/pgSQL variable, a column
    of a derived table).
    """
    from indb.sqlgen.passes import shared_to_bind

    if kind not in model.output_kinds:
        raise CompileError(f"model {model_name} has no {kind!r} output; it offers: {', '.join(model.output_kinds)}")
    e = model.output(kind)
    vec = e if isinstance(e, ir.Vector) else ir.Vector((e,))
    names = output_names(model, kind)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        refuse_infinite(vec, target, model_name)
        opt = optimise(vec, target)
        forced: set[int] = set()
        if target.max_trees_per_expression:
            from indb.sqlgen.passes import split_tree_sums

            opt, forced = split_tree_sums(opt, target.max_trees_per_expression)
        forced |= _repeated_minmax_arguments(opt, target)
        low = Lowering(target, columns, qualify=qualify, model_name=model_name, fail_hook=fail_hook)
        low._range = analyse(opt)
        to_bind = shared_to_bind(opt, max_nesting=target.max_nesting, force=forced)
        if not target.bool_values:
            # a binding is a column; a shared predicate is written at each use instead
            to_bind = [n for n in to_bind if n.type != ir.BOOL]
        bound_ids = {id(n) for n in to_bind}
        levels: dict[int, int] = {}

        def level_of(n: ir.Expr) -> int:
            best, stack, seen = 0, list(n.children()), set()
            while stack:
                c = stack.pop()
                if id(c) in seen:
                    continue
                seen.add(id(c))
                if id(c) in bound_ids:
                    best = max(best, levels[id(c)])
                else:
                    stack.extend(c.children())
            return best + 1

        bindings, lvls = [], []
        for i, n in enumerate(to_bind):
            name = f"_indb_s{i}"
            bindings.append((name, n.type, low.lower(n)))
            levels[id(n)] = level_of(n)
            lvls.append(levels[id(n)])
            low.bound[id(n)] = reference(name)
        items = opt.items if isinstance(opt, ir.Vector) else (opt,)  # type: ignore[attr-defined]
        rule = no_nan if model.classes is not None else _as_is
        cols = [(name, as_value(rule(low, item, low.lower(item)), item.type, target)) for name, item in zip(names, items)]
        dag, inline = ir.size(opt), ir.inline_size(opt)
    finally:
        sys.setrecursionlimit(old)
    return Shared(bindings, lvls, cols, dag, inline, required=target.max_nesting is not None or bool(forced))


def lower_outputs(
    model: ir.Model,
    kind: str,
    target: Target,
    columns: Mapping[str, exp.Expression],
    *,
    qualify: bool = False,
    model_name: str = "model",
    fail_hook=None,
) -> list[tuple[str, exp.Expression]]:
    """``[(column name, SQL expression)]`` for one output kind of ``model``."""
    if kind not in model.output_kinds:
        raise CompileError(f"model {model_name} has no {kind!r} output; it offers: {', '.join(model.output_kinds)}")
    e = model.output(kind)
    items = list(e.items) if isinstance(e, ir.Vector) else [e]
    names = output_names(model, kind)
    out = []
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        for name, item in zip(names, items):
            refuse_infinite(item, target, model_name)
            opt = optimise(item, target)
            low = Lowering(target, columns, qualify=qualify, model_name=model_name, fail_hook=fail_hook)
            # a classifier's NaN output is NULL, like its label on a refused row (no_nan);
            # a regressor's NaN input gives NaN, as numpy
            rule = no_nan if model.classes is not None else _as_is
            if rule is no_nan:
                low._range = analyse(opt)
            out.append((name, as_value(rule(low, opt, low.lower(opt)), item.type, target)))
    finally:
        sys.setrecursionlimit(old)
    return out
