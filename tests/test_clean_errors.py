"""Issue 12, class 8: hostile or mistaken input ends in one line naming what to fix."""

from __future__ import annotations

import psycopg
import pytest

import indb
from indb import errors
from tests.gov import deploy, make_source, train_lr


@pytest.fixture
def model(migrated_dsn, migrated_conn):
    deploy(migrated_dsn, train_lr(), "m")
    make_source(migrated_conn, n=5)


def test_a_two_dimensional_array_is_refused_not_scored_as_null(model, migrated_conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="predict_array takes one row: .*not a 2-dimensional array"):
        migrated_conn.execute("SELECT indb.predict_array('m', ARRAY[[1, 2, 3], [4, 5, 6]]::float8[])")


@pytest.mark.parametrize("target", ["bad name.x.y.z", "a..b", '"unterminated'])
def test_a_target_that_is_not_a_table_name_is_one_line(model, migrated_dsn, migrated_conn, target):
    with pytest.raises(errors.UsageError, match="is not a table name"):
        indb.score("m", "src", target, dsn=migrated_dsn)
    with pytest.raises(psycopg.errors.InvalidName, match="indb: target .* is not a table name"):
        migrated_conn.execute("SELECT * FROM indb.score('m', 'src'::regclass, %s)", [target])


def test_a_refused_privilege_says_what_the_command_needs(migrated_conn):
    """``server_error(denied=...)``: a privilege the server refuses outside indb's own SQL
    is a PermissionError naming what the command needs (after the server's message, or
    after ``about``); without ``denied`` it gets ``translate``'s general advice."""
    from indb.catalog.connection import server_error

    migrated_conn.execute("CREATE TABLE IF NOT EXISTS denied_src (x float8)")
    migrated_conn.execute("REVOKE ALL ON denied_src FROM PUBLIC")
    migrated_conn.execute("DROP ROLE IF EXISTS denied_reader")
    migrated_conn.execute("CREATE ROLE denied_reader NOLOGIN")
    try:
        with migrated_conn.transaction(force_rollback=True):
            migrated_conn.execute("SET LOCAL ROLE denied_reader")
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
                migrated_conn.execute("SELECT x FROM public.denied_src")
    finally:
        migrated_conn.execute("DROP TABLE denied_src")
        migrated_conn.execute("DROP ROLE denied_reader")
    e = refused.value
    got = server_error(e, denied="this command reads the table with your own privileges")
    assert isinstance(got, errors.PermissionError)
    assert str(got) == "permission denied for table denied_src: this command reads the table with your own privileges"
    got = server_error(e, about="m@1", denied="reading needs a role")
    assert isinstance(got, errors.PermissionError)
    assert str(got) == "m@1: reading needs a role"
    got = server_error(e)
    assert isinstance(got, errors.PermissionError)
    assert "need a member of indb_deployer" in str(got)
