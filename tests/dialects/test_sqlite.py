"""Golden SQL for SQLite: what indb writes for each small IR in ``tests.dialects.cases``."""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is REAL in SQLite: no casts
    validate(C.LINEAR, write={'sqlite': '(2.5 * x0) + ((-0.5) * x1) + 1.25'}, rows=C.ROWS_2)


def test_impute():
    # SQLite stores NaN as NULL, so missing is IS NULL
    validate(C.IMPUTE, write={'sqlite': 'CASE WHEN x0 IS NULL THEN 3.0 ELSE x0 END'}, rows=C.ROWS_2)


def test_divide():
    # SQLite's x / 0 is NULL: the IEEE +-inf is chosen before dividing (9e999 reads as inf)
    validate(C.DIVIDE, write={'sqlite': 'CASE WHEN x1 = 0.0 THEN CASE WHEN x0 > 0.0 THEN 9e999 WHEN x0 < 0.0 THEN -9E+999 ELSE NULL END ELSE CAST(x0 AS REAL) / x1 END'}, rows=C.ROWS_2)


def test_tree():
    # no NaN in SQLite: NULL fails x1 > -1.5 and goes left; trees are WHEN chains (its parser stack is small)
    validate(C.TREE, write={'sqlite': 'CASE WHEN x0<=0.5 THEN 0.0 WHEN x1>-1.5 THEN 30.0 ELSE 20.0 END'}, rows=C.ROWS_2)


def test_argmax():
    # the label is NULL when a score is NULL
    validate(C.ARGMAX, write={'sqlite': "CASE WHEN ((0.5 * x0) + 1.0) IS NULL OR x1 IS NULL THEN CAST(NULL AS TEXT) WHEN ((0.5 * x0) + 1.0) >= x1 THEN 'no' ELSE 'yes' END"}, rows=C.ROWS_2)


def test_exp():
    # SQLite's exp gives inf on overflow
    validate(C.EXP, write={'sqlite': 'EXP(x0)'}, rows=C.ROWS_2)


def test_log():
    # SQLite's ln(0) is NULL: -inf is chosen before
    validate(C.LOG, write={'sqlite': 'CASE WHEN x1 = 0.0 THEN -9E+999 ELSE LN(x1) END'}, rows=C.ROWS_2)


def test_pow():
    # SQLite's pow of a negative base with exponent 0.5 is NULL (NaN is NULL here)
    validate(C.POW, write={'sqlite': 'POWER(x1, 0.5)'}, rows=C.ROWS_2)


def test_quoted():
    # select is reserved, Order Total is mixed case with a space: both quoted
    validate(C.QUOTED, write={'sqlite': '"select" + "Order Total"'})
