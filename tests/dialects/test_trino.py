"""Golden SQL for Trino: what indb writes for each small IR in ``tests.dialects.cases``,
each justified by the engine's documented semantics (the references are in
``indb.sqlgen.dialects.trino``). The engine cannot run here (see that module): these
strings are checked against those semantics by reading, not by execution.
"""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is DECIMAL in Trino (language/types.md): constants are cast to DOUBLE
    validate(C.LINEAR, write={'trino': '(CAST(2.5 AS DOUBLE) * x0) + (CAST(-0.5 AS DOUBLE) * x1) + CAST(1.25 AS DOUBLE)'})


def test_impute():
    # IEEE comparisons (trinodb/trino#21922): no comparison finds NaN, is_nan does (functions/math.md); NULL by IS NULL
    validate(C.IMPUTE, write={'trino': 'CASE WHEN (x0 IS NULL OR IS_NAN(x0)) THEN CAST(3.0 AS DOUBLE) ELSE x0 END'})


def test_divide():
    # DOUBLE is IEEE 754 (language/types.md): x / 0 is +-Infinity, 0 / 0 NaN, no error: no guard
    validate(C.DIVIDE, write={'trino': 'CAST(x0 AS DOUBLE) / x1'})


def test_tree():
    # NaN <= 0.5 and NaN > -1.5 are false under IEEE comparisons, so NaN takes the split's missing branch with no NaN test
    validate(C.TREE, write={'trino': 'CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 THEN 30.0 ELSE CAST(20.0 AS DOUBLE) END END'})


def test_categories():
    # NaN NOT IN (1, 2) is true under IEEE comparisons: NOT is_nan sends NaN (and NULL: NULL NOT IN is NULL) left
    validate(C.CATEGORIES, write={'trino': 'CASE WHEN x0 NOT IN (1.0,2.0) AND NOT IS_NAN(x0) THEN 2.0 ELSE CAST(1.0 AS DOUBLE) END'})


def test_argmax():
    # sqlglot drops IS TRUE for Trino; the missing test is explicit: a NULL or NaN score gives a NULL label, not a real one
    validate(C.ARGMAX, write={'trino': "CASE WHEN (((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) IS NULL OR IS_NAN((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE))) OR (x1 IS NULL OR IS_NAN(x1)) THEN CAST(NULL AS VARCHAR) WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_max():
    # greatest() raises on NaN (Presto NaN behaviour; issue 16): a CASE; a NULL or NaN x1 is returned as is, a NaN x0 fails x0 < x1 and is the ELSE
    validate(C.MAX, write={'trino': 'CASE WHEN (x1 IS NULL OR IS_NAN(x1)) THEN x1 WHEN x0 < x1 THEN x1 ELSE x0 END'})


def test_exp():
    # Trino's exp is IEEE (language/types.md): overflow gives Infinity, no guard
    validate(C.EXP, write={'trino': 'EXP(x0)'})


def test_expit():
    # exp(-x0) overflows to Infinity for x0 < -709.78, and 1 / (1 + Infinity) is 0: the IEEE answer, unguarded
    validate(C.EXPIT, write={'trino': 'CAST(1.0 AS DOUBLE) / (CAST(1.0 AS DOUBLE) + EXP(-x0))'})


def test_softmax():
    # max as a CASE (no greatest on NaN), IEEE exp and division: no guards
    validate(C.SOFTMAX, write={'trino': 'CAST(EXP(CASE WHEN (x0 - CASE WHEN (x1 IS NULL OR IS_NAN(x1)) THEN x1 WHEN x0 < x1 THEN x1 ELSE x0 END) < CAST(-700.0 AS DOUBLE) THEN CAST(-700.0 AS DOUBLE) ELSE x0 - CASE WHEN (x1 IS NULL OR IS_NAN(x1)) THEN x1 WHEN x0 < x1 THEN x1 ELSE x0 END END) AS DOUBLE) / (EXP(CASE WHEN (x0 - CASE WHEN (x1 IS NULL OR IS_NAN(x1)) THEN x1 WHEN x0 < x1 THEN x1 ELSE x0 END) < CAST(-700.0 AS DOUBLE) THEN CAST(-700.0 AS DOUBLE) ELSE x0 - CASE WHEN (x1 IS NULL OR IS_NAN(x1)) THEN x1 WHEN x0 < x1 THEN x1 ELSE x0 END END) + EXP(CASE WHEN (x1 - CASE WHEN (x1 IS NULL OR IS_NAN(x1)) THEN x1 WHEN x0 < x1 THEN x1 ELSE x0 END) < CAST(-700.0 AS DOUBLE) THEN CAST(-700.0 AS DOUBLE) ELSE x1 - CASE WHEN (x1 IS NULL OR IS_NAN(x1)) THEN x1 WHEN x0 < x1 THEN x1 ELSE x0 END END))'})


def test_log():
    # ln(0) is -Infinity and ln(x < 0) NaN under IEEE 754 (language/types.md)
    validate(C.LOG, write={'trino': 'LN(x1)'})


def test_pow():
    # power(x < 0, 0.5) is NaN under IEEE 754
    validate(C.POW, write={'trino': 'POWER(x1, CAST(0.5 AS DOUBLE))'})


def test_inf_const():
    # infinity() is Trino's documented constant (functions/math.md), not a cast from text
    validate(C.INF_CONST, write={'trino': 'CASE WHEN x0 <= INFINITY() THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END'})


def test_quoted():
    # select is reserved, Order Total is mixed case with a space: both quoted
    validate(C.QUOTED, write={'trino': '"select" + "Order Total"'})
