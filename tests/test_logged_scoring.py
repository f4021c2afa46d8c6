"""Logged scoring: indb.score / `indb score` and indb.predict_logged (issue 4 item 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psycopg
import pytest
from psycopg import sql

from indb import errors
from indb.governance.score import score
from tests.gov import connect, counts, deploy, make_source, train_gb, train_lr, train_text


def _scorer(pg_role, dsn):
    role = pg_role(dsn, "indb_scorer")
    with connect(dsn) as conn:
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {0}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {0}").format(
            sql.Identifier(role.name)))
    return role


@pytest.mark.parametrize("mode", ["recompute", "stage"])
@pytest.mark.parametrize("which", ["lr", "gb"])
def test_score_writes_the_outputs_and_logs_every_row(migrated_dsn, migrated_conn, pg_role, mode, which):
    est = train_lr() if which == "lr" else train_gb()
    deploy(migrated_dsn, est, "m")
    X = make_source(migrated_conn, n=300)
    alice = _scorer(pg_role, migrated_dsn)  # after the table exists: it may read it
    with connect(alice.dsn) as conn:
        conn.execute("SELECT set_config('indb.score_mode', %s, false)", [mode])
        notes = []
        res = score("m", "src", "scored", keep=["id"], key="id", conn=conn, progress=notes.append)
        assert (res.rows_scored, res.rows_logged, res.scored, res.target) == (300, 300, "m@1", "public.scored")
        said = {"stage": "evaluated once into a stage", "recompute": "logged rows evaluated again"}[mode]
        assert any(said in n for n in notes) and any("300 rows scored" in n for n in notes)
        cols = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'scored'::regclass AND attnum > 0 ORDER BY attnum")]
        assert cols == ["id", "prediction", "probability_0", "probability_1"]
        out = np.array(conn.execute("SELECT prediction, probability_0, probability_1 FROM scored ORDER BY id").fetchall())
        np.testing.assert_array_equal(out[:, 0], est.predict(X))
        np.testing.assert_allclose(out[:, 1:], est.predict_proba(X), rtol=1e-12, atol=1e-15)
        call = conn.execute("SELECT call_id, called_by, model, version, ir_sha256, entry_point, source, target, rows_scored,"
                            " rows_logged, finished_at IS NOT NULL FROM indb.scoring_calls").fetchall()
        sha = migrated_conn.execute("SELECT ir_sha256 FROM indb.versions").fetchone()[0]
        assert call == [(res.call_id, alice.name, "m", 1, sha, "score", "public.src", "public.scored", 300, 300, True)]
        rows = conn.execute("SELECT row_key, features, prediction, label, features_text FROM indb.prediction_log"
                            " ORDER BY row_key::int").fetchall()
    assert [r[0] for r in rows] == [str(i) for i in range(300)]
    np.testing.assert_array_equal(np.array([r[1] for r in rows]), X)  # the exact inputs
    np.testing.assert_array_equal([r[2] for r in rows], est.predict(X))
    assert {r[3] for r in rows} == {None} and {r[4] for r in rows} == {None}


def test_sampling_is_deterministic_by_key_and_counts_every_scored_row(migrated_dsn, migrated_conn):
    deploy(migrated_dsn, train_lr(), "m")
    make_source(migrated_conn, n=400)
    logged = []
    for target in ("s1", "s2"):
        res = score("m", "src", target, keep=["id"], key="id", sample=0.25, dsn=migrated_dsn)
        assert res.rows_scored == 400 and migrated_conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(target))).fetchone()[0] == 400
        keys = {r[0] for r in migrated_conn.execute(
            "SELECT row_key FROM indb.prediction_log WHERE call_id = %s", [res.call_id])}
        assert len(keys) == res.rows_logged
        logged.append(keys)
    assert logged[0] == logged[1] and 50 <= len(logged[0]) <= 150  # the same entities, about a quarter
    # the same keys whichever way the rows are evaluated
    migrated_conn.execute("SET indb.score_mode = stage")
    res = score("m", "src", "s3", key="id", sample=0.25, conn=migrated_conn)
    assert {r[0] for r in migrated_conn.execute(
        "SELECT row_key FROM indb.prediction_log WHERE call_id = %s", [res.call_id])} == logged[0]


def test_text_features_and_text_labels(migrated_dsn, migrated_conn):
    import pandas as pd

    est = train_text()
    deploy(migrated_dsn, est, "t")
    migrated_conn.execute("CREATE TABLE txt (id int, a float8, b float8, c text)")
    frame = pd.DataFrame({"id": range(6), "a": [0.1, -1, 2, 0.5, -0.2, 1.1], "b": [1, 2, 3, 4, 5, 6.0],
                          "c": ["red", "blue", "green", None, "purple", "red"]})
    with migrated_conn.cursor().copy("COPY txt FROM STDIN") as cp:
        for row in frame.itertuples(index=False):
            cp.write_row(tuple(None if (isinstance(v, float) and np.isnan(v)) else v for v in row))
    res = score("t", "txt", "t_out", keep=["id"], key="id", conn=migrated_conn)
    got = migrated_conn.execute("SELECT prediction FROM t_out ORDER BY id").fetchall()
    known = frame["c"].notna()
    want = est.predict(frame.loc[known, ["a", "b", "c"]])
    assert [g[0] for g, k in zip(got, known) if k] == list(want)
    logged = migrated_conn.execute("SELECT features, features_text, label, prediction FROM indb.prediction_log"
                                   " WHERE call_id = %s ORDER BY row_key::int", [res.call_id]).fetchall()
    assert logged[0][0][:2] == [0.1, 1.0] and logged[0][1][2] == "red" and logged[0][3] is None
    assert [r[2] for r in logged] == [g[0] for g in got]
    # --keep and --key follow the feature names' identifier rule: a mixed-case "ID" is
    # kept and keyed as itself (the same rule as compile --table --keep)
    migrated_conn.execute('ALTER TABLE txt ADD COLUMN "ID" int; UPDATE txt SET "ID" = id * 10')
    res2 = score("t", "txt", "t_out2", keep=["ID"], key="ID", conn=migrated_conn)
    cols = [r[0] for r in migrated_conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 't_out2'::regclass AND attnum > 0 ORDER BY attnum")]
    assert cols[:2] == ["ID", "prediction"]
    keys = migrated_conn.execute("SELECT row_key FROM indb.prediction_log WHERE call_id = %s ORDER BY row_key::int", [res2.call_id]).fetchall()
    assert [k[0] for k in keys] == [str(i * 10) for i in range(6)]
    with pytest.raises(errors.NotFoundError, match="has no column id2"):
        score("t", "txt", "t_out3", keep=["id2"], conn=migrated_conn)
    one = migrated_conn.execute("SELECT indb.predict_label_logged('t', x, 'req-9') FROM txt AS x WHERE id = 0").fetchone()[0]
    assert one == got[0][0]
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="predict_label_logged"):
        migrated_conn.execute("SELECT indb.predict_logged('t', x) FROM txt AS x WHERE id = 0")


def test_predict_logged_logs_one_call_per_row_with_its_request_id(migrated_dsn, migrated_conn):
    est = train_lr()
    deploy(migrated_dsn, est, "m")
    X = make_source(migrated_conn, n=5)
    got = migrated_conn.execute("SELECT indb.predict_logged('m', s, 'r-' || id) FROM src AS s ORDER BY id").fetchall()
    assert [g[0] for g in got] == list(est.predict(X))
    calls = migrated_conn.execute(
        "SELECT c.request_id, c.entry_point, c.rows_scored, c.rows_logged, r.features, r.prediction"
        " FROM indb.scoring_calls AS c JOIN indb.prediction_log AS r USING (call_id) ORDER BY call_id").fetchall()
    assert [c[0] for c in calls] == [f"r-{i}" for i in range(5)]
    assert {c[1:4] for c in calls} == {("predict_logged", 1, 1)}
    np.testing.assert_array_equal(np.array([c[4] for c in calls]), X)


BAD = [
    (dict(model="nope"), errors.NotFoundError, "unknown model 'nope'"),
    (dict(model="m@7"), errors.NotFoundError, "model 'm' has no version 7"),
    (dict(model="m@staging"), errors.NotFoundError, "has no alias 'staging'"),
    (dict(source="src_missing_b"), errors.NotFoundError, r"table public.src_missing_b has no column b for model 'm@1'"),
    (dict(source="src_text_b"), errors.IndbError, r"feature b of model 'm@1' must be a number, but column public.src_text_b.b is text"),
    (dict(keep=["prediction"]), errors.UsageError, "output column prediction collides with a kept column"),
    (dict(keep=["nope"]), errors.NotFoundError, "has no column nope to keep"),
    (dict(target="taken"), errors.UsageError, "table public.taken exists"),
    (dict(key="nope"), errors.NotFoundError, "has no column nope"),
]


@pytest.mark.parametrize("change, error, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_names_the_problem_and_changes_nothing(migrated_dsn, migrated_conn, change, error, message):
    deploy(migrated_dsn, train_lr(), "m")
    make_source(migrated_conn, n=10)
    migrated_conn.execute("CREATE TABLE src_missing_b AS SELECT id, a, c FROM src")
    migrated_conn.execute("CREATE TABLE src_text_b AS SELECT id, a, b::text AS b, c FROM src")
    migrated_conn.execute("ALTER TABLE src ADD COLUMN prediction int")
    migrated_conn.execute("CREATE TABLE taken (x int)")
    before = counts(migrated_conn)
    args = dict(model="m", source="src", target="scored", keep=["id"], key="id") | change
    with pytest.raises(error, match=message):
        score(args.pop("model"), args.pop("source"), args.pop("target"), dsn=migrated_dsn, **args)
    assert counts(migrated_conn) == before
    assert migrated_conn.execute("SELECT to_regclass('public.scored')").fetchone()[0] is None
    assert migrated_conn.execute("SELECT count(*) FROM taken").fetchone()[0] == 0


def test_replace_drops_the_old_target_in_the_same_transaction(migrated_dsn, migrated_conn):
    deploy(migrated_dsn, train_lr(), "m")
    make_source(migrated_conn, n=10)
    migrated_conn.execute("CREATE TABLE scored (old int)")
    res = score("m", "src", "scored", keep=["id"], replace=True, dsn=migrated_dsn)
    assert res.rows_scored == 10
    assert migrated_conn.execute("SELECT count(*) FROM scored WHERE prediction IS NOT NULL").fetchone()[0] == 10


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_an_interrupted_score_leaves_no_target_and_no_log(migrated_dsn, migrated_conn, sig):
    deploy(migrated_dsn, train_gb(), "m")
    migrated_conn.execute("CREATE TABLE big AS SELECT i AS id, random() AS a, random() AS b, random() AS c"
                          " FROM generate_series(1, 300000) AS i")
    before = counts(migrated_conn)
    env = dict(os.environ, INDB_DSN=migrated_dsn)
    proc = subprocess.Popen([sys.executable, "-m", "indb.cli", "score", "m", "--from", "big", "--into", "big_out",
                             "--keep", "id", "--key", "id"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    running = _wait_for(lambda: migrated_conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'indb score' AND query LIKE '%%indb.score(%%'"
        " AND state = 'active'").fetchone()[0] == 1)
    assert running, proc.communicate(timeout=60)
    time.sleep(0.5)
    assert proc.poll() is None, "the call finished before it could be interrupted: make the table larger"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and b"interrupted" in err, (out, err)
    assert _wait_for(lambda: migrated_conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'indb score'").fetchone()[0] == 0)
    assert migrated_conn.execute("SELECT to_regclass('public.big_out')").fetchone()[0] is None
    assert counts(migrated_conn) == before


def test_the_command_line_scores_and_prints_one_line(migrated_dsn, migrated_conn):
    deploy(migrated_dsn, train_lr(), "m")
    make_source(migrated_conn, n=20)
    env = dict(os.environ, INDB_DSN=migrated_dsn)
    run = subprocess.run([sys.executable, "-m", "indb.cli", "score", "m", "--from", "src", "--into", "scores",
                          "--keep", "id", "--key", "id", "--sample", "0.5"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "20 rows scored with m@1 into public.scores" in run.stdout
    run = subprocess.run([sys.executable, "-m", "indb.cli", "score", "m", "--from", "src", "--into", "scores"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "public.scores exists" in run.stderr
    assert "--replace" in run.stderr


def _score_with(conn, setting: str, value: str, *args, **kw):
    """``score(*args, **kw)`` on ``conn`` with one setting changed for the call."""
    conn.execute(f"SET {setting} = {value}")
    try:
        return score(*args, conn=conn, **kw)
    finally:
        conn.execute(f"RESET {setting}")


@pytest.mark.parametrize("which,engine", [("gb", "plpython"), ("text", "plpython"), ("gb", "sql")])
def test_a_version_is_scored_a_chunk_at_a_time_with_the_row_paths_answers(migrated_dsn, migrated_conn, which, engine):
    """indb score evaluates a PL/Python version, and a SQL version with a large body,
    through indb.engine_chunk_next (one call per chunk of blocks, not one per row; each
    chunk's answers come with the next call) and gives
    what the per-row path and the model give, on rows with NULL, NaN and unseen or NULL
    categories."""
    import pandas as pd

    est = train_gb() if which == "gb" else train_text()
    deploy(migrated_dsn, est, "py", engine=engine)
    if engine == "sql":  # large enough to take the chunked path
        body = migrated_conn.execute("SELECT max(length(CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_get_function_sqlbody(p.oid) END)) FROM indb.version_functions AS f"
                                     " JOIN pg_proc AS p ON p.oid = f.fn::oid WHERE f.model = 'py'").fetchone()[0]
        assert body > 20000, body
    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame({"id": range(n), "a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["c"] = rng.normal(size=n) if which == "gb" else rng.choice(["red", "blue", "green", "purple"], size=n)
    migrated_conn.execute(f"CREATE TABLE src (id int, a float8, b float8, c {'float8' if which == 'gb' else 'text'})")
    with migrated_conn.cursor().copy("COPY src FROM STDIN") as cp:
        for i, row in enumerate(frame.itertuples(index=False)):
            vals = list(row)
            if i % 13 == 1:
                vals[1] = None  # NULL
            if i % 17 == 2:
                vals[2] = float("nan")
            if i % 19 == 3:
                vals[3] = None
            cp.write_row(vals)
    migrated_conn.execute("SET track_functions = 'pl'")
    blocks = migrated_conn.execute("SELECT pg_relation_size('src') / 8192").fetchone()[0]
    def by_chunks(target, **kw):  # several chunks of 4 blocks, each scored while the next is read
        return _score_with(migrated_conn, "indb.score_chunk_blocks", "4", "py", "src", target, **kw)

    def by_rows(target, **kw):
        return _score_with(migrated_conn, "indb.score_chunks", "off", "py", "src", target, **kw)

    chunked = by_chunks("by_chunk", keep=["id"], key="id")
    migrated_conn.execute("SELECT pg_stat_force_next_flush()")
    by_row = by_rows("by_row", keep=["id"], key="id")
    migrated_conn.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(1.2)  # statistics are reported at most once a second
    migrated_conn.execute("SELECT 1")
    calls = dict(migrated_conn.execute(
        "SELECT funcname, calls FROM pg_stat_user_functions WHERE schemaname = 'indb' AND funcname LIKE 'engine_%'").fetchall())
    # one pipelined call per chunk of 4 blocks and output, and one more per output to
    # collect the last chunk's answers
    outputs = 2  # both models are classifiers: the label and the probabilities
    chunk_calls = calls.get("engine_chunk_next", 0) + calls.get("engine_chunk_next_text", 0)
    assert blocks > 8 and chunk_calls == outputs * ((blocks // 4 + 1) + 1), (blocks, calls)
    # a row entry point is inlined SQL (not counted) around its fast and checked paths
    row_calls = sum(calls.get(f"engine_{kind}{path}", 0) for kind in ("float", "text", "array") for path in ("_fast", "_checked"))
    assert row_calls >= n if engine == "plpython" else row_calls == 0, calls
    assert (chunked.rows_scored, chunked.rows_logged) == (by_row.rows_scored, by_row.rows_logged) == (n, n)
    a = migrated_conn.execute("SELECT * FROM by_chunk ORDER BY id").fetchall()
    b = migrated_conn.execute("SELECT * FROM by_row ORDER BY id").fetchall()
    assert len(a) == len(b) == n
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) or isinstance(y, float):
                missing = [v is None or v != v for v in (x, y)]
                assert missing[0] == missing[1] and (missing[0] or x == pytest.approx(y, rel=1e-12, abs=1e-15)), (ra, rb)
            else:
                assert x == y, (ra, rb)
    # and the model's own answers, on the rows it accepts
    known = [i for i in range(n) if not (i % 13 == 1 or i % 17 == 2 or i % 19 == 3)]
    X = frame.iloc[known][["a", "b", "c"]]
    want = est.predict(X.to_numpy() if which == "gb" else X)
    assert [a[i][1] for i in known] == [str(w) if which == "text" else w for w in want]
    # the log rows the chunk statements write are the row path's: key, features (NULL
    # and NaN kept apart), prediction or label
    def log_rows(call_id):
        return migrated_conn.execute(
            "SELECT row_key, features::text, features_text::text, prediction::text, label FROM indb.prediction_log"
            " WHERE call_id = %s ORDER BY row_key::int", [call_id]).fetchall()

    assert log_rows(chunked.call_id) == log_rows(by_row.call_id)
    assert len(log_rows(chunked.call_id)) == n
    # sampled: the same keys are logged either way, and the target still has every row
    half = by_chunks("half_chunk", keep=["id"], key="id", sample=0.5)
    half_row = by_rows("half_row", keep=["id"], key="id", sample=0.5)
    assert half.rows_scored == n and 0.4 * n < half.rows_logged < 0.6 * n and half.rows_logged == half_row.rows_logged
    assert log_rows(half.call_id) == log_rows(half_row.call_id)
    assert migrated_conn.execute("SELECT count(*) FROM half_chunk").fetchone()[0] == n
    # nothing kept: the target holds the outputs alone, the same ones
    by_chunks("bare_chunk")
    bare = sorted(r[0] for r in migrated_conn.execute("SELECT to_jsonb(b)::text FROM bare_chunk AS b"))
    kept = sorted(r[0] for r in migrated_conn.execute("SELECT (to_jsonb(b) - 'id')::text FROM by_chunk AS b"))
    assert bare == kept and len(bare) == n
