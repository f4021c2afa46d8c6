"""Every command (but compile, migrate, status and validate, which report versions
themselves) checks first that the database's catalog is the one this indb was made for:
an older one ends in one line that says to run `indb migrate`, a newer one in one line
naming both versions, exit 1 and nothing done."""

from __future__ import annotations

import psycopg
import pytest
from sklearn.linear_model import LinearRegression

import indb
from indb import errors
from indb.catalog.connection import connect
from indb.catalog.migrator import CORE, require_current, shipped
from tests.helpers import indb as run_indb
from tests.helpers import one_line_error

LATEST = shipped(CORE)[0]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import skops.io

    path = tmp_path_factory.mktemp("model") / "lr.skops"
    skops.io.dump(LinearRegression().fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [0.0, 1.0, 3.0]), path)
    return path


def _refused(dsn: str, model_file, expected: str, commands=("models", "deploy")) -> None:
    """A reader's and a writer's command (each run costs a process start: keep them few)."""
    known = {"models": ("models",), "deploy": ("deploy", str(model_file), "--name", "lr"), "log": ("log",)}
    for command in (known[c] for c in commands):
        run = run_indb("--dsn", dsn, *command)
        line = one_line_error(run)
        assert run.returncode == 1 and expected in line, (command, line)
        assert run.stdout == ""


def test_an_older_catalog_says_run_indb_migrate(pg_dsn, pg_conn, model_file):
    indb.migrate(pg_dsn, to=5)
    _refused(pg_dsn, model_file, f"core migration 0005 is applied, this indb needs {LATEST:04d}; a superuser runs `indb migrate`",
             ("models", "deploy", "log"))
    assert pg_conn.execute("SELECT count(*) FROM indb.models").fetchone()[0] == 0, "nothing half-done"


def test_a_newer_catalog_is_refused_naming_both_versions(migrated_dsn, migrated_conn, model_file):
    migrated_conn.execute("INSERT INTO indb.schema_migrations VALUES ('core', 99, 'future', repeat('0', 64), now(), 'x', 0, true)")
    _refused(migrated_dsn, model_file, f"core migration 0099 is applied, this indb knows up to {LATEST:04d}")
    assert migrated_conn.execute("SELECT count(*) FROM indb.models").fetchone()[0] == 0
    with pytest.raises(errors.MigrationError, match="newer than this indb"):
        indb.deploy(str(model_file), "lr", dsn=migrated_dsn)


def test_changed_definitions_and_a_scorer_get_the_same_check(migrated_dsn, migrated_conn, model_file, pg_role):
    scorer = pg_role(migrated_dsn, "indb_scorer")
    with connect(scorer.dsn, purpose="test") as c:
        require_current(c)  # a scorer may not read the history tables; indb.catalog_state() reads them
    migrated_conn.execute("INSERT INTO indb.schema_definitions (component, name, sha256, execution_ms)"
                          " VALUES ('core', 'bindings', repeat('1', 64), 0)")
    _refused(migrated_dsn, model_file, "the indb catalog's core definitions (bindings) are not this indb's: a superuser runs `indb migrate`",
             ("models",))
    with connect(scorer.dsn, purpose="test") as c, pytest.raises(errors.MigrationError, match=r"definitions \(bindings\)"):
        require_current(c)
    # status and validate still report, and migrate puts the definition back
    assert run_indb("--dsn", migrated_dsn, "status").returncode == 0
    indb.migrate(migrated_dsn)
    assert run_indb("--dsn", migrated_dsn, "models").returncode == 0


def test_no_catalog_at_all(pg_dsn, model_file):
    line = one_line_error(run_indb("--dsn", pg_dsn, "models"))
    assert "this database has no indb catalog (schema indb): a superuser runs `indb migrate` first" in line
    with psycopg.connect(pg_dsn) as c:
        assert c.execute("SELECT to_regnamespace('indb')").fetchone()[0] is None
