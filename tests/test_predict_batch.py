"""indb.predict_batch: the set-based SQL entry point (a relation in; key and outputs out).

Both engines, one module-scoped catalog each: the answers equal the model's own (and
the row path's, NULL and NaN rows included), in a read-only transaction, over a table,
a view, a partitioned table and a materialised view, in chunks small enough that the
PL/Python engine's pipeline carries answers from one chunk to the next.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from tests.db import _autocommit, _database
from tests.gov import deploy, make_source, train_gb, train_text

N = 600


@pytest.fixture(scope="module", params=["sql", "plpython"])
def batch(request, pg_server, pg_migrated_template):
    """A catalog with a numeric classifier ``gb``, a text-label pipeline ``txt`` and a
    scaler ``sc`` (transform only) on one engine; ``src`` (N rows) and ``texts``."""
    from sklearn.preprocessing import StandardScaler

    engine = request.param
    with _database(pg_server, f"batch_{engine}", template=pg_migrated_template) as dsn, _autocommit(dsn) as conn:
        X = make_source(conn, n=N)
        # rows the model must answer as the row path does: a NULL, a NaN, an infinity
        conn.execute("INSERT INTO src VALUES (-1, NULL, 0.5, 0.5), (-2, 'NaN', 0.5, 0.5), (-3, 'Infinity', -1, 2)")
        gb, txt = train_gb(), train_text()
        deploy(dsn, gb, "gb", engine=engine, for_tables=["src"])
        deploy(dsn, txt, "txt", engine=engine)
        deploy(dsn, StandardScaler().fit(X), "sc", engine=engine)
        conn.execute("CREATE TABLE texts (id text PRIMARY KEY, a float8, b float8, c text)")
        frame_rows = [(f"k{i}", float(X[i, 0]), float(X[i, 1]), ["red", "green", "blue", "violet"][i % 4]) for i in range(200)]
        with conn.cursor().copy("COPY texts FROM STDIN") as cp:
            for row in frame_rows:
                cp.write_row(row)
        conn.execute("INSERT INTO texts VALUES ('null', 0.1, 0.2, NULL)")
        conn.execute("ANALYZE texts")
        conn.execute("SET indb.batch_chunk_blocks = 1")  # several chunks: the pipeline carries answers over
        yield engine, dsn, conn, X, gb, txt


def _batch(conn, query: str, *params) -> dict:
    return {r[0]: r[1:] for r in conn.execute(query, params).fetchall()}


def test_equals_the_model_in_a_read_only_transaction_and_joins_by_key(batch):
    engine, dsn, conn, X, gb, _ = batch
    with psycopg.connect(dsn) as ro:
        ro.execute("SET TRANSACTION READ ONLY")
        ro.execute("SET indb.batch_chunk_blocks = 1")
        rows = ro.execute(
            "SELECT s.id, p.prediction, p.probabilities, p.label FROM src AS s"
            " JOIN indb.predict_batch('gb', 'src', key => 'id', proba => true) AS p ON p.row_key = s.id::text"
            " WHERE s.id >= 0 ORDER BY s.id").fetchall()
        assert ro.execute("SHOW transaction_read_only").fetchone()[0] == "on"
    assert [r[0] for r in rows] == list(range(N))
    np.testing.assert_allclose([r[1] for r in rows], gb.predict(X), rtol=1e-9)
    np.testing.assert_allclose(np.array([r[2] for r in rows]), gb.predict_proba(X), rtol=1e-9, atol=1e-12)
    assert all(r[3] is None for r in rows)  # numeric labels: the prediction carries them


@pytest.mark.parametrize("shape", ["view", "partitioned", "matview"])
def test_every_relation_kind_gives_the_row_paths_answers(batch, shape):
    """NULL, NaN and infinite features included: the batch equals indb.predict on each row."""
    engine, dsn, conn, X, gb, _ = batch
    name = f"src_{shape}"
    if shape == "view":
        conn.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM src WHERE id % 2 = 0 OR id < 0")
    elif shape == "matview":
        conn.execute(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} AS SELECT * FROM src")
    elif shape == "partitioned":
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (LIKE src) PARTITION BY RANGE (id)")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name}_lo PARTITION OF {name} FOR VALUES FROM (MINVALUE) TO (300)")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name}_hi PARTITION OF {name} FOR VALUES FROM (300) TO (MAXVALUE)")
        conn.execute(f"TRUNCATE {name}; INSERT INTO {name} SELECT * FROM src")
    query = f"SELECT row_key::integer, prediction, probabilities FROM indb.predict_batch('gb', '{name}', 'id', true)"
    got = _batch(conn, query)
    # a SQL version through the engine's batch path (what a large SQL version takes)
    conn.execute("SET indb.batch_engine = on")
    try:
        through_engine = _batch(conn, query)
    finally:
        conn.execute("RESET indb.batch_engine")
    ids = [r[0] for r in conn.execute(f"SELECT id FROM {name} ORDER BY id").fetchall()]
    # the model's own answers; the row path's for the rows with NULL, NaN or infinite features
    want = {i: (float(p), list(q)) for i, p, q in zip(range(N), gb.predict(X), gb.predict_proba(X))}
    want.update(_batch(conn, "SELECT id, indb.predict('gb', s), indb.predict_proba('gb', s) FROM src AS s WHERE id < 0"))
    for answers in (got, through_engine):
        assert sorted(answers) == ids and len(ids) > N // 2
        for k in ids:
            (p, proba), (gp, gproba) = want[k], answers[k]
            assert (gp is None) == (p is None) and (gproba is None) == (proba is None), k
            if p is not None:
                np.testing.assert_allclose(gp, p, rtol=1e-9)
                np.testing.assert_allclose(np.array(gproba, dtype=float), np.array(proba, dtype=float), rtol=1e-9, atol=1e-12)
        assert answers[-1][0] is None  # a NULL feature: NULL, as the row path


def test_text_labels_and_features_in_the_label_column(batch):
    engine, dsn, conn, X, _, txt = batch
    import pandas as pd

    rows = conn.execute("SELECT t.id, t.a, t.b, t.c, p.label, p.prediction FROM texts AS t"
                        " JOIN indb.predict_batch('txt', 'texts', key => 'id') AS p ON p.row_key = t.id"
                        " WHERE t.c IS NOT NULL ORDER BY t.id").fetchall()
    assert len(rows) == 200 and all(r[5] is None for r in rows)
    frame = pd.DataFrame([r[1:4] for r in rows], columns=["a", "b", "c"])
    assert [r[4] for r in rows] == list(txt.predict(frame))
    got = conn.execute("SELECT label FROM indb.predict_batch('txt', 'texts', 'id') WHERE row_key = 'null'").fetchone()[0]
    assert got == conn.execute("SELECT indb.predict_label('txt', t) FROM texts AS t WHERE id = 'null'").fetchone()[0]


def test_without_a_key_an_aggregate_over_the_batch(batch):
    engine, dsn, conn, X, gb, _ = batch
    total, keys = conn.execute("SELECT sum(prediction) FILTER (WHERE prediction IS NOT NULL AND prediction <> 'NaN'),"
                               " count(row_key) FROM indb.predict_batch('gb', 'src')").fetchone()
    want = conn.execute("SELECT sum(p) FILTER (WHERE p IS NOT NULL AND p <> 'NaN') FROM"
                        " (SELECT indb.predict('gb', s) AS p FROM src AS s) AS x").fetchone()[0]
    assert keys == 0
    np.testing.assert_allclose(total, want, rtol=1e-9)


@pytest.mark.parametrize("call, message", [
    ("indb.predict_batch('gb', 'src', key => 'nope')", "table public.src has no column nope for model 'gb@1'"),
    ("indb.predict_batch('sc', 'src')", "has no prediction (it only transforms)"),
    ("indb.predict_batch('nobody', 'src')", "unknown model 'nobody'"),
    ("indb.predict_batch('gb', 'no_such_table')", 'relation "no_such_table" does not exist'),
])
def test_mistakes_are_one_line_errors_naming_the_fix(batch, call, message):
    _, _, conn, *_ = batch
    with pytest.raises(psycopg.Error) as e:
        conn.execute(f"SELECT count(*) FROM {call}")
    primary = e.value.diag.message_primary
    assert message in primary and "\n" not in primary


def test_scorers_of_the_model_may_call_it_and_nobody_else(batch, pg_role):
    from indb.governance.grants import grant

    engine, dsn, conn, X, gb, _ = batch
    assert not conn.execute("SELECT has_function_privilege('public', 'indb.predict_batch(text, regclass, text, boolean)',"
                            " 'EXECUTE')").fetchone()[0]
    assert conn.execute("SELECT proconfig FROM pg_proc WHERE oid = 'indb.predict_batch(text, regclass, text, boolean)'::regprocedure"
                        ).fetchone()[0] == ["search_path=pg_catalog, indb, pg_temp", "jit=off"]
    carol, dave = pg_role(dsn), pg_role(dsn)
    grant("scorer", carol.name, model="gb", dsn=dsn)
    grant("scorer", dave.name, model="txt", dsn=dsn)
    conn.execute(f"GRANT SELECT ON src TO {carol.name}, {dave.name}")
    with psycopg.connect(carol.dsn, autocommit=True) as c:
        n = c.execute("SELECT count(prediction) FROM indb.predict_batch('gb', 'public.src', 'id')").fetchone()[0]
        assert n >= N
    with psycopg.connect(dave.dsn, autocommit=True) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("SELECT count(prediction) FROM indb.predict_batch('gb', 'public.src', 'id')").fetchone()


def test_leaving_the_fast_path_is_said_once_per_statement(batch):
    """A bound table's own rows: no NOTICE. The same rows wrapped in a subquery (the
    generic path): one NOTICE naming indb.predict_batch, not one per row; again for the
    next statement."""
    _, _, conn, *_ = batch
    notices: list[str] = []

    def heard(d) -> None:
        notices.append(d.message_primary)

    conn.add_notice_handler(heard)
    try:
        conn.execute("SELECT count(indb.predict('gb', s)) FROM src AS s WHERE id < 40").fetchone()
        assert notices == []
        wrapped = "SELECT count(indb.predict('gb', s)) FROM (SELECT * FROM src WHERE id < 40) AS s"
        conn.execute(wrapped).fetchone()
        conn.execute(wrapped).fetchone()
    finally:
        conn.remove_notice_handler(heard)
    assert len(notices) == 2, notices
    assert "generic path" in notices[0] and "indb.predict_batch('gb', 'schema.table', key => 'id')" in notices[0]
    # it names the cast that keeps such a subquery on the fast path: gb is bound to src
    assert "indb.predict('gb', s::public.src)" in notices[0], notices[0]


@pytest.mark.parametrize("entry", ["predict", "predict_proba", "predict_label"])
def test_a_wrapped_row_cast_to_its_bound_table_keeps_the_fast_path(batch, entry):
    """The cast the NOTICE names: a subquery's or a CTE's row of the bound table, cast to
    the table's type, takes the bound overload (the version's own function in the plan,
    no NOTICE) and answers what the table's own rows answer, NULL and NaN rows included;
    an unbound model's NOTICE names no cast."""
    _, _, conn, *_ = batch
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    bound = conn.execute(f"SELECT s.id, indb.{entry}('gb', s) FROM src AS s ORDER BY s.id").fetchall()
    for query in (f"SELECT s.id, indb.{entry}('gb', s::src) FROM (SELECT * FROM src WHERE id > -100) AS s ORDER BY s.id",
                  f"WITH w AS (SELECT * FROM src) SELECT w.id, indb.{entry}('gb', w::src) FROM w ORDER BY w.id"):
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN (VERBOSE) " + query).fetchall())
        assert f"indb.{entry}(" not in plan, plan  # the generic path: indb.predict('gb'::text, ROW(...))
        got = conn.execute(query).fetchall()
        assert len(got) == len(bound) and [r[0] for r in got] == [r[0] for r in bound]
        for (_, a), (_, b) in zip(got, bound):
            np.testing.assert_array_equal(np.asarray(a, dtype=object if entry == "predict_label" else float),
                                          np.asarray(b, dtype=object if entry == "predict_label" else float))
    assert notices == []
    conn.execute("SELECT count(indb.predict_label('txt', s)) FROM (SELECT * FROM texts) AS s").fetchone()
    assert len(notices) == 1 and "s::" not in notices[0] and "indb bind txt TABLE" in notices[0], notices


def test_the_generic_path_remembers_its_resolution_only_where_indb_writes_it(batch, pg_role):
    """The generic path keeps the statement it resolved for a reference in the backend's
    memory for the rest of a statement, and executes it on every row: a scorer who could
    write that memory could have a SECURITY DEFINER caller execute their SQL. Only its
    owner may call indb.engine_generic_memo; indb.generic_call (which writes it) says only
    what the registry says."""
    from indb.governance.grants import grant

    _, dsn, conn, *_ = batch
    carol = pg_role(dsn)
    grant("scorer", carol.name, model="gb", dsn=dsn)
    conn.execute(f"GRANT SELECT ON src TO {carol.name}")
    with psycopg.connect(carol.dsn, autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT indb.engine_generic_memo(ARRAY['gb', 'predict', 'double precision',"
                      " statement_timestamp()::text, transaction_timestamp()::text], 'SELECT 42::float8')")
        assert c.execute("SELECT indb.generic_call('gb', 'predict', 'double precision')").fetchone()[0] == \
            'SELECT indb."gb@1/predict"($1)'
        n, total = c.execute("SELECT count(*), sum(indb.predict('gb', s)) FROM (SELECT * FROM src WHERE id >= 0) AS s").fetchone()
        assert n == N and total == conn.execute("SELECT sum(indb.predict('gb', s)) FROM src AS s WHERE id >= 0").fetchone()[0]


def test_a_promotion_is_seen_by_the_generic_path_in_the_next_statement(batch):
    """The resolution is kept for one statement only: a transaction that scores, sees a
    promotion committed meanwhile (READ COMMITTED) and scores again answers the new
    champion, and a retired version is refused in the next statement."""
    from sklearn.preprocessing import StandardScaler

    from indb.registry.versions import promote, retire

    engine, dsn, conn, X, *_ = batch
    deploy(dsn, StandardScaler().fit(X), "flip", engine=engine)
    deploy(dsn, StandardScaler().fit(X * 4 + 1), "flip", engine=engine)
    query = "SELECT indb.transform('flip', s) FROM (SELECT * FROM src WHERE id = 0) AS s"
    with psycopg.connect(dsn) as tx:
        second = tx.execute(query).fetchone()[0]
        promote("flip", 1, dsn=dsn)
        first = tx.execute(query).fetchone()[0]
        retire("flip", 2, dsn=dsn)
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="version 2 of model 'flip' is retired"):
            tx.execute("SELECT indb.transform('flip@2', s) FROM (SELECT * FROM src WHERE id = 0) AS s").fetchone()
    np.testing.assert_allclose(first, StandardScaler().fit(X).transform(X[:1])[0], rtol=1e-12)
    np.testing.assert_allclose(second, StandardScaler().fit(X * 4 + 1).transform(X[:1])[0], rtol=1e-12)


@pytest.mark.parametrize("shape", ["FROM src AS s", "FROM (SELECT * FROM src WHERE id >= 0) AS s"])
def test_a_revoked_scorer_is_refused_in_the_next_statement_of_the_same_session(batch, pg_role, shape):
    """The engine's admission and the generic path's resolution are remembered per
    statement in the backend: a scorer whose grant is revoked while their session stays
    open is refused from their next statement on, through a bound table's rows and a
    wrapped row, on both engines."""
    from indb.governance.grants import grant, revoke

    _, dsn, conn, *_ = batch
    erin = pg_role(dsn)
    grant("scorer", erin.name, model="gb", dsn=dsn)
    conn.execute(f"GRANT SELECT ON src TO {erin.name}")
    query = f"SELECT count(indb.predict('gb', s)) {shape}"
    with psycopg.connect(erin.dsn, autocommit=True) as c:
        assert c.execute(query).fetchone()[0] >= N
        assert c.execute(query).fetchone()[0] >= N  # admitted again by the next statement
        revoke("scorer", erin.name, model="gb", dsn=dsn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(query).fetchone()
