"""Golden SQL for MySQL 8 (``CAST(x AS DOUBLE)`` needs 8.0.17): what indb writes for each
small IR in ``tests.dialects.cases``. No PyPI package runs MySQL's SQL in process, so these
strings and the flags in ``indb/sqlgen/dialects/mysql.py`` are the proof."""

from __future__ import annotations

import pytest
from sqlglot.dialects.dialect import Dialects

from indb.errors import CompileError
from indb.sqlgen.dialects import REFUSED, TARGETS, target
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is DECIMAL in MySQL: constants are cast to DOUBLE
    validate(C.LINEAR, write={"mysql": "(CAST(2.5 AS DOUBLE) * x0) + (CAST(-0.5 AS DOUBLE) * x1) + CAST(1.25 AS DOUBLE)"})


def test_impute():
    # DOUBLE has no NaN, so missing is IS NULL
    validate(C.IMPUTE, write={"mysql": "CASE WHEN x0 IS NULL THEN CAST(3.0 AS DOUBLE) ELSE x0 END"})


@pytest.mark.parametrize("e", [C.DIVIDE, C.EXP, C.LOG], ids=["divide", "exp", "log"])
def test_needs_infinity_is_refused(e):
    # x / 0, exp overflow and LN(0) are +-Infinity in the IR; DOUBLE cannot hold it
    with pytest.raises(CompileError, match="needs an infinite constant, which mysql's float type cannot hold"):
        validate(e, write={"mysql": ""})


def test_tree():
    validate(C.TREE, write={"mysql": "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 THEN 30.0 ELSE CAST(20.0 AS DOUBLE) END END"})


def test_argmax():
    validate(C.ARGMAX, write={"mysql": "CASE WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) IS NULL OR x1 IS NULL THEN CAST(NULL AS CHAR) WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_quoted():
    # backticks quote in MySQL
    validate(C.QUOTED, write={"mysql": "`select` + `Order Total`"})


def test_expit_clamps_with_greatest():
    # exp(-z) would raise "DOUBLE value is out of range": its argument is clamped with
    # GREATEST, which is NULL for a NULL argument like the IR's strict max
    from indb import ir

    validate(ir.func("expit", C.X0), write={"mysql": "CAST(1.0 AS DOUBLE) / (CAST(1.0 AS DOUBLE) + EXP(GREATEST(-GREATEST(x0, CAST(-709.782712893384 AS DOUBLE)), CAST(-745.1332191019411 AS DOUBLE))))"})


def test_on_missing_error_is_refused():
    # MySQL raises only from statements (SIGNAL): an expression cannot raise
    from indb import ir

    e = ir.Case(((ir.IsMissing(C.X0), ir.Fail("x0 is missing", ir.FLOAT)),), C.X0)
    validate(e, write={"mysql": CompileError})


@pytest.mark.parametrize("name", sorted(d.value for d in Dialects if d.value))
def test_every_sqlglot_dialect_is_offered_or_refused_with_a_reason(name):
    if name in TARGETS:
        assert target(name).name == name
        return
    with pytest.raises(CompileError, match=rf"SQL dialect '{name}' is not offered: {REFUSED[name][:20]}.*; offered: .*mysql"):
        target(name)
