"""Every SQL entry point, on both engines, under a forced parallel plan.

The suite's small tables never get a parallel plan on their own, and the PL/Python
engine once failed in parallel workers ("cannot start subtransactions during a parallel
operation"), in the workers and in a leader taking part in the plan. Here the costs that
keep the planner serial are zeroed, and the leader takes no part (the scoring functions
run in the workers) or, as by default, its part (it runs them in parallel mode too);
EXPLAIN ANALYZE must show a Gather with workers launched, and the answers must equal the
model's own.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from tests.db import _autocommit, _database
from tests.gov import deploy, make_source, train_gb

N = 3000
FORCE_PARALLEL = (
    "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;"
    " SET max_parallel_workers_per_gather = 2"
)


@pytest.fixture(scope="module", params=[("sql", "off"), ("plpython", "off"), ("plpython", "on")],
                ids=["sql", "plpython", "plpython-leader-too"])
def scored(request, pg_server, pg_migrated_template):
    """A database with a classifier and a transformer deployed on one engine, bound to
    ``src``; ``other`` has the same columns and is bound to nothing. The leader takes
    part in the parallel plans or not (the SQL engine never runs PL/Python)."""
    engine, leader = request.param
    with _database(pg_server, f"parallel_{engine}", template=pg_migrated_template) as dsn, _autocommit(dsn) as conn:
        X = make_source(conn, n=N)
        conn.execute("CREATE TABLE other AS SELECT * FROM src")
        conn.execute("ANALYZE other")
        gb, scaler = train_gb(), StandardScaler().fit(np.random.default_rng(7).normal(size=(50, 3)) * 3 + 1)
        deploy(dsn, gb, "gb", engine=engine, for_tables=["src"])
        deploy(dsn, scaler, "sc", engine=engine, for_tables=["src"])
        conn.execute(FORCE_PARALLEL)
        conn.execute("SELECT set_config('parallel_leader_participation', %s, false)", [leader])
        yield engine, conn, X, gb, scaler


def _gathers(plan: dict) -> list[dict]:
    found = [plan] if plan["Node Type"] in ("Gather", "Gather Merge") else []
    for child in plan.get("Plans", []):
        found += _gathers(child)
    return found


def _run_in_workers(conn, query: str, order: str = " ORDER BY id") -> list[tuple]:
    """The rows of ``query`` (in ``order``), after checking that its plan runs in parallel workers."""
    plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query).fetchone()[0]
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    gathers = _gathers(plan)
    assert gathers, f"no Gather in the plan of {query}"
    assert all(g["Workers Planned"] >= 1 and g["Workers Launched"] >= 1 for g in gathers), gathers
    return conn.execute(query + order).fetchall()


# entry point -> (SQL call with {row} for the row expression, the model, what the model says)
CALLS = {
    "predict": ("indb.predict('gb', {row})", lambda gb, sc, X: gb.predict(X).astype(float)),
    "predict_proba": ("indb.predict_proba('gb', {row})", lambda gb, sc, X: gb.predict_proba(X)),
    "predict_label": ("indb.predict_label('gb', {row})", lambda gb, sc, X: [str(v) for v in gb.predict(X)]),
    "decision_function": ("indb.decision_function('gb', {row})", lambda gb, sc, X: gb.decision_function(X).reshape(len(X), -1)),
    "transform": ("indb.transform('sc', {row})", lambda gb, sc, X: sc.transform(X)),
    "predict_array": ("indb.predict_array('gb', ARRAY[s.a, s.b, s.c])", lambda gb, sc, X: gb.predict(X).astype(float)),
}
# the row shapes, (FROM clause, the row): a bound table's row (the inlined overload), the
# same table wrapped in a subquery (a record: the generic path), a table bound to nothing
# (the generic path), and a subquery or a CTE of the bound table whose row is cast back to
# the table's type (the bound overload again)
SHAPES = {
    "bound": ("FROM src AS s", "s"),
    "subquery": ("FROM (SELECT * FROM src WHERE id >= 0) AS s", "s"),
    "unbound": ("FROM other AS s", "s"),
    "subquery-cast": ("FROM (SELECT * FROM src WHERE id >= 0) AS s", "s::src"),
    "cte-cast": ("FROM (WITH w AS (SELECT * FROM src) SELECT * FROM w) AS s", "s::src"),
}


def _same(got: list, want) -> None:
    if isinstance(want, list):
        assert got == want
    else:
        np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=1e-9, atol=1e-12)


# predict_array takes an array, not a row: one shape is enough for it
@pytest.mark.parametrize("entry, shape", [(entry, shape) for entry in sorted(CALLS) for shape in sorted(SHAPES)
                                          if entry != "predict_array" or shape == "bound"])
def test_every_entry_point_runs_in_parallel_workers_and_equals_the_model(scored, entry, shape):
    engine, conn, X, gb, scaler = scored
    call, model_says = CALLS[entry]
    source, row = SHAPES[shape]
    rows = _run_in_workers(conn, f"SELECT s.id, {call.format(row=row)} AS out {source}")
    assert [r[0] for r in rows] == list(range(N))
    _same([r[1] for r in rows], model_says(gb, scaler, X))


def test_an_aggregate_over_the_bound_row_runs_in_workers(scored):
    """The issue's statement: sum(indb.predict(...)) over a bound table, a partial
    aggregate in every worker."""
    engine, conn, X, gb, _ = scored
    rows = _run_in_workers(conn, "SELECT sum(indb.predict('gb', s)) FROM src AS s", order="")
    np.testing.assert_allclose(rows[0][0], gb.predict(X).sum(), rtol=1e-9)


def test_predict_logged_writes_so_it_stays_in_the_leader_and_still_answers(scored):
    """predict_logged writes the log: it is PARALLEL UNSAFE, so the planner keeps the
    query serial even with parallel plans forced, and the answers are the model's."""
    engine, conn, X, gb, _ = scored
    query = "SELECT s.id, indb.predict_logged('gb', s) FROM src AS s WHERE s.id < 200"
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + query).fetchone()[0]
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    assert not _gathers(plan)
    rows = conn.execute(query + " ORDER BY s.id").fetchall()
    _same([r[1] for r in rows], gb.predict(X[:200]).astype(float))


def test_predict_batch_under_forced_parallel_plans(scored):
    """The set-based entry point is PARALLEL UNSAFE (the engine checks for a cancel with
    a query, which even the leader of a parallel query may not run: this test failed
    with "cannot start subtransactions during a parallel operation" when it was
    PARALLEL RESTRICTED): under forced parallel plans the calling query is serial, and
    each row's answers are the model's, on both engines."""
    engine, conn, X, gb, _ = scored
    query = ("SELECT s.id, p.prediction, p.probabilities FROM src AS s"
             " JOIN indb.predict_batch('gb', 'src', key => 'id', proba => true) AS p ON p.row_key = s.id::text")
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + query).fetchone()[0]
    assert not _gathers((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    rows = conn.execute(query + " ORDER BY s.id").fetchall()
    assert [r[0] for r in rows] == list(range(N))
    _same([r[1] for r in rows], gb.predict(X).astype(float))
    _same([r[2] for r in rows], gb.predict_proba(X))
