"""End to end on Spark: every zoo case, ANSI mode on and off, equals the model's own answer.

As ``tests/test_parity.py`` does for PostgreSQL, DuckDB and SQLite: each case's rows (with
their edge rows: thresholds and one ulp either side, NULL and NaN, unseen categories, 0,
+-1e300, +-Infinity) become a temporary view on a local[2] Spark, every output kind of
the case is compiled for the ``spark`` dialect, and each query runs twice: with ``spark.sql.ansi.enabled`` true (Spark 4's
default, where a division by zero raises) and false. Labels must be exact, numbers within
the case's tolerance.

The suite runs a fixed sample of the zoo on Spark (every 8th case, and every meta and
naive Bayes case: the soft voting, stacking and ``proba`` shapes whose guarded divisions
once raised under ANSI), to stay within the suite's time; ``INDB_SPARK_ZOO=all`` runs
every case (about 225 cases x 2 modes: many minutes).
"""

from __future__ import annotations

import os
import re

import pytest

from indb.ir.evaluate import columns_from_matrix
from indb.sqlgen.compile import lower_model
from tests.spark_engine import load_spark, run_spark
from tests.sql_engines import mismatches, table_rows
from tests.zoo import all_cases

ALL = [c for c in all_cases() if "large" not in c.tags]
SAMPLED_FAMILIES = ("tests.zoo.meta", "tests.zoo.naive_bayes")
CASES = ALL if os.environ.get("INDB_SPARK_ZOO") == "all" else [
    c for i, c in enumerate(ALL) if i % 8 == 0 or getattr(c.make, "__module__", "") in SAMPLED_FAMILIES]


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
        for ansi in (True, False):
            result = sorted(run_spark(spark, query, ansi), key=lambda r: r[0])
            assert [r[0] for r in result] == [r[0] for r in rows]
            for j, (name, _) in enumerate(compiled.columns):
                bad = mismatches(ref.columns[j], [r[1 + j] for r in result], case.rtol, case.atol)
                detail = [(k, rows[k][1:], w, g) for k, w, g in bad[:3]]
                assert not bad, f"{case.id} on Spark (ANSI {'on' if ansi else 'off'}): {name} differs on {len(bad)} of {len(rows)} rows, e.g. {detail}"
