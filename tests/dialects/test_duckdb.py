"""Golden SQL for DuckDB: what indb writes for each small IR in ``tests.dialects.cases``."""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is DECIMAL in DuckDB: constants are cast to DOUBLE
    validate(C.LINEAR, write={'duckdb': '(CAST(2.5 AS DOUBLE) * x0) + (CAST(-0.5 AS DOUBLE) * x1) + CAST(1.25 AS DOUBLE)'}, rows=C.ROWS_2)


def test_impute():
    # NaN is greater than every number in DuckDB, as in PostgreSQL
    validate(C.IMPUTE, write={'duckdb': "CASE WHEN NOT (x0 < CAST('NaN' AS DOUBLE)) IS TRUE THEN CAST(3.0 AS DOUBLE) ELSE x0 END"}, rows=C.ROWS_2)


def test_divide():
    # DuckDB's DOUBLE division is IEEE: x / 0 is +-inf or NaN, no guard
    validate(C.DIVIDE, write={'duckdb': 'x0 / x1'}, rows=C.ROWS_2)


def test_tree():
    # DuckDB orders NaN above numbers: x1 < 'NaN' sends NaN to the missing side
    validate(C.TREE, write={'duckdb': "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 AND x1<'NaN' THEN 30.0 ELSE 20.0::DOUBLE END END"}, rows=C.ROWS_2)


def test_guarded_tree_splits_compare_once():
    # the rows run: a NaN or NULL in either input gives NULL, present ones the tree's leaf
    validate(C.GUARDED_TREE, write={'duckdb': "CASE WHEN ((NOT (x0 < CAST('NaN' AS DOUBLE)) IS TRUE) OR (NOT (x1 < CAST('NaN' AS DOUBLE)) IS TRUE)) THEN CAST(NULL AS DOUBLE) ELSE CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 THEN 30.0 ELSE 20.0::DOUBLE END END END"}, rows=C.ROWS_2)


def test_argmax():
    # the label is NULL when a score is missing (NULL or NaN)
    validate(C.ARGMAX, write={'duckdb': "CASE WHEN NOT (((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) < CAST('NaN' AS DOUBLE)) IS TRUE OR NOT (x1 < CAST('NaN' AS DOUBLE)) IS TRUE THEN CAST(NULL AS TEXT) WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) >= x1 THEN 'no' ELSE 'yes' END"}, rows=C.ROWS_2)


def test_exp():
    # DuckDB's exp gives inf on overflow
    validate(C.EXP, write={'duckdb': 'EXP(x0)'}, rows=C.ROWS_2)


def test_log():
    # DuckDB's ln(0) is -inf
    validate(C.LOG, write={'duckdb': 'LN(x1)'}, rows=C.ROWS_2)


def test_pow():
    # DuckDB's pow of a negative base with exponent 0.5 is NaN
    validate(C.POW, write={'duckdb': 'POWER(x1, CAST(0.5 AS DOUBLE))'}, rows=C.ROWS_2)


def test_quoted():
    # select is reserved, Order Total is mixed case with a space: both quoted
    validate(C.QUOTED, write={'duckdb': '"select" + "Order Total"'})
