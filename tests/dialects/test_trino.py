"""Golden SQL for Trino: what indb writes for each small IR in ``tests.dialects.cases``."""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is DECIMAL in Trino: constants are cast to DOUBLE
    validate(C.LINEAR, write={'trino': '(CAST(2.5 AS DOUBLE) * x0) + (CAST(-0.5 AS DOUBLE) * x1) + CAST(1.25 AS DOUBLE)'})


def test_impute():
    # Trino has no IS TRUE (sqlglot drops it): a CASE says IS NOT TRUE
    validate(C.IMPUTE, write={'trino': "CASE WHEN CASE WHEN x0 < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 THEN CAST(3.0 AS DOUBLE) ELSE x0 END"})


def test_divide():
    # Trino's DOUBLE division is IEEE: x / 0 is +-Infinity or NaN
    validate(C.DIVIDE, write={'trino': 'CAST(x0 AS DOUBLE) / x1'})


def test_tree():
    # tree text is written by indb, not sqlglot: pinned as emitted
    validate(C.TREE, write={'trino': "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 AND x1<'NaN' THEN 30.0 ELSE CAST(20.0 AS DOUBLE) END END"})


def test_argmax():
    # IS NOT TRUE as a CASE: a NULL score gives a NULL label, not a real one
    validate(C.ARGMAX, write={'trino': "CASE WHEN CASE WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 OR CASE WHEN x1 < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 THEN CAST(NULL AS VARCHAR) WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_exp():
    # Trino's exp is IEEE
    validate(C.EXP, write={'trino': 'EXP(x0)'})


def test_log():
    # Trino's ln(0) is -Infinity
    validate(C.LOG, write={'trino': 'LN(x1)'})


def test_pow():
    # Trino's pow of a negative base with exponent 0.5 is NaN
    validate(C.POW, write={'trino': 'POWER(x1, CAST(0.5 AS DOUBLE))'})


def test_quoted():
    # select is reserved, Order Total is mixed case with a space: both quoted
    validate(C.QUOTED, write={'trino': '"select" + "Order Total"'})
