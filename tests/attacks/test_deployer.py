"""Issue 12, class 4: a deployer is not the owner of shared code.

Each test is the attack a member of indb_deployer would try (as themselves, and after
SET ROLE indb_versions, the role that owns what deployers create), against a real
PostgreSQL; afterwards a superuser scores, and nothing the deployer planted has run with
the superuser's rights.
"""

from __future__ import annotations

import contextlib

import psycopg
import pytest
from psycopg import sql

from indb.catalog.migrator import validate
from tests.gov import connect, deploy, make_source, train_gb, train_lr

DENIED = (psycopg.errors.InsufficientPrivilege,)
ROLES = (None, "indb_versions")  # as themselves, and as the owner of version functions

# a body that makes the deployer a superuser when a superuser executes it
ESCALATE = "ALTER ROLE {me} SUPERUSER"


@pytest.fixture
def world(migrated_dsn, migrated_conn, pg_role):
    deploy(migrated_dsn, train_lr(), "m", for_tables=())
    deploy(migrated_dsn, train_gb(), "g", engine="plpython")
    make_source(migrated_conn, n=20)
    dave = pg_role(migrated_dsn, "indb_deployer")
    return dave


def _attempt(conn, statement, role=None, errors=DENIED):
    """Run ``statement`` (as ``role`` when given) and expect the server to refuse it."""
    with conn.transaction():
        if role:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        with pytest.raises(errors):
            with conn.transaction():
                conn.execute(statement)


def _is_superuser(conn, name) -> bool:
    return conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [name]).fetchone()[0]


def test_a_deployer_cannot_become_the_owner_of_shared_objects(world, migrated_conn):
    with connect(world.dsn) as conn:
        for role in ("indb_owner", "indb_log_writer", "indb_compute", "postgres"):
            _attempt(conn, sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        assert conn.execute("SELECT pg_has_role(current_user, 'indb_owner', 'MEMBER')").fetchone()[0] is False


@pytest.mark.parametrize("role", ROLES)
def test_a_deployer_cannot_replace_a_shared_entry_point(world, migrated_conn, role):
    me = world.name
    body = sql.Literal(f"BEGIN EXECUTE 'ALTER ROLE {me} SUPERUSER'; model := ref; version := 1; END")
    shared = [
        sql.SQL("CREATE OR REPLACE FUNCTION indb.resolve(ref text, OUT model text, OUT version integer)"
                " LANGUAGE plpgsql AS {}").format(body),
        sql.SQL("CREATE OR REPLACE FUNCTION indb.feature_number(row_value jsonb, name text, model text) RETURNS double precision"
                " LANGUAGE sql RETURN 1"),
        sql.SQL("CREATE OR REPLACE FUNCTION indb.engine_float(model text, version integer, output text,"
                " nums double precision[], texts text[]) RETURNS double precision LANGUAGE sql RETURN 1"),
        # a look-alike overload with a closer argument type than the shared one
        sql.SQL("CREATE FUNCTION indb.resolve(ref varchar, OUT model text, OUT version integer) LANGUAGE plpgsql AS {}").format(body),
        sql.SQL("ALTER FUNCTION indb.resolve(text) SECURITY DEFINER"),
        sql.SQL("ALTER FUNCTION indb.resolve(text) OWNER TO {}").format(sql.Identifier(me)),
        sql.SQL("DROP FUNCTION indb.predict(text, record)"),
    ]
    with connect(world.dsn) as conn:
        for statement in shared:
            _attempt(conn, statement, role, DENIED + (psycopg.errors.DependentObjectsStillExist,))
    # a superuser scores through the shared path: the deployer is no superuser after it
    migrated_conn.execute("SELECT indb.predict('m', s) FROM src AS s LIMIT 1")
    assert not _is_superuser(migrated_conn, me)
    assert validate(migrated_conn.info.dsn).ok


@pytest.mark.parametrize("role", ROLES)
def test_a_deployer_cannot_create_anything_else_in_schema_indb(world, migrated_conn, role):
    tomorrow = migrated_conn.execute(
        "SELECT 'prediction_log_p' || to_char(now() AT TIME ZONE 'UTC' + interval '20 days', 'YYYYMMDD')").fetchone()[0]
    with connect(world.dsn) as conn:
        for statement in (
            sql.SQL("CREATE TABLE {} (a int)").format(sql.Identifier("indb", tomorrow)),  # squat a future log partition
            "CREATE TABLE indb.mine (a int)",
            "CREATE VIEW indb.mine AS SELECT 1",
            "CREATE SEQUENCE indb.mine",
            "CREATE TYPE indb.mine AS (a int)",
            "CREATE DOMAIN indb.mine AS int",
            "CREATE OPERATOR indb.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_catalog.texteq)",
            "CREATE FUNCTION indb.fail(message varchar, anchor integer) RETURNS double precision LANGUAGE sql RETURN 1",
            "ALTER DEFAULT PRIVILEGES FOR ROLE indb_versions GRANT EXECUTE ON FUNCTIONS TO PUBLIC",
        ):
            _attempt(conn, statement, role)
    assert migrated_conn.execute("SELECT to_regclass('indb.mine') IS NULL").fetchone()[0]


@pytest.mark.parametrize("body", [
    # reaches beyond pg_catalog's immutable functions: each would run as a superuser who scores
    "RETURN pg_catalog.length(pg_catalog.pg_read_file('/etc/passwd'))::double precision",
    "RETURN pg_catalog.length(pg_catalog.set_config('role', 'postgres', false))::double precision",
    "RETURN (SELECT count(*) FROM pg_catalog.pg_authid)::double precision",
    "RETURN pg_catalog.length(pg_catalog.query_to_xml('SELECT 1', true, true, '')::text)::double precision",
    "RETURN public.planted($1)",
    "BEGIN ATOMIC SELECT 1.0::double precision; END",
])
def test_a_version_function_may_reach_only_pg_catalog_and_indb(world, migrated_conn, body):
    migrated_conn.execute("CREATE OR REPLACE FUNCTION public.planted(x double precision) RETURNS double precision"
                          " LANGUAGE sql VOLATILE RETURN x")
    migrated_conn.execute("GRANT EXECUTE ON FUNCTION public.planted(double precision) TO PUBLIC")
    with connect(world.dsn) as conn:
        _attempt(conn, f'CREATE OR REPLACE FUNCTION indb."m@1/predict"(double precision, double precision, double precision)'
                       f" RETURNS double precision LANGUAGE sql VOLATILE {body}", "indb_versions",
                 DENIED + (psycopg.errors.UndefinedFunction,))


@pytest.mark.parametrize("ddl", [
    # a string body may hold several statements, and is parsed under the caller's search_path
    "LANGUAGE sql AS 'SELECT 1.0::double precision'",
    # a PL/pgSQL body cannot be analysed: it must run as indb_versions, not as the caller
    "LANGUAGE plpgsql AS 'BEGIN RETURN 1.0; END'",
    "LANGUAGE plpgsql SET search_path = public AS 'BEGIN RETURN 1.0; END'",
    "LANGUAGE plpgsql SECURITY DEFINER AS 'BEGIN RETURN 1.0; END'",
    "LANGUAGE sql SECURITY DEFINER RETURN 1.0",
    "LANGUAGE sql SET search_path = public RETURN 1.0",
])
def test_version_functions_must_be_sql_standard_or_contained(world, ddl):
    with connect(world.dsn) as conn:
        _attempt(conn, f'CREATE OR REPLACE FUNCTION indb."m@1/predict"(double precision, double precision, double precision)'
                       f" RETURNS double precision {ddl}", "indb_versions")


def test_a_contained_plpgsql_body_cannot_escalate_when_a_superuser_scores(world, migrated_conn):
    """The one body the guard cannot read runs with indb_versions' rights, not the caller's."""
    me = world.name
    fn = migrated_conn.execute("SELECT fn::text FROM indb.version_functions WHERE model = 'm' AND output = 'proba'").fetchone()[0]
    body = sql.Literal(f"BEGIN EXECUTE 'ALTER ROLE {me} SUPERUSER'; RETURN ARRAY[1.0, 0.0]; END")
    with connect(world.dsn) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL ROLE indb_versions")
            conn.execute(sql.SQL("CREATE OR REPLACE FUNCTION {} RETURNS double precision[] LANGUAGE plpgsql VOLATILE"
                                 " SECURITY DEFINER SET search_path = pg_catalog, indb, pg_temp AS {}").format(sql.SQL(fn), body))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        migrated_conn.execute("SELECT indb.predict_proba('m', s) FROM src AS s LIMIT 1")
    assert not _is_superuser(migrated_conn, me)
    # and indb validate names the changed function
    report = validate(migrated_conn.info.dsn)
    assert any("m@1" in p and "proba" in p for p in report.problems), report.problems


@pytest.mark.parametrize("grantee", ["PUBLIC", "{me}", "pg_read_server_files"])
def test_a_deployer_cannot_grant_version_functions_outside_indb_grant(world, migrated_conn, grantee):
    fn = migrated_conn.execute("SELECT fn::text FROM indb.version_functions WHERE model = 'm' AND output = 'predict'").fetchone()[0]
    who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee.format(me=world.name))
    with connect(world.dsn) as conn:
        # as themselves a deployer holds no grant option: refused, or nothing granted (a warning)
        for statement in (sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(fn), who),
                          sql.SQL("GRANT SELECT ON indb.versions TO {}").format(who)):
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # as the functions' owner the guard refuses it
        _attempt(conn, sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(fn), who), "indb_versions")
    acl = migrated_conn.execute("SELECT proacl::text[] FROM pg_proc WHERE oid = %s::regprocedure", [fn]).fetchone()[0]
    assert not any(entry.startswith("=") or entry.startswith(world.name) for entry in acl), acl
    assert validate(migrated_conn.info.dsn).ok


def test_a_version_is_immutable_even_for_the_tables_owner(world, migrated_conn):
    with connect(world.dsn) as conn:
        for statement in (
            "UPDATE indb.versions SET ir = ir || ' ' WHERE model = 'g'",
            "UPDATE indb.versions SET ir_sha256 = repeat('0', 64), ir = '{}' WHERE model = 'g'",
            "UPDATE indb.versions SET artifact_sha256 = repeat('0', 64) WHERE model = 'g'",
            "UPDATE indb.versions SET engine = 'sql' WHERE model = 'g'",
            # where it came from, and who retired it (core 0014), are as immutable
            "UPDATE indb.versions SET source_uri = 'models:/other/1', run_id = 'x' WHERE model = 'g'",
            "UPDATE indb.versions SET metrics = '{\"auc\": 1}' WHERE model = 'g'",
            "UPDATE indb.versions SET retired_by = 'someone else' WHERE model = 'g'",
            "DELETE FROM indb.audit",
            "INSERT INTO indb.audit (action, model) VALUES ('deploy', 'g')",
            "DELETE FROM indb.versions WHERE model = 'g'",
            "DELETE FROM indb.alias_history",
            "UPDATE indb.alias_history SET moved_by = 'someone else'",
            "TRUNCATE indb.versions CASCADE",
            # a new version whose checksum does not cover its IR
            "INSERT INTO indb.versions (model, version, ir, ir_sha256, artifact_sha256, features, outputs, engine)"
            " VALUES ('g', 9, '{}', repeat('a', 64), repeat('b', 64), '[]', '{predict}', 'sql')",
        ):
            _attempt(conn, statement, None, DENIED + (psycopg.errors.CheckViolation,))
    with migrated_conn.transaction():
        migrated_conn.execute("SET LOCAL ROLE indb_owner")
        _attempt(migrated_conn, "UPDATE indb.versions SET ir = ir || ' ', ir_sha256 = encode(sha256(convert_to(ir || ' ', 'UTF8')), 'hex')")
        _attempt(migrated_conn, "UPDATE indb.versions SET source_uri = 'elsewhere'")
    assert validate(migrated_conn.info.dsn).ok


def test_the_guard_cannot_be_dropped_or_disabled_by_a_deployer(world):
    with connect(world.dsn) as conn:
        for role in ROLES:
            for statement in ("DROP EVENT TRIGGER indb_ddl_guard", "ALTER EVENT TRIGGER indb_ddl_guard DISABLE",
                              "ALTER TABLE indb.versions DISABLE TRIGGER versions_immutable",
                              "DROP TRIGGER versions_immutable ON indb.versions",
                              "ALTER TABLE indb.versions DROP CONSTRAINT versions_ir_checksum",
                              "SET session_replication_role = replica"):
                _attempt(conn, statement, role)


def test_deploy_promote_rollback_retire_bind_work_for_a_deployer(world, migrated_dsn, migrated_conn):
    import indb

    dave = world.dsn
    assert deploy(dave, train_lr().set_params(C=0.3).fit([[0, 0, 0], [1, 1, 1]], [0, 1]), "m").version == 2
    assert deploy(dave, train_gb(), "g2", engine="plpython").engine == "plpython"  # the server checks its IR
    indb.bind("m", "src", dsn=dave)
    indb.promote("m", 1, dsn=dave)
    indb.rollback("m", dsn=dave)
    indb.promote("m", 1, dsn=dave)
    indb.retire("m", 2, dsn=dave)
    assert migrated_conn.execute("SELECT count(indb.predict('m', s)) FROM src AS s").fetchone()[0] == 20
    owners = {r[0] for r in migrated_conn.execute(
        "SELECT pg_get_userbyid(p.proowner) FROM pg_proc p JOIN indb.version_functions f ON f.fn::oid = p.oid")}
    assert owners == {"indb_versions"}
    assert validate(migrated_dsn).ok
