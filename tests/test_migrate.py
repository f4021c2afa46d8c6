"""The migrations runner: files, checksums, dry runs, failures, components (real PostgreSQL)."""

import subprocess
import sys

import psycopg
import pytest

import indb
from indb import errors
from indb.catalog.migrator import (
    COMPONENTS,
    load_migrations,
    lock_key,
    parse_migration,
    sha256_of,
    split_statements,
)
from tests.helpers import (
    REPO,
    copy_track,
    fingerprint,
    history,
    indb as run_indb,
    indb_with_source,
    one_line_error,
)

CORE_LATEST = load_migrations("core")[-1].version
PLPYTHON_LATEST = load_migrations("plpython")[-1].version


# -- files, without a database -----------------------------------------------------


def test_split_statements_respects_quotes_comments_and_dollar_bodies():
    text = (
        "-- leading comment; with a semicolon\n"
        "SELECT 'a;b', E'it\\'s;', \"odd;name\" FROM t;\n"
        "/* block; /* nested; */ still comment; */\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;\n"
        "DO $$ BEGIN PERFORM 1; END $$;\n"
        "SELECT $1::int, a$b FROM x  -- no semicolon at the end"
    )
    statements = split_statements(text)
    assert [s.line for s in statements] == [2, 4, 5, 6]
    assert statements[0].text == "SELECT 'a;b', E'it\\'s;', \"odd;name\" FROM t"
    assert statements[1].text.endswith("$body$ BEGIN RETURN 1; END $body$")
    assert statements[2].text == "DO $$ BEGIN PERFORM 1; END $$"
    assert statements[3].text.startswith("SELECT $1::int, a$b FROM x")


def test_unterminated_dollar_quote_is_refused_naming_the_file():
    with pytest.raises(errors.MigrationError, match=r"0007_bad\.sql: unterminated \$fn\$ quote starting at line 2"):
        parse_migration("core", "0007_bad.sql", "SELECT 1;\nCREATE FUNCTION f() AS $fn$ oops;\n")


def test_checksum_ignores_line_endings_and_nothing_else():
    lf = "CREATE TABLE t (a int);\nSELECT 1;\n"
    assert sha256_of(lf) == sha256_of(lf.replace("\n", "\r\n")) == sha256_of(lf.replace("\n", "\r"))
    assert sha256_of(lf) != sha256_of(lf.replace("int", "bigint"))
    assert sha256_of(lf) != sha256_of(lf + "\n")


def test_no_transaction_file_must_hold_exactly_one_statement():
    ok = parse_migration("core", "0009_index.sql", "-- indb:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n")
    assert not ok.transactional and len(ok.statements) == 1
    with pytest.raises(errors.MigrationError, match="0009_two.sql is marked indb:no-transaction but holds 2"):
        parse_migration("core", "0009_two.sql", "-- indb:no-transaction\nSELECT 1;\nSELECT 2;\n")


def test_unknown_directive_and_bad_file_name_are_refused():
    with pytest.raises(errors.MigrationError, match="unknown header directive '-- indb:no-transactoin"):
        parse_migration("core", "0009_x.sql", "-- indb:no-transactoin\nSELECT 1;\n")
    with pytest.raises(errors.MigrationError, match="is not named NNNN_name.sql"):
        parse_migration("core", "9_x.sql", "SELECT 1;\n")


def test_two_files_with_one_version_are_refused(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;\n")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;\n")
    with pytest.raises(errors.MigrationError, match="0001_a.sql and 0001_b.sql share version 0001"):
        load_migrations("core", tmp_path)


def test_shipped_migrations_are_numbered_from_one_and_pass_pgspot():
    files = []
    for component in COMPONENTS:
        migrations = load_migrations(component)
        assert [m.version for m in migrations] == list(range(1, len(migrations) + 1)), component
        files += [str(REPO / "migrations" / (COMPONENTS[component] or ".") / m.filename) for m in migrations]
    run = subprocess.run([sys.executable, "-m", "pgspot", "--ignore-lang", "plpython3u", "-a", *files],
                         capture_output=True, text=True)
    assert "TOTAL: Errors: 0 Warnings: 0 Unknown: 0" in run.stdout, run.stdout


# -- against PostgreSQL ------------------------------------------------------------


def test_migrate_builds_the_catalog_and_a_second_run_is_a_no_op(pg_dsn, pg_conn):
    first = run_indb("--dsn", pg_dsn, "migrate")
    assert first.returncode == 0, first.stderr
    assert f"core: now at version {CORE_LATEST:04d}" in first.stdout
    assert history(pg_conn) == [(v, True) for v in range(1, CORE_LATEST + 1)]
    before = fingerprint(pg_conn)

    second = run_indb("--dsn", pg_dsn, "migrate")
    assert second.returncode == 0, second.stderr
    assert f"core: already at version {CORE_LATEST:04d}, nothing to do" in second.stdout
    assert "applied" not in second.stdout
    assert fingerprint(pg_conn) == before


@pytest.mark.parametrize("start_at", [None, 1])
def test_dry_run_prints_the_sql_and_changes_nothing(pg_dsn, pg_conn, start_at):
    if start_at:
        indb.migrate(pg_dsn, to=start_at)
    before = fingerprint(pg_conn)
    run = run_indb("--dsn", pg_dsn, "migrate", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert fingerprint(pg_conn) == before
    assert ("CREATE SCHEMA indb AUTHORIZATION indb_owner;" in run.stdout) == (start_at is None)
    assert "CREATE TABLE indb.models (" in run.stdout
    assert "SELECT indb.log_ensure_partitions(7);" in run.stdout
    # one transaction per migration file, and one for the repeatable definitions after them
    assert run.stdout.count("BEGIN;") == run.stdout.count("COMMIT;") == CORE_LATEST - (start_at or 0) + 1
    assert "-- core definition compute_score (41_compute_score.sql), sha256 " in run.stdout


def test_changed_checksum_fails_validate_and_migrate_naming_the_version(pg_dsn, pg_conn, tmp_path):
    # Apply a 0002 that differs from the shipped one, as if the file was edited afterwards.
    edited = (REPO / "migrations" / "0002_registry.sql").read_text().replace(
        "CREATE INDEX versions_artifact", "-- an edit after the fact\nCREATE INDEX versions_artifact")
    indb.migrate(pg_dsn, source=copy_track(tmp_path / "edited", edit={"0002_registry.sql": edited}))

    validate = run_indb("--dsn", pg_dsn, "validate")
    assert "core migration 0002 (0002_registry.sql) was changed after it was applied" in validate.stdout
    assert "0002" in one_line_error(validate)

    migrate = run_indb("--dsn", pg_dsn, "migrate")
    line = one_line_error(migrate)
    assert "core migration 0002 (0002_registry.sql) was changed after it was applied" in line
    assert "put the change in a new migration" in line

    status = run_indb("--dsn", pg_dsn, "status", "--exit-code")
    assert status.returncode == 1 and "PROBLEM: core migration 0002" in status.stdout
    assert history(pg_conn) == [(v, True) for v in range(1, CORE_LATEST + 1)]


def test_line_ending_change_alone_is_not_a_changed_checksum(pg_dsn, tmp_path):
    crlf = copy_track(tmp_path / "crlf", crlf=True)
    assert b"\r\n" in (crlf / "0002_registry.sql").read_bytes()
    indb.migrate(pg_dsn, source=crlf)
    validate = run_indb("--dsn", pg_dsn, "validate")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    migrate = run_indb("--dsn", pg_dsn, "migrate")
    assert migrate.returncode == 0 and "nothing to do" in migrate.stdout
    assert run_indb("--dsn", pg_dsn, "status", "--exit-code").returncode == 0


def test_failing_statement_rolls_back_its_migration_and_names_file_and_statement(pg_dsn, pg_conn, tmp_path):
    broken = "-- creates a table, then fails\nCREATE TABLE indb.half_done (a int);\n\nSELECT 1 / 0;\n"
    source = copy_track(tmp_path / "broken", edit={"0099_broken.sql": broken})
    run = indb_with_source("core", source, "--dsn", pg_dsn, "migrate")
    line = one_line_error(run)
    assert run.returncode == 1
    assert "core migration 0099 (0099_broken.sql) failed at statement 2 (line 4): SELECT 1 / 0" in line
    assert "division by zero" in line and "rolled back" in line
    # Everything before it is applied; nothing of it is.
    assert history(pg_conn) == [(v, True) for v in range(1, CORE_LATEST + 1)]
    assert pg_conn.execute("SELECT to_regclass('indb.half_done')").fetchone()[0] is None


def test_database_newer_than_the_code_stops_the_run(pg_dsn, tmp_path):
    future = copy_track(tmp_path / "future", edit={"0098_future.sql": "CREATE TABLE indb.future (a int);\n"})
    indb.migrate(pg_dsn, source=future)
    for command in ("migrate", "validate"):
        line = one_line_error(run_indb("--dsn", pg_dsn, command))
        assert "the database has core migration 0098 (future) applied" in line
        assert "the database is newer than the code" in line
    assert run_indb("--dsn", pg_dsn, "status", "--exit-code").returncode == 1


def test_to_stops_at_a_version_and_never_goes_back(pg_dsn, pg_conn):
    run = run_indb("--dsn", pg_dsn, "migrate", "--to", "2")
    assert run.returncode == 0, run.stderr
    assert history(pg_conn) == [(1, True), (2, True)]
    status = run_indb("--dsn", pg_dsn, "status", "--exit-code")
    assert status.returncode == 1 and "0003 prediction_log" in status.stdout and "pending" in status.stdout
    back = run_indb("--dsn", pg_dsn, "migrate", "--to", "1")
    assert "already at version 0002, past --to 0001" in one_line_error(back)
    unknown = run_indb("--dsn", pg_dsn, "migrate", "--to", "77")
    assert unknown.returncode == 2 and "there is no core migration 0077" in one_line_error(unknown)


def test_out_of_order_pending_migration_is_refused(pg_dsn, tmp_path):
    source = copy_track(tmp_path / "gap")
    for later in sorted(source.glob("0*.sql"))[2:]:
        later.unlink()  # keep 0001 and 0002, and move 0002 past a gap
    (source / "0002_registry.sql").rename(source / "0005_registry.sql")
    indb.migrate(pg_dsn, source=source)
    (source / "0004_late.sql").write_text("CREATE TABLE indb.late (a int);\n")
    with pytest.raises(errors.MigrationError, match="0004_late.sql\\) is not applied but core migration 0005 is"):
        indb.migrate(pg_dsn, source=source)


def test_no_transaction_migration_runs_in_autocommit(migrated_dsn, migrated_conn, tmp_path):
    index = "-- indb:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS models_by_time ON indb.models (created_at);\n"
    result = indb.migrate(migrated_dsn, source=copy_track(tmp_path / "nt", edit={"0097_index.sql": index}))
    assert [m.version for m, _ in result.applied] == [97]
    assert migrated_conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'indb.models_by_time'::regclass"
                                 ).fetchone()[0]
    assert history(migrated_conn)[-1] == (97, True)


def test_failed_no_transaction_migration_is_recorded_and_retried(migrated_dsn, migrated_conn, tmp_path):
    bad = "-- indb:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON indb.models (no_such_column);\n"
    source = copy_track(tmp_path / "nt", edit={"0097_index.sql": bad})
    with pytest.raises(errors.MigrationError, match="0097_index.sql\\) failed at statement 1 .* outside a transaction"):
        indb.migrate(migrated_dsn, source=source)
    assert history(migrated_conn)[-1] == (97, False)
    (source / "0097_index.sql").write_text(bad.replace("no_such_column", "created_at"))
    indb.migrate(migrated_dsn, source=source)
    assert history(migrated_conn)[-1] == (97, True)


def test_plpython_component_needs_the_core_catalog_first(pg_dsn, pg_conn):
    run = run_indb("--dsn", pg_dsn, "migrate", "--component", "plpython")
    assert "run `indb migrate` (as a superuser) before `indb migrate --component plpython`" in one_line_error(run)
    assert run_indb("--dsn", pg_dsn, "migrate").returncode == 0
    assert run_indb("--dsn", pg_dsn, "migrate", "--component", "plpython").returncode == 0
    assert history(pg_conn, "plpython") == [(v, True) for v in range(1, PLPYTHON_LATEST + 1)]


def test_status_says_which_components_are_installed(pg_dsn):
    assert run_indb("--dsn", pg_dsn, "migrate").returncode == 0
    run = run_indb("--dsn", pg_dsn, "status", "--exit-code")
    assert run.returncode == 0, run.stdout
    assert f"component core: installed, version {CORE_LATEST:04d} of {CORE_LATEST:04d} (up to date)" in run.stdout
    assert f"component plpython: not installed, {PLPYTHON_LATEST} pending (optional: indb migrate --component plpython" in run.stdout
    assert run_indb("--dsn", pg_dsn, "migrate", "--component", "plpython").returncode == 0
    run = run_indb("--dsn", pg_dsn, "status")
    assert f"component plpython: installed, version {PLPYTHON_LATEST:04d} of {PLPYTHON_LATEST:04d} (up to date)" in run.stdout
    assert "extensions: plpython3u" in run.stdout


def test_requires_refuses_to_run_before_the_other_component(migrated_dsn, tmp_path):
    (tmp_path / "0001_needs_more.sql").write_text("-- indb:requires core 99\nSELECT 1;\n")
    with pytest.raises(errors.MigrationError, match=f"needs core migration 0099, but the database has core at {CORE_LATEST:04d}"):
        indb.migrate(migrated_dsn, component="extra", source=tmp_path)


def test_a_deployer_cannot_migrate_the_catalog(migrated_dsn, migrated_conn, pg_role, tmp_path):
    # since core 0013 no deployer can act as indb_owner: changing the catalog is a DBA's job
    deployer = pg_role(migrated_dsn, "indb_deployer")
    source = copy_track(tmp_path / "more", edit={"0096_more.sql": "CREATE TABLE indb.more (a int);\n"})
    with pytest.raises(errors.PermissionError, match="0096"):
        indb.migrate(deployer.dsn, source=source)
    assert migrated_conn.execute("SELECT to_regclass('indb.more')").fetchone()[0] is None
    assert migrated_conn.execute("SELECT count(*) FROM indb.schema_migrations WHERE version = 96").fetchone()[0] == 0


def test_an_older_catalog_elsewhere_in_the_cluster_does_not_make_a_deployer_the_owner_here(
        migrated_dsn, migrated_conn, pg_dsn, pg_role, tmp_path):
    # Another database of this cluster at core 0012: its 0001 made indb_deployer a member of
    # indb_owner, and roles are cluster-wide. Here (core 0013 and later) that buys nothing.
    indb.migrate(pg_dsn, to=12)
    deployer = pg_role(migrated_dsn, "indb_deployer")
    assert migrated_conn.execute("SELECT pg_has_role(%s, 'indb_owner', 'MEMBER')", [deployer.name]).fetchone()[0]
    source = copy_track(tmp_path / "more", edit={"0096_more.sql": "CREATE TABLE indb.more (a int);\n"})
    with pytest.raises(errors.PermissionError, match="0096.*superuser"):
        indb.migrate(deployer.dsn, source=source)
    attempts = [
        "CREATE TABLE indb.more (a int)",
        "CREATE OR REPLACE FUNCTION indb.fail(message text, anchor anyelement) RETURNS double precision LANGUAGE sql AS 'SELECT 0.0'",
        "ALTER TABLE indb.versions DISABLE TRIGGER USER",
    ]
    with psycopg.connect(deployer.dsn, autocommit=True) as conn:
        for statement in attempts:
            conn.execute("SET ROLE indb_owner")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="is a member of indb_owner"):
                conn.execute(statement)
            conn.execute("RESET ROLE")
    assert migrated_conn.execute("SELECT to_regclass('indb.more')").fetchone()[0] is None
    run = run_indb("--dsn", migrated_dsn, "validate")
    assert run.returncode != 0
    assert "role indb_deployer is a member of indb_owner" in run.stdout + run.stderr


def test_lock_timeout_names_the_holder(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True, application_name="holder-in-test") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [lock_key()])
        pid = holder.info.backend_pid
        run = run_indb("--dsn", pg_dsn, "migrate", "--lock-timeout", "1")
    line = one_line_error(run)
    assert f"held by pid {pid} (application_name 'holder-in-test'" in line
    assert f"SELECT pg_terminate_backend({pid})" in line


def test_every_component_directory_ships_as_package_data():
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    directories = {p.name for p in (REPO / "migrations").iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert directories == {d for d in COMPONENTS.values() if d}
    for directory in directories:
        assert f"indb.migrations.{directory}" in setuptools["packages"], directory
        assert setuptools["package-data"][f"indb.migrations.{directory}"] == ["*.sql"], directory
