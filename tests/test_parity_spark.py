"""End to end on Spark: every zoo case, ANSI mode on and off, equals the model's own answer.

As ``tests/test_parity.py`` does for PostgreSQL, DuckDB and SQLite: each case's rows (with
their edge rows: thresholds and one ulp either side, NULL and NaN, unseen categories, 0,
+-1e300, +-Infinity) become a temporary view on a local[2] Spark, every output kind of
the case is compiled for the ``spark`` dialect, and each query runs twice:

- ANSI on (``spark.sql.ansi.enabled``, Spark 4's default: a division by zero, an overflow
  or a bad cast raises), with Spark's default whole-stage code generation;
- ANSI off (a division by zero is NULL), with code generation off: Spark's interpreted
  evaluation, the path it falls back to when the code generated for a large ensemble grows
  past the JVM's 64 KB method limit, so both of Spark's execution paths are proven.

Labels must be exact, numbers within the case's tolerance. Every case runs on the xdist
worker that fits it for the other parity tests (tests/conftest.py), so no model is fitted
twice.
"""

from __future__ import annotations

import re

import pytest

from indb.ir.evaluate import columns_from_matrix
from indb.sqlgen.compile import lower_model
from tests.spark_engine import load_spark, run_spark
from tests.sql_engines import mismatches, table_rows
from tests.zoo import all_cases

CASES = [c for c in all_cases() if "large" not in c.tags]
#: (ANSI mode, whole-stage code generation)
MODES = ((True, True), (False, False))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_spark_matches_model(case, spark):
    est, X = case.fitted()
    model = case.compiled()
    table = "t_" + re.sub(r"[^a-z0-9_]", "_", case.id.lower())[:50]
    rows = table_rows(model, columns_from_matrix(model, X))
    load_spark(spark, table, model, rows)
    for kind in case.outputs:
        compiled = lower_model(model, dialect="spark", output=kind, share=True)
        # no ORDER BY: Spark would sample and shuffle for it; the rows are sorted here
        query = compiled.select(table, keep=["id"]).sql("spark")
        ref = case.expected(kind)
        for ansi, codegen in MODES:
            result = sorted(run_spark(spark, query, ansi, codegen=codegen), key=lambda r: r[0])
            assert [r[0] for r in result] == [r[0] for r in rows]
            for j, (name, _) in enumerate(compiled.columns):
                bad = mismatches(ref.columns[j], [r[1 + j] for r in result], case.rtol, case.atol)
                detail = [(k, rows[k][1:], w, g) for k, w, g in bad[:3]]
                mode = f"ANSI {'on' if ansi else 'off'}, code generation {'on' if codegen else 'off'}"
                assert not bad, f"{case.id} on Spark ({mode}): {name} differs on {len(bad)} of {len(rows)} rows, e.g. {detail}"
