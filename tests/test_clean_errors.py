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
