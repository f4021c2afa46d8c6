"""Golden SQL for Spark SQL: what indb writes for each small IR in ``tests.dialects.cases``.

Every expectation also runs on a local Spark (``tests.spark_engine``), once with ANSI
mode on (Spark 4's default) and once off, and must equal the IR evaluator on ``ROWS_2``
(thresholds, NULL, NaN, +-inf, 0, 1e300, exp overflow) in both.
"""

from __future__ import annotations

import pytest

from indb import ir
from tests.dialects import as_model, cases as C, validate

NAN_CAST = "CAST('NaN' AS DOUBLE)"
INF = C.INF


def test_linear():
    # a bare 2.5 is DECIMAL in Spark: constants are cast to DOUBLE
    validate(C.LINEAR, write={'spark': '(CAST(2.5 AS DOUBLE) * x0) + (CAST(-0.5 AS DOUBLE) * x1) + CAST(1.25 AS DOUBLE)'}, rows=C.ROWS_2)


def test_impute():
    # Spark treats NaN as greater than any number and equal to itself, as PostgreSQL
    validate(C.IMPUTE, write={'spark': f"CASE WHEN NOT (x0 < {NAN_CAST}) IS TRUE THEN CAST(3.0 AS DOUBLE) ELSE x0 END"}, rows=C.ROWS_2)


def test_divide():
    # x / 0 is NULL with ANSI off and DIVIDE_BY_ZERO with ANSI on, DOUBLE included: the CASE
    # gives y = 0 its IEEE value, and the division reads NULLIF(y, 0) so that it cannot raise
    # whatever order Spark evaluates the CASE in (0 / 0 and NaN / 0 are missing)
    validate(C.DIVIDE, write={'spark': (
        "CASE WHEN x1 = CAST(0.0 AS DOUBLE) THEN CASE WHEN NULLIF(x0, CAST('NaN' AS DOUBLE)) > CAST(0.0 AS DOUBLE) THEN CAST('Infinity' AS DOUBLE) "
        "WHEN x0 < CAST(0.0 AS DOUBLE) THEN CAST('-Infinity' AS DOUBLE) ELSE CAST(NULL AS DOUBLE) END ELSE x0 / NULLIF(x1, CAST(0.0 AS DOUBLE)) END"
    )}, rows=C.ROWS_2)


def test_tree():
    # NaN is the largest value in Spark: x1 < 'NaN' sends NaN to the missing side
    validate(C.TREE, write={'spark': "CASE WHEN x0<=0.5 THEN 0.0 ELSE CASE WHEN x1>-1.5 AND x1<'NaN' THEN 30.0 ELSE CAST(20.0 AS DOUBLE) END END"}, rows=C.ROWS_2)


def test_argmax():
    # Spark has IS TRUE: NULL or NaN scores give a NULL label
    validate(C.ARGMAX, write={'spark': (
        f"CASE WHEN NOT (((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) < {NAN_CAST}) IS TRUE OR NOT (x1 < {NAN_CAST}) IS TRUE "
        "THEN CAST(NULL AS STRING) WHEN ((CAST(0.5 AS DOUBLE) * x0) + CAST(1.0 AS DOUBLE)) >= x1 THEN 'no' ELSE 'yes' END"
    )}, rows=C.ROWS_2)


def test_exp():
    # Spark's exp is java.lang.Math.exp: inf on overflow, 0 on underflow, no error in ANSI mode
    validate(C.EXP, write={'spark': 'EXP(x0)'}, rows=C.ROWS_2)


def test_log():
    # Spark's ln(x) is NULL for x <= 0: ln(0) = -inf is chosen first; ln of a negative
    # stays NULL, the IR's NaN (both are missing)
    validate(C.LOG, write={'spark': "CASE WHEN x1 = CAST(0.0 AS DOUBLE) THEN CAST('-Infinity' AS DOUBLE) ELSE LN(x1) END"}, rows=C.ROWS_2)


def test_pow():
    # Spark's power is java.lang.Math.pow: NaN for a negative base and exponent 0.5, as numpy
    validate(C.POW, write={'spark': 'POWER(x1, CAST(0.5 AS DOUBLE))'}, rows=C.ROWS_2)


def test_pow_variable_exponent():
    # Math.pow(x, y) agrees with numpy for a variable exponent on these rows (0 ** -1 = inf,
    # (-2) ** 0.5 = NaN, inf ** 0 = 1)
    validate(ir.func("pow", C.X0, C.X1), write={'spark': 'POWER(x0, x1)'}, rows=[r for r in C.ROWS_2 if r[0] != 1.0])


def test_quoted():
    # backticks quote in Spark: reserved words (select, order, from) and mixed case
    validate(C.QUOTED, write={'spark': '`select` + `Order Total`'})
    validate(ir.add(ir.Feature("order"), ir.Feature("from"), C.X0), write={'spark': '`order` + `from` + x0'})


def test_fail_raises_with_the_message():
    # on_missing="error": Spark's raise_error, typed as the branch it replaces; rows
    # without a missing x0 score, a NULL or NaN row stops the query with the message
    fail = ir.Case(((ir.IsMissing(C.X0), ir.Fail("x0 is missing", ir.FLOAT)),), C.X0)
    sql = f"CASE WHEN NOT (x0 < {NAN_CAST}) IS TRUE THEN CAST(RAISE_ERROR('indb: model model: x0 is missing') AS DOUBLE) ELSE x0 END"
    validate(fail, write={'spark': sql}, rows=[(1.0,), (-2.5,), (INF,)])
    from tests import spark_engine  # noqa: PLC0415

    spark = spark_engine.session()
    spark_engine.load_spark(spark, "t_fail", as_model(fail), [(0, 1.0), (1, None)])
    with pytest.raises(Exception, match="indb: model model: x0 is missing"):
        spark_engine.run_spark(spark, f"SELECT {sql} FROM t_fail", ansi=True)
