"""Golden SQL for Snowflake: what indb writes for each small IR in ``tests.dialects.cases``,
each justified by the engine's documented semantics (the references are in
``indb.sqlgen.dialects.snowflake``). The engine cannot run here (see that module): these
strings are checked against those semantics by reading, not by execution.
"""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is NUMBER (fixed point) in Snowflake: constants are cast to DOUBLE
    validate(C.LINEAR, write={'snowflake': '(CAST(2.5 AS DOUBLE) * x0) + (CAST(-0.5 AS DOUBLE) * x1) + CAST(1.25 AS DOUBLE)'})


def test_impute():
    # NaN is greater than every FLOAT including inf (Snowflake numeric types, Special values): x < NaN holds exactly for present numbers; sqlglot drops IS TRUE for Snowflake, so a CASE says IS NOT TRUE
    validate(C.IMPUTE, write={'snowflake': "CASE WHEN CASE WHEN x0 < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 THEN CAST(3.0 AS DOUBLE) ELSE x0 END"})


def test_divide():
    # division by zero is an error in Snowflake: the guard gives the IEEE value; NULLIF(x, NaN) keeps NaN > 0 from being true (NaN is greatest)
    validate(C.DIVIDE, write={'snowflake': "CASE WHEN x1 = CAST(0.0 AS DOUBLE) THEN CASE WHEN NULLIF(x0, CAST('NaN' AS DOUBLE)) > CAST(0.0 AS DOUBLE) THEN CAST('Infinity' AS DOUBLE) WHEN x0 < CAST(0.0 AS DOUBLE) THEN CAST('-Infinity' AS DOUBLE) ELSE CAST(NULL AS DOUBLE) END WHEN ((ABS(x1) < CAST(1.0 AS DOUBLE)) AND (NULLIF(ABS(x0), CAST('NaN' AS DOUBLE)) > NULLIF(CAST(1.7976931348623141e+308 AS DOUBLE) * (-GREATEST(-ABS(x1), -CAST(1.0 AS DOUBLE))), CAST('NaN' AS DOUBLE)))) THEN CASE WHEN NULLIF(SIGN(x0), CAST('NaN' AS DOUBLE)) = NULLIF(SIGN(x1), CAST('NaN' AS DOUBLE)) THEN CAST('Infinity' AS DOUBLE) ELSE CAST('-Infinity' AS DOUBLE) END WHEN ((NULLIF(ABS(x1), CAST('NaN' AS DOUBLE)) > CAST(1.0 AS DOUBLE)) AND (ABS(x0) < (CAST(1e-323 AS DOUBLE) * GREATEST(ABS(x1), CAST(1.0 AS DOUBLE))))) THEN x0 * CAST(0.0 AS DOUBLE) ELSE x0 / x1 END"})


def test_tree():
    # NaN > -1.5 is true (NaN is greatest): the missing-left split adds x < NaN, with NaN typed (a bare 'NaN' beside a FLOAT would be a string)
    validate(C.TREE, write={'snowflake': "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 AND x1<CAST('NaN' AS DOUBLE) THEN 30.0 ELSE CAST(20.0 AS DOUBLE) END END"})


def test_categories():
    # x < NaN keeps NaN (and NULL) on the missing branch
    validate(C.CATEGORIES, write={'snowflake': "CASE WHEN x0 NOT IN (1.0,2.0) AND x0<CAST('NaN' AS DOUBLE) THEN 2.0 ELSE CAST(1.0 AS DOUBLE) END"})


def test_argmax():
    # a NULL or NaN score gives a NULL label, as a CASE (IS TRUE does not survive sqlglot)
    validate(C.ARGMAX, write={'snowflake': "CASE WHEN CASE WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 OR CASE WHEN x1 < CAST('NaN' AS DOUBLE) THEN 0 ELSE 1 END = 1 THEN CAST(NULL AS VARCHAR) WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_max():
    # GREATEST returns NULL if any argument is NULL (GREATEST_IGNORE_NULLS is the one that skips them) and NaN for a NaN (greatest): the IR's max
    validate(C.MAX, write={'snowflake': 'GREATEST(x0, x1)'})


def test_exp():
    # whether EXP raises on overflow is not documented: guarded as on PostgreSQL (the IEEE value either way)
    validate(C.EXP, write={'snowflake': "CASE WHEN x0 <= CAST(709.782712893384 AS DOUBLE) THEN EXP(GREATEST(x0, CAST(-745.1332191019411 AS DOUBLE))) WHEN NULLIF(x0, CAST('NaN' AS DOUBLE)) > CAST(709.782712893384 AS DOUBLE) THEN CAST('Infinity' AS DOUBLE) ELSE x0 END"})


def test_expit():
    # exp's argument is clamped with GREATEST so it cannot overflow
    validate(C.EXPIT, write={'snowflake': 'CAST(1.0 AS DOUBLE) / (CAST(1.0 AS DOUBLE) + EXP(GREATEST(-GREATEST(x0, CAST(-709.782712893384 AS DOUBLE)), CAST(-745.1332191019411 AS DOUBLE))))'})


def test_softmax():
    # GREATEST for max; the division is guarded (Snowflake raises on x / 0)
    validate(C.SOFTMAX, write={'snowflake': "CASE WHEN (EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))) = CAST(0.0 AS DOUBLE) THEN CASE WHEN NULLIF(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))), CAST('NaN' AS DOUBLE)) > CAST(0.0 AS DOUBLE) THEN CAST('Infinity' AS DOUBLE) WHEN EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) < CAST(0.0 AS DOUBLE) THEN CAST('-Infinity' AS DOUBLE) ELSE CAST(NULL AS DOUBLE) END WHEN ((ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))) < CAST(1.0 AS DOUBLE)) AND (NULLIF(ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))), CAST('NaN' AS DOUBLE)) > NULLIF(CAST(1.7976931348623141e+308 AS DOUBLE) * (-GREATEST(-ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))), -CAST(1.0 AS DOUBLE))), CAST('NaN' AS DOUBLE)))) THEN CASE WHEN NULLIF(SIGN(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))), CAST('NaN' AS DOUBLE)) = NULLIF(SIGN(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))), CAST('NaN' AS DOUBLE)) THEN CAST('Infinity' AS DOUBLE) ELSE CAST('-Infinity' AS DOUBLE) END WHEN ((NULLIF(ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))), CAST('NaN' AS DOUBLE)) > CAST(1.0 AS DOUBLE)) AND (ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))) < (CAST(1e-323 AS DOUBLE) * GREATEST(ABS(EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))), CAST(1.0 AS DOUBLE))))) THEN EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) * CAST(0.0 AS DOUBLE) ELSE EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) / (EXP(GREATEST(x0 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE))) + EXP(GREATEST(x1 - GREATEST(x0, x1), CAST(-700.0 AS DOUBLE)))) END"})


def test_log():
    # whether LN(0) raises is not documented: written -Infinity, ln(x < 0) NULL, before LN runs
    validate(C.LOG, write={'snowflake': "CASE WHEN x1 = CAST(0.0 AS DOUBLE) THEN CAST('-Infinity' AS DOUBLE) WHEN x1 < CAST(0.0 AS DOUBLE) THEN CAST(NULL AS DOUBLE) ELSE LN(x1) END"})


def test_pow():
    # pinned as emitted (not guarded)
    validate(C.POW, write={'snowflake': 'POWER(x1, CAST(0.5 AS DOUBLE))'})


def test_inf_const():
    # 'Infinity' cast to DOUBLE
    validate(C.INF_CONST, write={'snowflake': "CASE WHEN x0 <= CAST('Infinity' AS DOUBLE) THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END"})


def test_quoted():
    # select is reserved, Order Total is mixed case with a space: both quoted
    validate(C.QUOTED, write={'snowflake': '"select" + "Order Total"'})
