"""``on_missing="error"``: a row with a missing input raises for every model and output.

Pure arithmetic models (LinearRegression) used to return NULL there; and a
LogisticRegression raised for its label but returned NULL probabilities. Both now
raise on PostgreSQL and DuckDB (the engines that can raise from SQL) for every output,
while rows without a missing value score normally; SQLite is refused at compile time.
``indb compile --table``'s PostgreSQL script raises indb's own message (SQLSTATE 22004)
through a temporary function it creates, not a failed cast.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from indb.errors import CompileError
import psycopg

from indb.sqlgen.compile import compile_sql, runnable_script
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


def _script(est, output: str, table: str, dialect: str = "postgres") -> str:
    return runnable_script(compile_sql(est, dialect, output, table=table, keep=["id"], on_missing="error", fail_function=True), dialect)


@pytest.mark.parametrize("name, output", [("linear", "predict"), ("logistic", "predict"), ("logistic", "proba")])
def test_postgres_script_raises_indbs_own_message(name, output, pg_conn):
    est, _ = _models()[name]
    _load("postgres", pg_conn, "good", [(1, 0.5, 1.0)])
    _load("postgres", pg_conn, "t", [(1, 0.5, 1.0), (2, None, 1.0)])
    script = _script(est, output, "t")
    assert "CREATE OR REPLACE FUNCTION pg_temp.indb_fail(message text)" in script and "REVOKE ALL" in script
    pg_conn.execute(_script(est, output, "good"))  # rows without a missing value score; the function is dropped after
    assert pg_conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'indb_fail'").fetchone()[0] == 0
    with pytest.raises(psycopg.errors.NullValueNotAllowed) as info:
        pg_conn.execute(script)
    assert str(info.value).startswith("indb: model ") and "NULL or NaN" in str(info.value)
    assert "invalid input syntax" not in str(info.value)


def test_postgres_script_in_a_read_only_transaction_is_refused_as_documented(pg_conn):
    est, _ = _models()["linear"]
    _load("postgres", pg_conn, "t", [(1, 0.5, 1.0)])
    pg_conn.execute("SET default_transaction_read_only = on")
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="CREATE FUNCTION in a read-only transaction"):
            pg_conn.execute(_script(est, "predict", "t"))
    finally:
        pg_conn.execute("ROLLBACK")
        pg_conn.execute("SET default_transaction_read_only = off")


def test_script_needs_no_function_when_nothing_can_raise_or_elsewhere():
    """on_missing='null' adds nothing to the script; DuckDB keeps its error() either way."""
    est, _ = _models()["linear"]
    assert "indb_fail" not in runnable_script(compile_sql(est, "postgres", table="t", fail_function=True))
    duck = compile_sql(est, "duckdb", table="t", on_missing="error", fail_function=True)
    assert duck == compile_sql(est, "duckdb", table="t", on_missing="error") and "ERROR(" in duck.upper()
