"""The database fixtures themselves: real engines, isolation, and CI's refusal to skip."""

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from indb.catalog.migrator import COMPONENTS, load_migrations

REPO = Path(__file__).resolve().parent.parent


def test_plpython_can_import_numpy(pg_conn):
    pg_conn.execute("CREATE EXTENSION plpython3u")
    pg_conn.execute("""
        CREATE FUNCTION numpy_sum(xs double precision[]) RETURNS double precision
        LANGUAGE plpython3u AS $$
import numpy
return float(numpy.asarray(xs, dtype=numpy.float64).sum())
$$""")
    assert pg_conn.execute("SELECT numpy_sum(ARRAY[1.5, 2.25, -1])").fetchone()[0] == 2.75
    pg_conn.execute("""
        CREATE FUNCTION numpy_version() RETURNS text LANGUAGE plpython3u AS $$
import numpy
return numpy.__version__
$$""")
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?\S*", pg_conn.execute("SELECT numpy_version()").fetchone()[0])


def test_each_test_gets_an_empty_database_of_its_own(pg_conn, pg_server):
    name = pg_conn.execute("SELECT current_database()").fetchone()[0]
    assert name.startswith("t_") and name != "postgres"
    assert pg_conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'indb'").fetchone()[0] == 0
    others = pg_conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name]).fetchone()[0]
    assert others == 1
    assert pg_conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]


def test_migrated_database_has_every_component_at_its_latest_version(migrated_conn):
    rows = migrated_conn.execute(
        "SELECT component, max(version) FROM indb.schema_migrations WHERE success GROUP BY component").fetchall()
    expected = {c: load_migrations(c)[-1].version for c in COMPONENTS}
    assert dict(rows) == expected
    runtime = migrated_conn.execute("SELECT indb.plpython_runtime()").fetchone()[0]
    assert set(runtime) == {"python", "numpy"}


def test_migrated_databases_are_independent_copies(migrated_dsn, pg_server, pg_migrated_template):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO indb.models (name) VALUES ('only_here')")
    with pg_server.connect(pg_migrated_template) as conn:
        assert conn.execute("SELECT count(*) FROM indb.models").fetchone()[0] == 0


def test_schema_connection_writes_into_its_own_schema(pg_schema_conn):
    pg_schema_conn.execute("CREATE TABLE t (x int)")
    schema = pg_schema_conn.execute("SELECT relnamespace::regnamespace::text FROM pg_class WHERE relname = 't'").fetchall()
    assert len(schema) == 1 and schema[0][0].startswith("s_")


def test_login_role_helper_makes_a_role_without_rights(migrated_dsn, pg_role):
    scorer = pg_role(migrated_dsn, "indb_scorer")
    with psycopg.connect(scorer.dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == scorer.name
        assert conn.execute("SELECT pg_has_role(current_user, 'indb_scorer', 'MEMBER')").fetchone()[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO indb.models (name) VALUES ('x')")


def test_duckdb_and_sqlite_fixtures_run_sql(duckdb_conn, sqlite_conn):
    assert duckdb_conn.execute("SELECT CAST(1.5 AS DOUBLE) * 2").fetchone()[0] == 3.0
    assert sqlite_conn.execute("SELECT 1.5 * 2").fetchone()[0] == 3.0


def _pytest_without_postgres(ci: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "INDB_"))}
    env.update(CI=ci, INDB_PG_BINDIR="/nonexistent/indb-test", DOCKER_HOST="unix:///nonexistent/docker.sock")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "tests/test_fixtures.py::test_plpython_can_import_numpy"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_missing_database_is_a_failure_under_ci():
    run = _pytest_without_postgres("true")
    assert run.returncode != 0, run.stdout
    assert "1 error" in run.stdout and "CI=true" in run.stdout, run.stdout


def test_missing_database_is_a_skip_outside_ci():
    run = _pytest_without_postgres("")
    assert run.returncode == 0, run.stdout
    assert "1 skipped" in run.stdout and "no PostgreSQL for the tests" in run.stdout, run.stdout


def test_clusters_left_by_a_dead_test_process_are_reaped(fresh_cluster):
    from tests.db import _reap_stale_clusters

    dead = subprocess.Popen(["true"])
    dead.wait()
    (fresh_cluster.root / "owner.pid").write_text(f"{dead.pid}\n")
    assert fresh_cluster.is_running()
    _reap_stale_clusters()
    assert not fresh_cluster.root.exists()


def test_indb_test_dsn_is_used_when_set(pg_server):
    # A nested session pointed at this session's server must use it, not start its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "INDB_"))}
    env.update(INDB_TEST_DSN=pg_server.admin_dsn, INDB_PG_BINDIR="/nonexistent/indb-test")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_fixtures.py::test_plpython_can_import_numpy"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout
    assert f"postgresql: {pg_server.version} (INDB_TEST_DSN)" in run.stdout
    assert "[INDB_TEST_DSN]" in run.stdout and "1 passed" in run.stdout


def test_a_run_stopped_with_sigterm_removes_its_cluster(tmp_path):
    (tmp_path / "test_sleeps.py").write_text(
        "import time\n\ndef test_sleep(pg_conn):\n    print('READY', flush=True)\n    time.sleep(120)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "INDB_"))}
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-s", "-p", "tests.db", "-p", "no:cacheprovider",
                            "--rootdir", str(tmp_path), str(tmp_path / "test_sleeps.py")],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in run.stdout:
            if "READY" in line:
                break
        owned = [p.parent for p in Path(tempfile.gettempdir()).glob("indb-test-pg-*/owner.pid")
                 if p.read_text().strip() == str(run.pid)]
        assert len(owned) == 1
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    assert not owned[0].exists()
