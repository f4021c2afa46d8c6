"""End to end: every zoo model × PostgreSQL, DuckDB and SQLite equals the model's own answer.

For each case the rows (with their edge rows: thresholds and one ulp either side,
NULL and NaN, unseen categories, 0, +-1e300, +-Infinity) are loaded into the engine,
the model is compiled to a ``SELECT id, outputs... FROM table`` for that dialect, and
every output column is compared with scikit-learn's own ``predict`` /
``predict_proba`` / ``decision_function`` / ``transform``: labels exactly, numbers
within the case's tolerance (1e-9 relative, 1e-12 absolute near 0). Rows the model
itself refuses are compared with indb's documented rule (the IR evaluator), and the
evaluator is checked against the model on every row the model accepts.
"""

from __future__ import annotations

import re

import pytest

from indb.sqlgen.compile import lower_model
from indb.ir.evaluate import columns_from_matrix
from tests.sql_engines import LOADERS, mismatches, run, table_rows
from tests.reference import evaluator_output
from tests.zoo import all_cases

ENGINES = ("postgres", "duckdb", "sqlite")
CASES = [c for c in all_cases() if "large" not in c.tags]


def _table(case_id: str) -> str:
    return "t_" + re.sub(r"[^a-z0-9_]", "_", case_id.lower())[:50]


@pytest.fixture(scope="module")
def pg_module_conn(pg_server):
    """One database for the module; each case loads its own table."""
    name = pg_server.new_name("parity", prefix="par")
    pg_server.create_database(name)
    with pg_server.connect(name) as conn:
        yield conn
    pg_server.drop_database(name)


@pytest.fixture(scope="module")
def engines(request):
    """One connection per engine for the module (each case uses its own table)."""
    import duckdb  # noqa: PLC0415
    import sqlite3  # noqa: PLC0415

    conns = {
        "postgres": request.getfixturevalue("pg_module_conn"),
        "duckdb": duckdb.connect(),
        "sqlite": sqlite3.connect(":memory:"),
    }
    yield conns
    conns["duckdb"].close()
    conns["sqlite"].close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_evaluator_matches_model(case):
    """The IR oracle agrees with scikit-learn on every row scikit-learn accepts."""
    est, X = case.fitted()
    model = case.compiled()
    for kind in case.outputs:
        ref = case.expected(kind)
        ev = evaluator_output(model, X, kind)
        for j, (want, got) in enumerate(zip(ref.columns, ev)):
            bad = mismatches(want, got, case.rtol, case.atol)
            assert not bad, f"{case.id} {kind}[{j}]: evaluator differs from the model on rows {bad[:5]}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sql_matches_model(case, engine, engines):
    est, X = case.fitted()
    model = case.compiled()
    conn = engines[engine]
    table = _table(case.id)
    rows = table_rows(model, columns_from_matrix(model, X))
    LOADERS[engine](conn, table, model, rows)
    for kind in case.outputs:
        compiled = lower_model(model, dialect=engine, output=kind, share=True)
        query = compiled.select(table, keep=["id"]).order_by("id").sql(engine)
        result = run(conn, engine, query)
        assert len(result) == len(rows)
        ref = case.expected(kind)
        for j, (name, _) in enumerate(compiled.columns):
            got = [r[1 + j] for r in result]
            bad = mismatches(ref.columns[j], got, case.rtol, case.atol)
            detail = [(i, rows[i][1:], w, g) for i, w, g in bad[:3]]
            assert not bad, f"{case.id} on {engine}: {name} differs on {len(bad)} of {len(rows)} rows, e.g. {detail}"
