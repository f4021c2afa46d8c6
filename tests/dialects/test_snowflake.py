"""Golden SQL for Snowflake: what indb writes for each small IR in ``tests.dialects.cases``."""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is NUMBER in Snowflake: constants are cast to DOUBLE
    validate(C.LINEAR, write={'snowflake': '(CAST(2.5 AS DOUBLE) * x0) + (CAST(-0.5 AS DOUBLE) * x1) + CAST(1.25 AS DOUBLE)'})


def test_impute():
    # sqlglot writes NOT c for NOT c IS TRUE in Snowflake (NULL for a NULL c): a CASE says IS NOT TRUE
    validate(C.IMPUTE, write={'snowflake': "CASE WHEN CASE WHEN x0 < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 THEN CAST(3.0 AS DOUBLE) ELSE x0 END"})


def test_divide():
    # pinned, not IEEE: Snowflake raises on x / 0 (no guard is emitted for it yet)
    validate(C.DIVIDE, write={'snowflake': 'x0 / x1'})


def test_tree():
    # NaN is greater than every number in Snowflake: x1 < 'NaN' sends NaN to the missing side
    validate(C.TREE, write={'snowflake': "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 AND x1<'NaN' THEN 30.0 ELSE CAST(20.0 AS DOUBLE) END END"})


def test_argmax():
    # IS NOT TRUE as a CASE: a NULL score gives a NULL label, not 'yes'
    validate(C.ARGMAX, write={'snowflake': "CASE WHEN CASE WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 OR CASE WHEN x1 < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 THEN CAST(NULL AS VARCHAR) WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_exp():
    # pinned: Snowflake raises where exp overflows (no guard is emitted for it yet)
    validate(C.EXP, write={'snowflake': 'EXP(x0)'})


def test_log():
    # pinned: Snowflake raises on ln(0) (no guard is emitted for it yet)
    validate(C.LOG, write={'snowflake': 'LN(x1)'})


def test_pow():
    # pinned as emitted
    validate(C.POW, write={'snowflake': 'POWER(x1, CAST(0.5 AS DOUBLE))'})


def test_quoted():
    # select is reserved, Order Total is mixed case with a space: both quoted
    validate(C.QUOTED, write={'snowflake': '"select" + "Order Total"'})
