"""``on_missing="error"``: a row with a missing input raises for every model and output.

Pure arithmetic models (LinearRegression) used to return NULL there; and a
LogisticRegression raised for its label but returned NULL probabilities. Both now
raise on PostgreSQL and DuckDB (the engines that can raise from SQL) for every output,
while rows without a missing value score normally; SQLite is refused at compile time.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from indb.errors import CompileError
from indb.sqlgen.compile import compile_sql
from tests.sql_engines import run

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.5], [0.5, 0.2], [2.5, 0.1]])
Y = np.array([1.0, 2.0, 4.0, 5.0, 1.5, 3.0])


def _models():
    return {
        "linear": (make_pipeline(StandardScaler(), LinearRegression()).fit(X, Y), ("predict",)),
        "poisson": (PoissonRegressor().fit(X, Y), ("predict",)),
        "logistic": (LogisticRegression().fit(X, Y > 2.5), ("predict", "proba", "decision")),
    }


def _load(engine: str, conn, table: str, rows) -> None:
    num = {"postgres": "double precision", "duckdb": "DOUBLE"}[engine]
    conn.execute(f"CREATE TABLE {table} (id bigint, x0 {num}, x1 {num})")
    ph = "%s" if engine == "postgres" else "?"
    for r in rows:
        conn.execute(f"INSERT INTO {table} VALUES ({ph}, {ph}, {ph})", list(r))


@pytest.mark.parametrize("engine", ["postgres", "duckdb"])
@pytest.mark.parametrize("name", ["linear", "poisson", "logistic"])
def test_every_output_raises_on_a_missing_input(engine, name, request):
    conn = request.getfixturevalue("pg_conn" if engine == "postgres" else "duckdb_conn")
    est, outputs = _models()[name]
    _load(engine, conn, "good", [(1, 0.5, 1.0)])
    _load(engine, conn, "t", [(1, 0.5, 1.0), (2, None, 1.0)])
    for output in outputs:
        ok = compile_sql(est, engine, output, table="good", keep=["id"], on_missing="error")
        assert len(run(conn, engine, ok)) == 1
        query = compile_sql(est, engine, output, table="t", keep=["id"], on_missing="error")
        with pytest.raises(Exception, match="indb: model") as info:
            run(conn, engine, query)
        assert "NULL or NaN" in str(info.value), f"{name} {output} on {engine}: {info.value}"
        if engine == "postgres":
            conn.rollback()


def test_sqlite_cannot_raise_and_says_so():
    est, _ = _models()["linear"]
    with pytest.raises(CompileError, match="cannot raise an error from SQL"):
        compile_sql(est, "sqlite", "predict", table="t", on_missing="error")
