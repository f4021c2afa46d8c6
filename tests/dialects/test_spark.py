"""Golden SQL for Spark SQL: what indb writes for each small IR in ``tests.dialects.cases``."""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is DECIMAL in Spark: constants are cast to DOUBLE
    validate(C.LINEAR, write={'spark': '(CAST(2.5 AS DOUBLE) * x0) + (CAST(-0.5 AS DOUBLE) * x1) + CAST(1.25 AS DOUBLE)'})


def test_impute():
    # Spark treats NaN as greater than any number and equal to itself, as PostgreSQL
    validate(C.IMPUTE, write={'spark': "CASE WHEN NOT (x0 < CAST('NaN' AS DOUBLE)) IS TRUE THEN CAST(3.0 AS DOUBLE) ELSE x0 END"})


def test_divide():
    # pinned, not IEEE: Spark gives NULL (or raises in ANSI mode) for x / 0
    validate(C.DIVIDE, write={'spark': 'x0 / x1'})


def test_tree():
    # NaN is the largest value in Spark: x1 < 'NaN' sends NaN to the missing side
    validate(C.TREE, write={'spark': "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 AND x1<'NaN' THEN 30.0 ELSE CAST(20.0 AS DOUBLE) END END"})


def test_argmax():
    # Spark has IS TRUE: NULL scores give a NULL label
    validate(C.ARGMAX, write={'spark': "CASE WHEN NOT (((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) < CAST('NaN' AS DOUBLE)) IS TRUE OR NOT (x1 < CAST('NaN' AS DOUBLE)) IS TRUE THEN CAST(NULL AS STRING) WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_exp():
    # pinned as emitted
    validate(C.EXP, write={'spark': 'EXP(x0)'})


def test_log():
    # pinned: Spark's ln(0) is NULL (no guard is emitted for it yet)
    validate(C.LOG, write={'spark': 'LN(x1)'})


def test_pow():
    # pinned as emitted
    validate(C.POW, write={'spark': 'POWER(x1, CAST(0.5 AS DOUBLE))'})


def test_quoted():
    # backticks quote in Spark
    validate(C.QUOTED, write={'spark': '`select` + `Order Total`'})
