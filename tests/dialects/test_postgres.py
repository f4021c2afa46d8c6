"""Golden SQL for PostgreSQL: what indb writes for each small IR in ``tests.dialects.cases``."""

from __future__ import annotations

from indb.errors import CompileError  # noqa: F401
from tests.dialects import cases as C, validate


def test_linear():
    # a bare 2.5 is numeric in PostgreSQL (slow, exact): constants are cast to double precision
    validate(C.LINEAR, write={'postgres': '(CAST(2.5 AS DOUBLE PRECISION) * x0) + (CAST(-0.5 AS DOUBLE PRECISION) * x1) + CAST(1.25 AS DOUBLE PRECISION)'})


def test_impute():
    # NaN sorts above every number in PostgreSQL, so x < 'NaN' is true exactly for present values
    validate(C.IMPUTE, write={'postgres': "CASE WHEN NOT (x0 < CAST('NaN' AS DOUBLE PRECISION)) IS TRUE THEN CAST(3.0 AS DOUBLE PRECISION) ELSE x0 END"})


def test_divide():
    # float8 division by zero and overflow raise in PostgreSQL: the IEEE answer is chosen before dividing
    validate(C.DIVIDE, write={'postgres': "CASE WHEN x1 = 0.0 THEN CASE WHEN NULLIF(x0, CAST('NaN' AS DOUBLE PRECISION)) > 0.0 THEN CAST('Infinity' AS DOUBLE PRECISION) WHEN x0 < 0.0 THEN CAST('-Infinity' AS DOUBLE PRECISION) ELSE CAST(NULL AS DOUBLE PRECISION) END WHEN ((ABS(x1) < 1.0) AND (NULLIF(ABS(x0), CAST('NaN' AS DOUBLE PRECISION)) > NULLIF(CAST(1.7976931348623141e+308 AS DOUBLE PRECISION) * (-FLOAT8LARGER(-ABS(x1), -CAST(1.0 AS DOUBLE PRECISION))), CAST('NaN' AS DOUBLE PRECISION)))) THEN CASE WHEN NULLIF(SIGN(x0), CAST('NaN' AS DOUBLE PRECISION)) = NULLIF(SIGN(x1), CAST('NaN' AS DOUBLE PRECISION)) THEN CAST('Infinity' AS DOUBLE PRECISION) ELSE CAST('-Infinity' AS DOUBLE PRECISION) END WHEN ((NULLIF(ABS(x1), CAST('NaN' AS DOUBLE PRECISION)) > 1.0) AND (ABS(x0) < (CAST(1e-323 AS DOUBLE PRECISION) * FLOAT8LARGER(ABS(x1), CAST(1.0 AS DOUBLE PRECISION))))) THEN x0 * CAST(0.0 AS DOUBLE PRECISION) ELSE CAST(x0 AS DOUBLE PRECISION) / x1 END"})


def test_tree():
    # x1 < 'NaN' keeps NaN on the missing side; a bare literal beside a float8 column is read as float8
    validate(C.TREE, write={'postgres': "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 AND x1<'NaN' THEN 30.0 ELSE 20.0::float8 END END"})


def test_guarded_tree_splits_compare_once():
    # after WHEN x0 or x1 is missing THEN NULL, the split on x1 is one comparison (no x1 < 'NaN')
    validate(C.GUARDED_TREE, write={'postgres': "CASE WHEN ((NOT (x0 < CAST('NaN' AS DOUBLE PRECISION)) IS TRUE) OR (NOT (x1 < CAST('NaN' AS DOUBLE PRECISION)) IS TRUE)) THEN CAST(NULL AS DOUBLE PRECISION) ELSE CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 THEN 30.0 ELSE 20.0::float8 END END END"})


def test_argmax():
    # the label is NULL when a score is missing (NULL or NaN), else the first largest wins ties
    validate(C.ARGMAX, write={'postgres': "CASE WHEN NOT (((CAST(0.5 AS DOUBLE PRECISION) * x0) + CAST(1.0 AS DOUBLE PRECISION)) < CAST('NaN' AS DOUBLE PRECISION)) IS TRUE OR NOT (x1 < CAST('NaN' AS DOUBLE PRECISION)) IS TRUE THEN CAST(NULL AS TEXT) WHEN ((CAST(0.5 AS DOUBLE PRECISION) * x0) + CAST(1.0 AS DOUBLE PRECISION)) >= x1 THEN 'no' ELSE 'yes' END"})


def test_exp():
    # exp raises on overflow and underflow in PostgreSQL: clamp the argument, +Infinity above 709.78
    validate(C.EXP, write={'postgres': "CASE WHEN x0 <= 709.782712893384 THEN EXP(FLOAT8LARGER(x0, CAST(-745.1332191019411 AS DOUBLE PRECISION))) WHEN NULLIF(x0, CAST('NaN' AS DOUBLE PRECISION)) > 709.782712893384 THEN CAST('Infinity' AS DOUBLE PRECISION) ELSE x0 END"})


def test_log():
    # ln(0) and ln(x < 0) raise in PostgreSQL: -Infinity and NULL instead
    validate(C.LOG, write={'postgres': "CASE WHEN x1 = 0.0 THEN CAST('-Infinity' AS DOUBLE PRECISION) WHEN x1 < 0.0 THEN CAST(NULL AS DOUBLE PRECISION) ELSE LN(x1) END"})


def test_pow():
    # power(x, 0.5) of x < 0 raises in PostgreSQL
    validate(C.POW, write={'postgres': 'POWER(x1, CAST(0.5 AS DOUBLE PRECISION))'})


def test_quoted():
    # select is reserved, Order Total is mixed case with a space: both quoted
    validate(C.QUOTED, write={'postgres': '"select" + "Order Total"'})
