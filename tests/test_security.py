"""The attack suite of issue 5: a non-superuser LOGIN role granted indb_scorer (and
deployers, auditors) against the catalog, the scoring functions and the log."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from psycopg import sql

from indb import errors
from indb.governance.score import score
from tests.gov import connect, counts, deploy, make_source, train_gb, train_lr

DENIED = (psycopg.errors.InsufficientPrivilege,)


@pytest.fixture
def setup(migrated_dsn, migrated_conn, pg_role):
    """A model m (LR) and g (GB), a table src, and a scorer alice who may read it."""
    deploy(migrated_dsn, train_lr(), "m")
    deploy(migrated_dsn, train_gb(), "g")
    X = make_source(migrated_conn, n=50)
    alice = pg_role(migrated_dsn, "indb_scorer")
    migrated_conn.execute(sql.SQL("GRANT SELECT ON src TO {}; GRANT CREATE ON SCHEMA public TO {}").format(
        sql.Identifier(alice.name), sql.Identifier(alice.name)))
    return X, alice


def _denied(conn, statement, params=None, errors=DENIED):
    with pytest.raises(errors):
        conn.execute(statement, params)


def test_a_scorer_cannot_create_replace_or_alter_anything_in_schema_indb(migrated_dsn, setup):
    _, alice = setup
    with connect(alice.dsn) as conn:
        # the function's name as the catalog prints it (regprocedure), used as SQL text
        fn = sql.SQL(conn.execute("SELECT fn::text FROM indb.version_functions WHERE model = 'm' AND output = 'predict'").fetchone()[0])
        for statement in (
            "CREATE FUNCTION indb.mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE TABLE indb.mine (a int)",
            "CREATE VIEW indb.mine AS SELECT 1",
            'CREATE OR REPLACE FUNCTION indb."m@1/predict"(double precision, double precision, double precision)'
            " RETURNS double precision LANGUAGE sql AS 'SELECT 1::float8'",
            "CREATE OR REPLACE FUNCTION indb.score(model text, source regclass, target text, keep text[], key text,"
            " sample double precision) RETURNS SETOF record LANGUAGE sql AS 'SELECT NULL::record'",
            sql.SQL("ALTER FUNCTION {} RENAME TO x").format(fn),
            sql.SQL("ALTER FUNCTION {} SECURITY DEFINER").format(fn),
            "ALTER TABLE indb.versions ADD COLUMN x int",
            "ALTER TABLE indb.prediction_log DISABLE ROW LEVEL SECURITY",
            "DROP TABLE indb.aliases",
            sql.SQL("DROP FUNCTION {}").format(fn),
            "UPDATE indb.aliases SET version = 1",
            "INSERT INTO indb.versions (model, version, ir, ir_sha256, artifact_sha256, features, outputs, engine)"
            " VALUES ('m', 9, '{}', repeat('a', 64), repeat('a', 64), '[]', '{}', 'sql')",
        ):
            _denied(conn, statement)


def test_a_scorer_cannot_read_the_ir_or_the_artifact(setup):
    _, alice = setup
    with connect(alice.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM indb.versions WHERE ir_sha256 IS NOT NULL").fetchone()[0] == 2
        for column in ("ir", "onnx", "artifact_sha256", "baseline", "metrics", "*"):
            _denied(conn, sql.SQL("SELECT {} FROM indb.versions").format(sql.SQL("*") if column == "*" else sql.Identifier(column)))


def test_a_scorer_cannot_write_log_rows_nor_call_the_writers(migrated_conn, setup):
    X, alice = setup
    with connect(alice.dsn) as conn:
        conn.execute("SELECT indb.predict_logged('m', s) FROM src AS s WHERE id = 0")
        call = conn.execute("SELECT call_id, called_at FROM indb.scoring_calls").fetchone()
        for statement, params in (
            ("INSERT INTO indb.prediction_log (logged_at, call_id, features, prediction) VALUES (%s, %s, '{1,2,3}', 1)", [call[1], call[0]]),
            ("INSERT INTO indb.scoring_calls (model, version, ir_sha256, entry_point) VALUES ('m', 1, repeat('a', 64), 'x')", None),
            ("UPDATE indb.prediction_log SET prediction = 0", None),
            ("UPDATE indb.scoring_calls SET rows_logged = 0", None),
            ("DELETE FROM indb.prediction_log", None),
            ("DELETE FROM indb.scoring_calls", None),
            ("TRUNCATE indb.prediction_log", None),
            ("SELECT indb.log_open('m', 1, repeat('a', 64), 'score', NULL, 1.0, NULL)", None),
            ("SELECT indb.log_finish(%s, %s, NULL, 1, 1)", [call[0], call[1]]),
            ("SELECT indb.compute_prepare('m', 1, current_user)", None),
            ("SELECT indb.compute_row(%s, %s, 'm', 1, '{1,2,3}', NULL, NULL, current_user)", [call[0], call[1]]),
            ("SELECT indb.log_ensure_partitions(1)", None),
            ("SELECT indb.log_drop_partition(i.inhrelid::regclass) FROM pg_inherits AS i"
             " WHERE i.inhparent = 'indb.prediction_log'::regclass LIMIT 1", None),
        ):
            _denied(conn, statement, params)
        before = counts(migrated_conn)
        # The writers a scorer may call evaluate the model themselves: a caller chooses the
        # features, never the answer, and cannot slip code into the sandbox.
        fake = [9.0, -9.0, 0.5]
        got = conn.execute("SELECT (indb.log_predict('m', 1, %s, NULL, 'k', 'forged?', current_user)).prediction",
                           [fake]).fetchone()[0]
        assert got == train_lr().predict(np.array([fake]))[0]
        logged = conn.execute("SELECT features, prediction FROM indb.logged_predictions WHERE request_id = 'forged?'").fetchall()
        assert logged == [(fake, got)]
        conn.execute("CREATE TEMP VIEW forged AS SELECT s.ctid AS __indb_tid, s.id, 0.5::float8 AS a, s.b, s.c FROM src AS s")
        conn.execute("GRANT SELECT ON forged TO indb_compute")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not a plain projection of one table"):
            conn.execute("SELECT * FROM indb.log_score('m', 1, 'pg_temp.forged', NULL, '{}', 1.0, 'recompute', '{predict}', 't', current_user)")
        conn.execute("CREATE TEMP VIEW joined AS SELECT s.ctid AS __indb_tid, s.a, t.b, s.c FROM src AS s, src AS t")
        conn.execute("GRANT SELECT ON joined TO indb_compute")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must read one table"):
            conn.execute("SELECT * FROM indb.log_score('m', 1, 'pg_temp.joined', NULL, '{}', 1.0, 'stage', '{predict}', 't', current_user)")
        # a table whose row-level security would run the caller's code in the sandbox
        conn.execute("CREATE TABLE trap AS SELECT * FROM src")
        conn.execute("CREATE FUNCTION pg_temp.noop() RETURNS boolean LANGUAGE sql AS 'SELECT true'")
        conn.execute("ALTER TABLE trap ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY p ON trap USING (true)")
        with pytest.raises(errors.IndbError, match="public.trap has row-level security"):
            score("m", "trap", "trapped", conn=conn)
        # acting as someone else
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="cannot act as role"):
            conn.execute("SELECT indb.log_predict('m', 1, '{1,2,3}', NULL, NULL, NULL, 'postgres')")
    after = counts(migrated_conn)
    assert after[:3] == before[:3] and after[3:] == (before[3] + 1, before[4] + 1)  # the one honest log_predict


def test_a_scorer_sees_none_of_another_users_predictions_and_an_auditor_sees_all(migrated_dsn, migrated_conn, pg_role, setup):
    _, alice = setup
    bob = pg_role(migrated_dsn, "indb_scorer")
    auditor = pg_role(migrated_dsn, "indb_auditor")
    migrated_conn.execute(sql.SQL("GRANT SELECT ON src TO {}").format(sql.Identifier(bob.name)))
    for who, n in ((alice, 3), (bob, 5)):
        with connect(who.dsn) as conn:
            conn.execute("SELECT indb.predict_logged('m', s) FROM src AS s WHERE id < %s", [n])
    with connect(alice.dsn) as conn:
        assert conn.execute("SELECT count(*), count(*) FILTER (WHERE called_by <> current_user)"
                            " FROM indb.logged_predictions").fetchone() == (3, 0)
        assert conn.execute("SELECT count(*) FROM indb.prediction_log").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM indb.scoring_calls WHERE called_by = %s", [bob.name]).fetchone()[0] == 0
    with connect(auditor.dsn) as conn:
        assert conn.execute("SELECT called_by, count(*) FROM indb.logged_predictions GROUP BY 1 ORDER BY 2"
                            ).fetchall() == [(alice.name, 3), (bob.name, 5)]
        assert conn.execute("SELECT count(*) FROM indb.prediction_log").fetchone()[0] == 8
        _denied(conn, "DELETE FROM indb.prediction_log")


def test_after_set_role_the_logged_caller_is_still_the_login_user(migrated_dsn, migrated_conn, setup):
    _, alice = setup
    migrated_conn.execute("CREATE ROLE team_scorers NOLOGIN")
    migrated_conn.execute(sql.SQL("GRANT indb_scorer TO team_scorers; GRANT team_scorers TO {};"
                                  " GRANT SELECT ON src TO team_scorers; GRANT CREATE ON SCHEMA public TO team_scorers").format(
        sql.Identifier(alice.name)))
    try:
        with connect(alice.dsn) as conn:
            conn.execute("SET ROLE team_scorers")
            assert conn.execute("SELECT current_user").fetchone()[0] == "team_scorers"
            conn.execute("SELECT indb.predict_logged('m', s) FROM src AS s WHERE id = 0")
            res = score("g", "src", "by_team", keep=["id"], key="id", conn=conn)
            assert res.rows_logged == 50
            assert conn.execute("SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'by_team'::regclass"
                                ).fetchone()[0] == "team_scorers"
        assert migrated_conn.execute("SELECT DISTINCT called_by FROM indb.scoring_calls").fetchall() == [(alice.name,)]
    finally:
        migrated_conn.execute("DROP TABLE IF EXISTS by_team")
        migrated_conn.execute("DROP OWNED BY team_scorers")
        migrated_conn.execute("DROP ROLE team_scorers")


def _answers(conn) -> tuple:
    """Everything a scorer gets back: predictions by every path, and what got logged."""
    generic = conn.execute("SELECT indb.predict('m', s), indb.predict_proba('g', s) FROM src AS s ORDER BY id").fetchall()
    bound = conn.execute("SELECT indb.predict('m', s), indb.predict('g', s) FROM bound AS s ORDER BY id").fetchall()
    logged = conn.execute("SELECT indb.predict_logged('g', s) FROM src AS s WHERE id < 5 ORDER BY id").fetchall()
    conn.execute("DROP TABLE IF EXISTS public.shadow_out")
    score("m", "public.src", "public.shadow_out", keep=["id"], key="id", conn=conn)
    table = conn.execute("SELECT * FROM public.shadow_out ORDER BY id").fetchall()
    sums = conn.execute("SELECT DISTINCT model, ir_sha256 FROM indb.scoring_calls ORDER BY 1").fetchall()
    return generic, bound, logged, table, sums


def test_shadowing_changes_no_prediction_and_no_logged_checksum(migrated_dsn, migrated_conn, setup):
    _, alice = setup
    migrated_conn.execute("CREATE TABLE bound AS SELECT * FROM src")
    migrated_conn.execute(sql.SQL("GRANT SELECT ON bound TO {}").format(sql.Identifier(alice.name)))
    from indb.registry.versions import bind

    bind("m", "bound", dsn=migrated_dsn)
    bind("g", "bound", dsn=migrated_dsn)
    migrated_conn.execute(sql.SQL("CREATE SCHEMA mine AUTHORIZATION {}").format(sql.Identifier(alice.name)))
    truth = dict(migrated_conn.execute("SELECT model, ir_sha256 FROM indb.versions").fetchall())
    with connect(alice.dsn) as conn:
        before = _answers(conn)
        assert dict(before[4]) == truth
        # an own-schema function and operators that would change any unqualified use
        for statement in (
            "CREATE FUNCTION mine.lower(text) RETURNS text LANGUAGE sql AS $$SELECT 'zzz'$$",
            "CREATE FUNCTION mine.eq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
            "CREATE OPERATOR mine.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mine.eq)",
            "CREATE FUNCTION mine.plus(double precision, double precision) RETURNS double precision LANGUAGE sql AS 'SELECT 42::float8'",
            "CREATE OPERATOR mine.+ (LEFTARG = double precision, RIGHTARG = double precision, FUNCTION = mine.plus)",
            "CREATE FUNCTION mine.le(double precision, double precision) RETURNS boolean LANGUAGE sql AS 'SELECT false'",
            "CREATE OPERATOR mine.<= (LEFTARG = double precision, RIGHTARG = double precision, FUNCTION = mine.le)",
            "CREATE FUNCTION mine.tanh(double precision) RETURNS double precision LANGUAGE sql AS 'SELECT 0::float8'",
            "CREATE FUNCTION mine.exp(double precision) RETURNS double precision LANGUAGE sql AS 'SELECT 0::float8'",
            "CREATE FUNCTION mine.resolve(text, OUT model text, OUT version integer) LANGUAGE sql AS $$SELECT 'g', 1$$",
            # temporary tables named like the catalog's
            "CREATE TEMP TABLE versions (model text, version int, ir_sha256 text, features jsonb, engine text, retired_at timestamptz)",
            "INSERT INTO versions VALUES ('m', 1, repeat('f', 64), '[[\"a\",\"float\"]]', 'sql', NULL)",
            "CREATE TEMP TABLE aliases (model text, alias text, version int)",
            "INSERT INTO aliases VALUES ('m', 'champion', 7)",
            "CREATE TEMP TABLE version_functions (model text, version int, output text, fn regprocedure, result_type text)",
            "CREATE TEMP TABLE scoring_calls (call_id bigint, called_by text, finished_at timestamptz, called_at timestamptz)",
            "CREATE TEMP TABLE models (name text)",
        ):
            conn.execute(statement)
        for path in ("mine, public", "pg_temp, mine, public, indb", "mine, indb, pg_catalog, public"):
            conn.execute("SELECT set_config('search_path', %s, false)", [path])
            if "pg_catalog" in path:  # listed after mine: the shadows win for the caller's own SQL
                assert conn.execute("SELECT lower('ABC') = 'q', 1.0::float8 + 1.0::float8").fetchone() == (True, 42.0)
            after = _answers(conn)
            assert after[:4] == before[:4], path
            assert dict(after[4]) == truth, path


def test_public_executes_no_function_in_schema_indb_even_after_deploys_and_binds(migrated_dsn, migrated_conn, setup):
    migrated_conn.execute("CREATE TABLE bound AS SELECT * FROM src")
    from indb.registry.versions import bind, promote

    deploy(migrated_dsn, train_gb(), "p", engine="plpython")
    deploy(migrated_dsn, train_lr(), "m", alias="staging")  # identical artifact: moves an alias only
    bind("m", "bound", dsn=migrated_dsn)
    promote("g", 1, alias="staging", dsn=migrated_dsn)
    functions = migrated_conn.execute(
        "SELECT p.oid::regprocedure::text, p.proacl IS NULL,"
        " EXISTS (SELECT FROM aclexplode(p.proacl) AS a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),"
        " p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner)"
        " FROM pg_proc AS p WHERE p.pronamespace = 'indb'::regnamespace").fetchall()
    names = [f[0] for f in functions]
    assert any("p@1/predict" in n for n in names) and any("predict(text,bound)" in n for n in names)
    for name, default_acl, public, definer, config, owner in functions:
        assert not default_acl and not public, f"PUBLIC may execute {name}"
        if definer:
            # SECURITY DEFINER only for the roles that need it, with a pinned search_path
            assert owner in ("indb_log_writer", "indb_compute", "indb_owner", "indb_versions"), name
            assert config and config[0] in ("search_path=pg_catalog, pg_temp", "search_path=pg_catalog, indb, pg_temp"), name
        if owner in ("indb_log_writer", "indb_compute"):
            assert config and config[0] == "search_path=pg_catalog, pg_temp", name


def test_a_deployer_deploys_without_superuser_and_cannot_touch_the_log(migrated_dsn, migrated_conn, pg_role, setup):
    _, alice = setup
    with connect(alice.dsn) as conn:
        conn.execute("SELECT indb.predict_logged('m', s) FROM src AS s WHERE id < 3")
    dave = pg_role(migrated_dsn, "indb_deployer")
    with connect(dave.dsn) as conn:
        assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    res = deploy(dave.dsn, train_gb(), "dave_model")
    assert (res.model, res.version, res.created) == ("dave_model", 1, True)
    part = migrated_conn.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                 " WHERE i.inhparent = 'indb.prediction_log'::regclass LIMIT 1").fetchone()[0]
    before = counts(migrated_conn)
    with connect(dave.dsn) as conn:
        for as_role in (None, "indb_versions"):
            for statement in (
                "ALTER TABLE indb.prediction_log ADD COLUMN x int",
                "ALTER TABLE indb.prediction_log DISABLE ROW LEVEL SECURITY",
                "ALTER TABLE indb.prediction_log NO FORCE ROW LEVEL SECURITY",
                "ALTER TABLE indb.scoring_calls DROP COLUMN called_by",
                "DELETE FROM indb.prediction_log",
                "DELETE FROM indb.scoring_calls",
                "UPDATE indb.scoring_calls SET called_by = 'someone else'",
                "TRUNCATE indb.prediction_log",
                "TRUNCATE indb.scoring_calls",
                sql.SQL("DROP TABLE {}").format(sql.Identifier("indb", part)),
                "DROP TABLE indb.prediction_log CASCADE",
                "DROP POLICY scorer_reads_own ON indb.prediction_log",
                "DROP FUNCTION indb.log_score(text, integer, regclass, text, text[], double precision, text, text[], text, name)",
                "DROP FUNCTION indb.compute_row(bigint, timestamptz, text, integer, double precision[], text[], text, name)",
                "CREATE OR REPLACE FUNCTION indb.log_open(model text, version integer, ir_sha256 text, entry_point text,"
                " target text, sample_rate double precision, request_id text, OUT call_id bigint, OUT called_at timestamptz)"
                " LANGUAGE sql AS 'SELECT 1::bigint, now()'",
                "ALTER SCHEMA indb RENAME TO gone",
                "DROP SCHEMA indb CASCADE",
                "SELECT indb.log_open('m', 1, repeat('a', 64), 'score', NULL, 1.0, NULL)",
                "SELECT indb.log_predict('m', 1, '{1,2,3}', NULL, NULL, NULL, current_user)",
            ):
                with conn.transaction():
                    if as_role:
                        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(as_role)))
                    with pytest.raises(DENIED + (psycopg.errors.DependentObjectsStillExist,)):
                        with conn.transaction():
                            conn.execute(statement)
    assert counts(migrated_conn)[3:] == before[3:]
    assert migrated_conn.execute("SELECT relrowsecurity FROM pg_class WHERE oid = 'indb.prediction_log'::regclass").fetchone()[0]


@pytest.mark.parametrize("kind", ["body", "ir"])
def test_validate_reports_a_version_whose_installed_body_or_ir_was_changed(migrated_dsn, migrated_conn, kind):
    from indb.catalog.migrator import validate

    deploy(migrated_dsn, train_lr(), "m")
    assert validate(migrated_dsn).ok
    if kind == "body":
        fn = migrated_conn.execute("SELECT fn::text FROM indb.version_functions WHERE output = 'predict'").fetchone()[0]
        src = migrated_conn.execute("SELECT pg_get_functiondef(%s::regprocedure)", [fn]).fetchone()[0]
        tampered = src.replace("0.", "0.9", 1)
        # as the functions' owner, as a deployer could: a body the guard lets through
        with migrated_conn.transaction():
            migrated_conn.execute("SET LOCAL ROLE indb_versions")
            migrated_conn.execute(tampered)
        expected = 'installed body of indb."m@1/predict"'
    else:
        # a superuser disables the immutability trigger and the checksum constraint, and flips a byte of the IR
        with migrated_conn.transaction():
            migrated_conn.execute("ALTER TABLE indb.versions DISABLE TRIGGER versions_immutable")
            migrated_conn.execute("ALTER TABLE indb.versions DROP CONSTRAINT versions_ir_checksum")
            migrated_conn.execute("UPDATE indb.versions SET ir = overlay(ir placing chr(ascii(substr(ir, 40, 1)) # 1) from 40 for 1)")
        expected = "the stored IR does not match its checksum"
    report = validate(migrated_dsn)
    assert not report.ok and any(expected in p and "m@1" in p for p in report.problems), report.problems
