"""Golden SQL for BigQuery: what indb writes for each small IR in ``tests.dialects.cases``."""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # constants are cast to FLOAT64 (a bare 2.5 is FLOAT64 already; the cast is harmless)
    validate(C.LINEAR, write={'bigquery': '(CAST(2.5 AS FLOAT64) * x0) + (CAST(-0.5 AS FLOAT64) * x1) + CAST(1.25 AS FLOAT64)'})


def test_impute():
    # BigQuery orders NaN below numbers in ORDER BY, but NaN < x is false and 'NaN' compares as NaN: pinned as emitted
    validate(C.IMPUTE, write={'bigquery': "CASE WHEN NOT (x0 < CAST('NaN' AS FLOAT64)) IS TRUE THEN CAST(3.0 AS FLOAT64) ELSE x0 END"})


def test_divide():
    # pinned, not IEEE: BigQuery raises on x / 0 (no guard is emitted for it yet)
    validate(C.DIVIDE, write={'bigquery': 'x0 / x1'})


def test_tree():
    # pinned as emitted
    validate(C.TREE, write={'bigquery': "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 AND x1<'NaN' THEN 30.0 ELSE CAST(20.0 AS FLOAT64) END END"})


def test_argmax():
    # BigQuery has IS TRUE: NULL scores give a NULL label
    validate(C.ARGMAX, write={'bigquery': "CASE WHEN NOT (((CAST(0.5 AS FLOAT64) * x0) + CAST(1.0 AS FLOAT64)) < CAST('NaN' AS FLOAT64)) IS TRUE OR NOT (x1 < CAST('NaN' AS FLOAT64)) IS TRUE THEN CAST(NULL AS STRING) WHEN ((CAST(0.5 AS FLOAT64) * x0) + CAST(1.0 AS FLOAT64)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_exp():
    # pinned: BigQuery raises on exp overflow (no guard is emitted for it yet)
    validate(C.EXP, write={'bigquery': 'EXP(x0)'})


def test_log():
    # pinned: BigQuery raises on ln(0) (no guard is emitted for it yet)
    validate(C.LOG, write={'bigquery': 'LN(x1)'})


def test_pow():
    # pinned as emitted
    validate(C.POW, write={'bigquery': 'POWER(x1, CAST(0.5 AS FLOAT64))'})


def test_quoted():
    # backticks quote in BigQuery
    validate(C.QUOTED, write={'bigquery': '`select` + `Order Total`'})
