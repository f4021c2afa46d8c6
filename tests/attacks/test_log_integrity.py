"""Issue 12, class 5: the log holds only what indb computed.

A per-model scorer owns the source table, so every name in it is theirs: columns named
like indb's internal ones must not make the logged batch path pair answers with the
wrong rows; a view whose options would read with indb's rights is refused; the target
recorded in the log is the table written.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from psycopg import sql

import indb
from tests.gov import connect, deploy, train_gb, train_lr

# every name indb's logged batch path gives its own columns, relations and parameters
INTERNAL = ["__indb_tid", "__indb_key", "__indb_logged", "__indb_features", "__indb_features_text",
            "__o1", "__o2", "__k1", "__k2", "tid", "tids", "i", "n", "nums", "texts", "r1", "r2", "k1", "t1", "u", "v", "j",
            "s", "l", "ctid_"]


@pytest.fixture(params=["sql", "plpython"])
def scorer(request, migrated_dsn, migrated_conn, pg_role):
    est = train_gb() if request.param == "plpython" else train_lr()
    deploy(migrated_dsn, est, "m", engine=request.param)
    bob = pg_role(migrated_dsn)
    indb.grant("scorer", bob.name, model="m", dsn=migrated_dsn)
    migrated_conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(bob.name)))
    return est, bob


def _logged(conn, call_id):
    return {k: p for k, p in conn.execute(
        "SELECT row_key, prediction FROM indb.prediction_log WHERE call_id = %s", [call_id]).fetchall()}


@pytest.mark.parametrize("mode", ["recompute", "stage"])
def test_columns_named_like_internal_ones_do_not_change_what_is_logged(scorer, migrated_conn, mode):
    est, bob = scorer
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 3))
    with connect(bob.dsn) as conn:
        decoys = sql.SQL(", ").join(sql.SQL("{} double precision").format(sql.Identifier(n)) for n in INTERNAL)
        conn.execute(sql.SQL("CREATE TABLE mine (id integer, a double precision, b double precision, c double precision, {})").format(decoys))
        with conn.cursor().copy(sql.SQL("COPY mine (id, a, b, c, {}) FROM STDIN").format(
                sql.SQL(", ").join(sql.Identifier(n) for n in INTERNAL))) as copy:
            for i, row in enumerate(X):
                # every decoy holds a plausible wrong answer / row number
                copy.write_row([i, *row, *[float((i * 7 + k) % 300) for k in range(len(INTERNAL))]])
        conn.execute("SELECT set_config('indb.score_mode', %s, false)", [mode])
        # the internal names as kept columns and as the key, too
        try:
            result = indb.score("m", "mine", "scored", key="id", keep=["id", "__indb_tid", "__o1", "tid"], conn=conn)
        except indb.IndbError as e:  # refusing a name is fine; a wrong log is not
            assert "__" in str(e) or "tid" in str(e), e
            return
        logged = _logged(migrated_conn, result.call_id)
        written = dict(conn.execute("SELECT id, prediction FROM scored").fetchall())
    want = est.predict(X)
    assert len(logged) == 300 and len(written) == 300
    for i in range(300):
        assert float(logged[str(i)]) == pytest.approx(float(want[i]), rel=1e-9)
        assert float(written[i]) == pytest.approx(float(want[i]), rel=1e-9)


@pytest.mark.parametrize("options", ["security_invoker = true", "security_barrier = true", "check_option = local"])
def test_a_view_as_source_is_refused_or_read_with_the_callers_rights(scorer, migrated_dsn, migrated_conn, options):
    _, bob = scorer
    # a table only indb's internal roles could read
    migrated_conn.execute("CREATE TABLE secret (id int, a float8, b float8, c float8)")
    migrated_conn.execute("INSERT INTO secret VALUES (1, 1, 2, 3)")
    migrated_conn.execute("GRANT SELECT ON secret TO indb_compute, indb_log_writer")
    with connect(bob.dsn) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM secret")
        conn.execute(sql.SQL("CREATE VIEW peek WITH ({}) AS SELECT * FROM secret").format(sql.SQL(options)))
        with pytest.raises(indb.IndbError):
            indb.score("m", "peek", "stolen", key="id", conn=conn)
        assert conn.execute("SELECT to_regclass('stolen')").fetchone()[0] is None
    assert migrated_conn.execute("SELECT count(*) FROM indb.prediction_log WHERE row_key = '1'").fetchone()[0] == 0


def test_the_recorded_target_is_the_table_written(scorer, migrated_conn):
    _, bob = scorer
    with connect(bob.dsn) as conn:
        conn.execute("CREATE TABLE src AS SELECT g AS id, g * 0.1 AS a, g * 0.2 AS b, g * 0.3 AS c FROM generate_series(1, 10) g")
        result = indb.score("m", "src", "public.bobs_out", key="id", conn=conn)
        assert conn.execute("SELECT count(*) FROM public.bobs_out").fetchone()[0] == 10
        # the target named by the caller, and what the log recorded, are the same relation
        recorded = migrated_conn.execute("SELECT target FROM indb.scoring_calls WHERE call_id = %s", [result.call_id]).fetchone()[0]
        assert conn.execute("SELECT %s::regclass = 'public.bobs_out'::regclass", [recorded]).fetchone()[0]
        # a scorer cannot write a call row of their own naming a table that was never written
        for statement in ("INSERT INTO indb.scoring_calls (model, version, ir_sha256, entry_point, target)"
                          " VALUES ('m', 1, repeat('a', 64), 'score', 'public.never')",
                          "UPDATE indb.scoring_calls SET target = 'public.never'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
