"""What the catalog migrations build: owners, privileges, row-level security, the log writers."""

import hashlib

import psycopg
import pytest
from psycopg import sql

REGISTRY = ["alias_history", "aliases", "models", "schema_migrations", "versions"]


def _add_version(conn, model="churn", version=1):
    conn.execute("INSERT INTO indb.models (name) VALUES (%s) ON CONFLICT DO NOTHING", [model])
    conn.execute(
        "INSERT INTO indb.versions (model, version, ir, ir_sha256, artifact_sha256, features, outputs, engine)"
        " VALUES (%s, %s, '{}', encode(sha256('{}'), 'hex'), repeat('b', 64), '[\"x\"]', '{prediction}', 'sql')", [model, version])


def test_roles_are_nologin_groups_and_deployers_reach_indb_versions_only_through_set_role(migrated_conn):
    rows = migrated_conn.execute(
        "SELECT rolname, rolcanlogin, rolinherit, rolsuper FROM pg_roles WHERE rolname LIKE 'indb\\_%'"
        " AND rolname NOT LIKE 'indb\\_model\\_%' ORDER BY 1")  # (per-model roles come from indb grant, cluster-wide)
    assert rows.fetchall() == [
        ("indb_auditor", False, True, False), ("indb_compute", False, True, False), ("indb_deployer", False, False, False),
        ("indb_log_writer", False, True, False), ("indb_owner", False, True, False),
        ("indb_scorer", False, True, False), ("indb_scorer_base", False, True, False), ("indb_versions", False, True, False)]
    # nobody is a member of the owner of shared objects (core 0013); deployers may SET ROLE
    # indb_versions, which owns their version functions, and inherit nothing from it
    assert migrated_conn.execute("SELECT count(*) FROM pg_auth_members WHERE roleid = 'indb_owner'::regrole").fetchone()[0] == 0
    assert migrated_conn.execute("SELECT pg_has_role('indb_deployer', 'indb_versions', 'MEMBER'),"
                                 " pg_has_role('indb_deployer', 'indb_versions', 'USAGE')").fetchone() == (True, False)


def test_catalog_and_log_have_their_owners(migrated_conn):
    # the log's role owns the schema, so that a deployer (as indb_owner) cannot drop the log (0005)
    assert migrated_conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'indb'"
                                 ).fetchone()[0] == "indb_log_writer"
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
            assert config[0] in ("search_path=pg_catalog, indb, pg_temp", "search_path=pg_catalog, pg_temp"), name


def test_scorers_cannot_read_the_ir_or_write_the_registry(migrated_dsn, migrated_conn, pg_role):
    _add_version(migrated_conn)
    scorer = pg_role(migrated_dsn, "indb_scorer")
    with psycopg.connect(scorer.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT model, version, ir_sha256 FROM indb.versions").fetchall() == [
            ("churn", 1, hashlib.sha256(b"{}").hexdigest())]
        for query in ("SELECT ir FROM indb.versions", "SELECT onnx FROM indb.versions",
                      "INSERT INTO indb.models (name) VALUES ('x')", "DELETE FROM indb.aliases",
                      "SELECT indb.log_open('churn', 1, 'x', 'score', NULL, 1.0, NULL)", "CREATE TABLE indb.mine (a int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)


# The log's writers and who may call them are tested in tests/test_security.py and
# tests/test_logged_scoring.py (migration 0006 replaced 0003's log_call/log_rows).


def test_partitions_are_created_ahead_and_again_when_missing(migrated_conn):
    _add_version(migrated_conn)
    # the migration created them ahead; a template migrated before a midnight (UTC) that
    # the suite crossed lacks the new last day (both tables), which this call adds
    assert migrated_conn.execute("SELECT indb.log_ensure_partitions(7)").fetchone()[0] in (0, 2)
    assert migrated_conn.execute("SELECT indb.log_ensure_partitions(7)").fetchone()[0] == 0
    tomorrow = migrated_conn.execute(
        "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD')").fetchone()[0]
    migrated_conn.execute(sql.SQL("DROP TABLE {}, {}").format(
        sql.Identifier("indb", "scoring_calls_p" + tomorrow), sql.Identifier("indb", "prediction_log_p" + tomorrow)))
    migrated_conn.execute("SET ROLE indb_owner")
    assert migrated_conn.execute("SELECT indb.log_ensure_partitions(7)").fetchone()[0] == 2
    assert migrated_conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                 [f"indb.scoring_calls_p{tomorrow}"]).fetchone()[0]
