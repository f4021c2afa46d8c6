"""Golden SQL for BigQuery: what indb writes for each small IR in ``tests.dialects.cases``,
each justified by the engine's documented semantics (the references are in
``indb.sqlgen.dialects.bigquery``). The engine cannot run here (see that module): these
strings are checked against those semantics by reading, not by execution.
"""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # constants are cast to FLOAT64 (a bare 2.5 would be FLOAT64 already; the cast is harmless and uniform)
    validate(C.LINEAR, write={'bigquery': '(CAST(2.5 AS FLOAT64) * x0) + (CAST(-0.5 AS FLOAT64) * x1) + CAST(1.25 AS FLOAT64)'})


def test_impute():
    # comparisons are IEEE-754's (data-types.md, Floating point semantics): IS_NAN finds NaN (mathematical_functions.md)
    validate(C.IMPUTE, write={'bigquery': 'CASE WHEN (x0 IS NULL OR IS_NAN(x0)) THEN CAST(3.0 AS FLOAT64) ELSE x0 END'})


def test_divide():
    # 1.0 / 0.0 is a 'Divide by zero' error, and a finite input with a non-finite result an overflow error (data-types.md): the guard returns the IEEE value first; CASE evaluates only the branch chosen (conditional_expressions.md). 0 / 0 and NaN / 0 give NULL (missing)
    validate(C.DIVIDE, write={'bigquery': "CASE WHEN x1 = CAST(0.0 AS FLOAT64) THEN CASE WHEN x0 > CAST(0.0 AS FLOAT64) THEN CAST('Infinity' AS FLOAT64) WHEN x0 < CAST(0.0 AS FLOAT64) THEN CAST('-Infinity' AS FLOAT64) ELSE CAST(NULL AS FLOAT64) END WHEN ((ABS(x1) < CAST(1.0 AS FLOAT64)) AND (ABS(x0) > (CAST(1.7976931348623141e+308 AS FLOAT64) * (-GREATEST(-ABS(x1), -CAST(1.0 AS FLOAT64)))))) THEN CASE WHEN SIGN(x0) = SIGN(x1) THEN CAST('Infinity' AS FLOAT64) ELSE CAST('-Infinity' AS FLOAT64) END WHEN ((ABS(x1) > CAST(1.0 AS FLOAT64)) AND (ABS(x0) < (CAST(1e-323 AS FLOAT64) * GREATEST(ABS(x1), CAST(1.0 AS FLOAT64))))) THEN x0 * CAST(0.0 AS FLOAT64) ELSE x0 / x1 END"})


def test_tree():
    # NaN compares false with every number (data-types.md), so NaN takes the split's missing branch with no NaN test
    validate(C.TREE, write={'bigquery': 'CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 THEN 30.0 ELSE CAST(20.0 AS FLOAT64) END END'})


def test_categories():
    # NaN IN (1, 2) is false, so (.. IN ..) IS FALSE holds for NaN: NOT IS_NAN keeps NaN left
    validate(C.CATEGORIES, write={'bigquery': 'CASE WHEN (x0 IN (1.0,2.0)) IS FALSE AND NOT IS_NAN(x0) THEN 2.0 ELSE CAST(1.0 AS FLOAT64) END'})


def test_argmax():
    # a NULL or NaN score gives a NULL label: IS NULL OR IS_NAN
    validate(C.ARGMAX, write={'bigquery': "CASE WHEN (((CAST(0.5 AS FLOAT64) * x0) + CAST(1.0 AS FLOAT64)) IS NULL OR IS_NAN((CAST(0.5 AS FLOAT64) * x0) + CAST(1.0 AS FLOAT64))) OR (x1 IS NULL OR IS_NAN(x1)) THEN CAST(NULL AS STRING) WHEN ((CAST(0.5 AS FLOAT64) * x0) + CAST(1.0 AS FLOAT64)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_max():
    # GREATEST returns NULL if any argument is NULL, else NaN if any is NaN (mathematical_functions.md): the IR's max
    validate(C.MAX, write={'bigquery': 'GREATEST(x0, x1)'})


def test_exp():
    # EXP 'generates an error if the result overflows' (mathematical_functions.md): above 709.78 the guard gives Infinity; NaN fails both tests and stays NaN
    validate(C.EXP, write={'bigquery': "CASE WHEN x0 <= CAST(709.782712893384 AS FLOAT64) THEN EXP(GREATEST(x0, CAST(-745.1332191019411 AS FLOAT64))) WHEN x0 > CAST(709.782712893384 AS FLOAT64) THEN CAST('Infinity' AS FLOAT64) ELSE x0 END"})


def test_expit():
    # exp's argument is clamped with GREATEST (strict: NULL in, NULL out) so it cannot overflow
    validate(C.EXPIT, write={'bigquery': 'CAST(1.0 AS FLOAT64) / (CAST(1.0 AS FLOAT64) + EXP(GREATEST(-GREATEST(x0, CAST(-709.782712893384 AS FLOAT64)), CAST(-745.1332191019411 AS FLOAT64))))'})


def test_softmax():
    # GREATEST for max; the division is guarded because BigQuery raises on x / 0
    validate(C.SOFTMAX, write={'bigquery': "CASE WHEN (EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))) = CAST(0.0 AS FLOAT64) THEN CASE WHEN EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) > CAST(0.0 AS FLOAT64) THEN CAST('Infinity' AS FLOAT64) WHEN EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) < CAST(0.0 AS FLOAT64) THEN CAST('-Infinity' AS FLOAT64) ELSE CAST(NULL AS FLOAT64) END WHEN ((ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))) < CAST(1.0 AS FLOAT64)) AND (ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))) > (CAST(1.7976931348623141e+308 AS FLOAT64) * (-GREATEST(-ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))), -CAST(1.0 AS FLOAT64)))))) THEN CASE WHEN SIGN(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))) = SIGN(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))) THEN CAST('Infinity' AS FLOAT64) ELSE CAST('-Infinity' AS FLOAT64) END WHEN ((ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))) > CAST(1.0 AS FLOAT64)) AND (ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))) < (CAST(1e-323 AS FLOAT64) * GREATEST(ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))), CAST(1.0 AS FLOAT64))))) THEN EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) * CAST(0.0 AS FLOAT64) ELSE EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) / (EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS FLOAT64)))) END"})


def test_log():
    # LN 'generates an error if X is less than or equal to zero': ln(0) is written -Infinity, ln(x < 0) NULL
    validate(C.LOG, write={'bigquery': "CASE WHEN x1 = CAST(0.0 AS FLOAT64) THEN CAST('-Infinity' AS FLOAT64) WHEN x1 < CAST(0.0 AS FLOAT64) THEN CAST(NULL AS FLOAT64) ELSE LN(x1) END"})


def test_pow():
    # pinned as emitted: POW of a negative base and a non-integer exponent raises on BigQuery (as on PostgreSQL); not guarded
    validate(C.POW, write={'bigquery': 'POWER(x1, CAST(0.5 AS FLOAT64))'})


def test_inf_const():
    # CAST('Infinity' AS FLOAT64) is a documented cast ('[+,-]infinity', conversion_functions.md)
    validate(C.INF_CONST, write={'bigquery': "CASE WHEN x0 <= CAST('Infinity' AS FLOAT64) THEN CAST(1.0 AS FLOAT64) ELSE CAST(0.0 AS FLOAT64) END"})


def test_quoted():
    # backticks quote in BigQuery
    validate(C.QUOTED, write={'bigquery': '`select` + `Order Total`'})
