"""Issue 12, class 6: availability. A role with no grants cannot stall the registry
silently, and a bound table's owner cannot leave the registry broken by dropping it."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import sql

import indb
from indb import errors
from tests.gov import connect, deploy, make_source, train_lr


@pytest.fixture
def model(migrated_dsn, migrated_conn):
    deploy(migrated_dsn, train_lr(), "m")
    deploy(migrated_dsn, train_lr().set_params(C=0.3).fit([[0, 0, 0], [1, 1, 1]], [0, 1]), "m", promote=False)
    return "m"


def test_a_stranger_holding_the_registry_lock_gets_named_not_waited_for(model, migrated_dsn, pg_role, monkeypatch):
    stranger = pg_role(migrated_dsn)
    monkeypatch.setenv("INDB_LOCK_TIMEOUT", "1")
    with connect(stranger.dsn, application_name="squatter") as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended('indb.model:m', 0))")
        started = time.monotonic()
        with pytest.raises(errors.LockTimeout) as caught:
            indb.promote("m", 2, dsn=migrated_dsn)
        assert time.monotonic() - started < 10
        message = str(caught.value)
        assert f"pid {conn.info.backend_pid}" in message and stranger.name in message and "squatter" in message
    assert indb.promote("m", 2, dsn=migrated_dsn).previous == 1  # and once it lets go, the promote goes through


def test_dropping_a_bound_table_leaves_no_dangling_binding(model, migrated_dsn, migrated_conn, pg_role):
    owner = pg_role(migrated_dsn)
    migrated_conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(owner.name)))
    with connect(owner.dsn) as conn:
        conn.execute("CREATE TABLE mine AS SELECT g AS id, g * 0.1 AS a, g * 0.2 AS b, g * 0.3 AS c FROM generate_series(1, 5) AS g")
    indb.bind("m", "public.mine", dsn=migrated_dsn)
    with connect(owner.dsn) as conn:
        # the bound overloads depend on the table's row type: a plain DROP says so
        with pytest.raises(psycopg.errors.DependentObjectsStillExist, match="indb.predict"):
            conn.execute("DROP TABLE mine")
        conn.execute("DROP TABLE mine CASCADE")
    assert migrated_conn.execute("SELECT count(*) FROM indb.bindings").fetchone()[0] == 0
    # every registry command on the model still works, and validate is clean
    indb.promote("m", 2, dsn=migrated_dsn)
    indb.rollback("m", dsn=migrated_dsn)
    assert indb.validate(migrated_dsn).ok


def test_a_stale_binding_is_reported_tolerated_and_unbound(model, migrated_dsn, migrated_conn):
    make_source(migrated_conn, table="gone", n=5)
    indb.bind("m", "gone", dsn=migrated_dsn)
    oid = migrated_conn.execute("SELECT 'gone'::regtype::oid").fetchone()[0]
    # as a catalog from before the drop trigger: the table goes, its binding stays
    migrated_conn.execute("ALTER EVENT TRIGGER indb_ddl_dropped DISABLE")
    try:
        migrated_conn.execute("DROP TABLE gone CASCADE")
    finally:
        migrated_conn.execute("ALTER EVENT TRIGGER indb_ddl_dropped ENABLE")
    report = indb.validate(migrated_dsn)
    assert any(f"indb unbind m {oid}" in p for p in report.problems), report.problems
    indb.promote("m", 2, dsn=migrated_dsn)  # tolerated, no traceback
    assert indb.unbind("m", str(oid), dsn=migrated_dsn) == str(oid)
    assert indb.validate(migrated_dsn).ok


def test_unbind_puts_rows_back_on_the_generic_path(model, migrated_dsn, migrated_conn):
    make_source(migrated_conn, n=5)
    indb.bind("m", "src", dsn=migrated_dsn)
    bound = migrated_conn.execute("SELECT indb.predict('m', s) FROM src AS s ORDER BY id").fetchall()
    assert indb.unbind("m", "src", dsn=migrated_dsn) == "public.src"
    assert migrated_conn.execute("SELECT to_regprocedure('indb.predict(text, src)')").fetchone()[0] is None
    assert migrated_conn.execute("SELECT indb.predict('m', s) FROM src AS s ORDER BY id").fetchall() == bound
    with pytest.raises(errors.NotFoundError, match="not bound"):
        indb.unbind("m", "src", dsn=migrated_dsn)
    assert indb.validate(migrated_dsn).ok
