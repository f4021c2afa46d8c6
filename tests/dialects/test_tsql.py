"""Golden SQL for T-SQL (SQL Server): what indb writes for each small IR in ``tests.dialects.cases``."""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is NUMERIC in T-SQL: constants are cast to FLOAT
    validate(C.LINEAR, write={'tsql': '(CAST(2.5 AS FLOAT) * x0) + (CAST(-0.5 AS FLOAT) * x1) + CAST(1.25 AS FLOAT)'})


def test_impute():
    # T-SQL's FLOAT has no NaN, so missing is IS NULL
    validate(C.IMPUTE, write={'tsql': 'CASE WHEN x0 IS NULL THEN CAST(3.0 AS FLOAT) ELSE x0 END'})


def test_divide():
    # pinned, not IEEE: T-SQL raises on x / 0 (no guard is emitted for it yet)
    validate(C.DIVIDE, write={'tsql': 'CAST(x0 AS FLOAT) / x1'})


def test_tree():
    # no NaN in T-SQL; trees are WHEN chains (CASE nests only 10 levels deep)
    validate(C.TREE, write={'tsql': 'CASE WHEN x0<=0.5 THEN 0.0 WHEN x1>-1.5 THEN 30.0 ELSE CAST(20.0 AS FLOAT) END'})


def test_argmax():
    # no boolean values in T-SQL: the NULL test is IS NULL
    validate(C.ARGMAX, write={'tsql': "CASE WHEN ((CAST(0.5 AS FLOAT) * x0) + CAST(1.0 AS FLOAT)) IS NULL OR x1 IS NULL THEN CAST(NULL AS VARCHAR(MAX)) WHEN ((CAST(0.5 AS FLOAT) * x0) + CAST(1.0 AS FLOAT)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_exp():
    # pinned: T-SQL raises on exp overflow (no guard is emitted for it yet)
    validate(C.EXP, write={'tsql': 'EXP(x0)'})


def test_log():
    # T-SQL's LOG is the natural logarithm; pinned: it raises on LOG(0)
    validate(C.LOG, write={'tsql': 'LOG(x1)'})


def test_pow():
    # pinned as emitted
    validate(C.POW, write={'tsql': 'POWER(x1, CAST(0.5 AS FLOAT))'})


def test_quoted():
    # brackets quote in T-SQL
    validate(C.QUOTED, write={'tsql': '[select] + [Order Total]'})
