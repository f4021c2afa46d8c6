"""``indb compile --table --keep``: kept columns follow the feature names' identifier rules.

A mixed-case kept column (``"ID"``) must be written quoted, or PostgreSQL and SQLite's
case folding would look for ``id``; checked by running the SQL on all three engines.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline

from indb.errors import CompileError
from indb.sqlgen.compile import compile_sql
from tests.sql_engines import run

ROWS = [(7, "a", 1.0, 2.0), (8, "b", np.nan, 0.5), (9, "c", 3.0, -1.0)]


def _model():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.5]])
    return make_pipeline(StandardScaler(), LinearRegression()).fit(X, [1.0, 2.0, 4.0, 5.0])


def _create(engine: str, conn) -> None:
    num = {"postgres": "double precision", "duckdb": "DOUBLE", "sqlite": "REAL"}[engine]
    ddl = f'CREATE TABLE t ("ID" bigint, "Customer Name" text, x0 {num}, x1 {num})'
    if engine == "postgres":
        conn.execute(ddl)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s, %s, %s, %s)", [(i, n, None if a != a else a, b) for i, n, a, b in ROWS])
    else:
        conn.execute(ddl)
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(i, n, None if a != a else a, b) for i, n, a, b in ROWS])


@pytest.mark.parametrize("engine", ["postgres", "duckdb", "sqlite"])
def test_mixed_case_and_spaced_kept_columns_are_quoted_and_come_back(engine, request):
    conn = request.getfixturevalue({"postgres": "pg_conn", "duckdb": "duckdb_conn", "sqlite": "sqlite_conn"}[engine])
    _create(engine, conn)
    model = _model()
    query = compile_sql(model, engine, "predict", table="t", keep=["ID", "Customer Name"])
    assert '"ID"' in query and '"Customer Name"' in query
    got = sorted(run(conn, engine, query))
    want = model.predict(np.array([[r[2], r[3]] for r in ROWS[::2]]))
    assert [r[:2] for r in got] == [(7, "a"), (8, "b"), (9, "c")]
    assert got[1][2] is None  # a NULL input: NULL out
    assert [got[0][2], got[2][2]] == pytest.approx(list(want), rel=1e-12)


def test_lower_case_kept_columns_stay_unquoted():
    assert '"id"' not in compile_sql(_model(), "postgres", "predict", table="t", keep=["id"])


def test_a_kept_column_named_like_an_output_is_still_refused():
    with pytest.raises(CompileError, match="collides with a kept column"):
        compile_sql(_model(), "postgres", "predict", table="t", keep=["prediction"])
