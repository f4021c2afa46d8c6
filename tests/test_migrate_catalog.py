"""What the catalog migrations build: owners, privileges, row-level security, the log writers."""

import json

import psycopg
import pytest
from psycopg import sql

REGISTRY = ["alias_history", "aliases", "models", "schema_migrations", "versions"]


def _add_version(conn, model="churn", version=1):
    conn.execute("INSERT INTO indb.models (name) VALUES (%s) ON CONFLICT DO NOTHING", [model])
    conn.execute(
        "INSERT INTO indb.versions (model, version, ir, ir_sha256, artifact_sha256, features, outputs, engine)"
        " VALUES (%s, %s, '{}', repeat('a', 64), repeat('b', 64), '[\"x\"]', '{prediction}', 'sql')", [model, version])


def test_roles_are_nologin_groups_and_deployers_act_as_owner_only_through_set_role(migrated_conn):
    rows = migrated_conn.execute(
        "SELECT rolname, rolcanlogin, rolinherit, rolsuper FROM pg_roles WHERE rolname LIKE 'indb\\_%' ORDER BY 1")
    assert rows.fetchall() == [
        ("indb_auditor", False, True, False), ("indb_deployer", False, False, False),
        ("indb_log_writer", False, True, False), ("indb_owner", False, True, False),
        ("indb_scorer", False, True, False)]
    assert migrated_conn.execute("SELECT pg_has_role('indb_deployer', 'indb_owner', 'MEMBER'),"
                                 " pg_has_role('indb_deployer', 'indb_owner', 'USAGE')").fetchone() == (True, False)


def test_catalog_and_log_have_their_owners(migrated_conn):
    assert migrated_conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'indb'"
                                 ).fetchone()[0] == "indb_owner"
    owners = dict(migrated_conn.execute(
        "SELECT relname, relowner::regrole::text FROM pg_class WHERE relnamespace = 'indb'::regnamespace"
        " AND relkind IN ('r', 'p')").fetchall())
    assert {name: owners[name] for name in REGISTRY} == dict.fromkeys(REGISTRY, "indb_owner")
    log_tables = {name: owner for name, owner in owners.items() if name.startswith(("scoring_calls", "prediction_log"))}
    assert len(log_tables) >= 2 * 9  # both parents and today..today+7 for each
    assert set(log_tables.values()) == {"indb_log_writer"}


def test_public_can_execute_no_function_and_definers_pin_search_path(migrated_conn):
    functions = migrated_conn.execute(
        "SELECT p.oid::regprocedure::text, p.proacl IS NULL, p.prosecdef, p.proconfig,"
        " EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0)"
        " FROM pg_proc p WHERE p.pronamespace = 'indb'::regnamespace").fetchall()
    assert len(functions) >= 5
    for name, default_acl, definer, config, public in functions:
        assert not default_acl and not public, f"PUBLIC may execute {name}"
        if definer:
            assert config == ["search_path=pg_catalog, indb, pg_temp"], name


def test_scorers_cannot_read_the_ir_or_write_the_registry(migrated_dsn, migrated_conn, pg_role):
    _add_version(migrated_conn)
    scorer = pg_role(migrated_dsn, "indb_scorer")
    with psycopg.connect(scorer.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT model, version, ir_sha256 FROM indb.versions").fetchall() == [
            ("churn", 1, "a" * 64)]
        for query in ("SELECT ir FROM indb.versions", "SELECT onnx FROM indb.versions",
                      "INSERT INTO indb.models (name) VALUES ('x')", "DELETE FROM indb.aliases",
                      "SELECT indb.log_call('churn', 1, 'score')", "CREATE TABLE indb.mine (a int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)


def _log_as(dsn: str, rows: list[dict]) -> int:
    """Log a call and its rows the way the logged entry points will: as indb_owner."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE indb_owner")
        call = conn.execute("SELECT indb.log_call('churn', 1, 'score', 'src', NULL, 1.0, 'req-1')").fetchone()[0]
        assert conn.execute("SELECT indb.log_rows(%s, %s)", [call, json.dumps(rows)]).fetchone()[0] == len(rows)
        conn.execute("SELECT indb.log_call_finish(%s, %s)", [call, len(rows)])
        return call


def test_log_rows_are_stamped_with_the_login_user_and_read_through_rls(migrated_dsn, migrated_conn, pg_role):
    _add_version(migrated_conn)
    alice = pg_role(migrated_dsn, "indb_scorer", "indb_deployer")
    bob = pg_role(migrated_dsn, "indb_scorer", "indb_deployer")
    auditor = pg_role(migrated_dsn, "indb_auditor")
    _log_as(alice.dsn, [{"key": "1", "features": {"x": 1.0}, "prediction": 0.25}])
    bobs_call = _log_as(bob.dsn, [{"key": "2", "features": {"x": 2.0}, "prediction": 0.5},
                                  {"key": "3", "features": {"x": 3.0}, "prediction": 0.75}])

    with psycopg.connect(alice.dsn, autocommit=True) as conn:
        mine = conn.execute("SELECT called_by, row_key, ir_sha256 FROM indb.prediction_log ORDER BY row_key").fetchall()
        assert mine == [(alice.name, "1", "a" * 64)]
        assert conn.execute("SELECT called_by, rows_logged, finished_at IS NOT NULL FROM indb.scoring_calls"
                            ).fetchall() == [(alice.name, 1, True)]
    with psycopg.connect(auditor.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM indb.prediction_log").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM indb.scoring_calls").fetchone()[0] == 2

    with psycopg.connect(alice.dsn, autocommit=True) as conn:
        conn.execute("SET ROLE indb_owner")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not an open call of"):
            conn.execute("SELECT indb.log_rows(%s, '[]')", [bobs_call])
        for query in ("INSERT INTO indb.prediction_log (call_id, model, version, ir_sha256, features, prediction)"
                      " VALUES (1, 'churn', 1, 'x', '{}', '1')",
                      "UPDATE indb.prediction_log SET prediction = '0'", "DELETE FROM indb.scoring_calls",
                      "TRUNCATE indb.prediction_log",
                      "ALTER TABLE indb.prediction_log DISABLE ROW LEVEL SECURITY"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)


def test_log_call_refuses_an_unknown_version(migrated_conn):
    migrated_conn.execute("SET ROLE indb_owner")
    with pytest.raises(psycopg.errors.NoDataFound, match="model nope has no version 3"):
        migrated_conn.execute("SELECT indb.log_call('nope', 3, 'score')")


def test_partitions_are_created_ahead_and_again_when_missing(migrated_conn):
    _add_version(migrated_conn)
    assert migrated_conn.execute("SELECT indb.log_ensure_partitions(7)").fetchone()[0] == 0
    tomorrow = migrated_conn.execute(
        "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD')").fetchone()[0]
    migrated_conn.execute(sql.SQL("DROP TABLE {}, {}").format(
        sql.Identifier("indb", "scoring_calls_p" + tomorrow), sql.Identifier("indb", "prediction_log_p" + tomorrow)))
    migrated_conn.execute("SET ROLE indb_owner")
    migrated_conn.execute("SELECT indb.log_call('churn', 1, 'predict_logged')")
    assert migrated_conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                 [f"indb.scoring_calls_p{tomorrow}"]).fetchone()[0]
