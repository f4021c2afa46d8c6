"""SQLite: executed in tests; no NaN, NULL for division by zero, a small parser stack."""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "sqlite",
    # a bare 0.5 is REAL already
    cast_constants=False,
    # storing NaN stores NULL
    has_nan=False,
    nan_is_greatest=False,
    div_zero_is_null=True,
    # 9e999 reads as +Inf; there is no 'Infinity' literal
    inf_literal="overflow",
    # max(a, b) and min(a, b) with two or more arguments are scalar, NULL if any is NULL
    scalar_minmax_strict=True,
    # SQLITE_MAX_EXPR_DEPTH
    max_depth=1000,
    # the LALR parser stack holds 100 entries (YYSTACKDEPTH): 18 CASEs nested in THEN
    # branches fit in a bare SELECT (measured on 3.40), 23 in ELSE branches
    max_case_nesting=18,
    # the same stack, in IR levels: deeper expressions become derived columns
    max_nesting=8,
    # SQLITE_MAX_COLUMN
    max_columns=2000,
    inexact_literals=True,
    merges_subqueries=True,
)
