"""Migrations that run at the same time, or die half-way: real processes, real PostgreSQL."""

import signal
import subprocess
import time
from pathlib import Path

import psycopg

from indb.catalog.localpg import Cluster
from indb.catalog.migrator import load_migrations
from tests.helpers import INDB, REPO, advisory_locks, clean_env, history, indb, one_line_error, popen_with_source

CORE = [(m.version, True) for m in load_migrations("core")]
SLOW = REPO / "tests" / "migrations_slow"
GROUP_ROLES = ["indb_auditor", "indb_deployer", "indb_log_writer", "indb_owner", "indb_scorer"]


def _start_migrates(dsns: list[str]) -> list[subprocess.Popen]:
    return [subprocess.Popen([str(INDB), "--dsn", dsn, "migrate", "--lock-timeout", "120"], env=clean_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for dsn in dsns]


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    outputs = [p.communicate(timeout=180) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def test_eight_concurrent_migrates_on_an_empty_database(pg_dsn, pg_conn):
    results = _finish(_start_migrates([pg_dsn] * 8))
    assert [code for code, _, _ in results] == [0] * 8, results
    assert history(pg_conn) == CORE
    # Exactly one process applied each version; the others found nothing to do.
    applied = [line for _, out, _ in results for line in out.splitlines() if ": applied " in line]
    assert sorted(line.split()[2] for line in applied) == [m.filename for m in load_migrations("core")]
    assert sum("nothing to do" in out for _, out, _ in results) == 7
    assert advisory_locks(pg_conn) == []


def test_sigkill_in_a_slow_migration_leaves_no_trace_and_no_lock(pg_dsn, pg_conn):
    assert indb("--dsn", pg_dsn, "migrate", "--to", "1").returncode == 0
    slow = popen_with_source("slowtest", SLOW, "--dsn", pg_dsn, "migrate", "--component", "slowtest")
    try:
        backend = _wait_for_sleeping_backend(pg_conn, slow)
        # It holds the migration lock, and the marker table exists inside its transaction.
        assert [(pid, granted) for pid, _, _, granted in advisory_locks(pg_conn)] == [(backend, True)]
        slow.send_signal(signal.SIGKILL)
        slow.wait(timeout=10)
    finally:
        if slow.poll() is None:
            slow.kill()
    assert slow.returncode == -signal.SIGKILL

    # The next migrate gets the lock within its timeout, well before the killed
    # statement's pg_sleep(120) would have ended on its own.
    started = time.monotonic()
    following = indb("--dsn", pg_dsn, "migrate", "--lock-timeout", "20")
    took = time.monotonic() - started
    assert following.returncode == 0, (following.stderr, took)
    assert history(pg_conn) == CORE
    assert history(pg_conn, "slowtest") == []
    assert pg_conn.execute("SELECT to_regclass('indb.slow_migration_marker')").fetchone()[0] is None
    assert advisory_locks(pg_conn) == []
    assert not pg_conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend]).fetchall()


def _wait_for_sleeping_backend(conn, proc: subprocess.Popen, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
            " AND application_name = 'indb migrate' AND query LIKE %s", ["%pg_sleep(120)%"]).fetchone()
        if row:
            return row[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the slow migration never started")


def _group_roles(conn) -> list[tuple]:
    return conn.execute(
        "SELECT rolname, rolcanlogin, rolinherit FROM pg_roles WHERE rolname LIKE 'indb\\_%' ORDER BY rolname").fetchall()


def test_two_databases_of_one_cluster_create_the_roles_at_once(fresh_cluster):
    for name in ("db_a", "db_b"):
        fresh_cluster.ensure_database(name)
    dsn_a, dsn_b = fresh_cluster.dsn("db_a"), fresh_cluster.dsn("db_b")
    with psycopg.connect(fresh_cluster.dsn("postgres"), autocommit=True) as admin:
        assert _group_roles(admin) == []
        # Hold an uncommitted CREATE ROLE so that database b's migration has to wait on
        # it and then find the role made by someone else: the race, made deterministic.
        with psycopg.connect(fresh_cluster.dsn("postgres")) as racer:
            racer.execute("CREATE ROLE indb_owner NOLOGIN")
            [waiting] = _start_migrates([dsn_b])
            _wait_until(lambda: admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'db_b' AND wait_event_type = 'Lock'"
            ).fetchone()[0] == 1)
            racer.commit()
        # and both databases racing freely, three migrators each
        results = _finish([waiting] + _start_migrates([dsn_a] * 3 + [dsn_b] * 2))
        assert [code for code, _, _ in results] == [0] * 6, results
        assert _group_roles(admin) == [
            ("indb_auditor", False, True), ("indb_compute", False, True), ("indb_deployer", False, False),
            ("indb_log_writer", False, True), ("indb_owner", False, True), ("indb_scorer", False, True),
            ("indb_scorer_base", False, True), ("indb_versions", False, True)]
        assert admin.execute("SELECT pg_has_role('indb_deployer', 'indb_versions', 'MEMBER')").fetchone()[0]
        assert not admin.execute("SELECT pg_has_role('indb_deployer', 'indb_owner', 'MEMBER')").fetchone()[0]
    for dsn in (dsn_a, dsn_b):
        with psycopg.connect(dsn) as conn:
            assert history(conn) == CORE


def _wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_group_role_that_can_log_in_is_refused(fresh_cluster):
    with psycopg.connect(fresh_cluster.dsn("postgres"), autocommit=True) as admin:
        admin.execute("CREATE ROLE indb_auditor LOGIN")
    run = indb("--dsn", fresh_cluster.dsn("postgres"), "migrate")
    line = one_line_error(run)
    assert "role indb_auditor exists with LOGIN or SUPERUSER" in line and "rolled back" in line
    with psycopg.connect(fresh_cluster.dsn("postgres")) as conn:
        assert conn.execute("SELECT to_regnamespace('indb')").fetchone()[0] is None


def test_private_cluster_is_reused_and_survives_a_restart(fresh_cluster):
    # The main job keeps one cluster under .indb/; starting it again must reuse it.
    dsn = fresh_cluster.ensure_started(database="indb")
    assert Path(fresh_cluster.dsnfile).read_text().strip() == dsn
    assert indb("--dsn", dsn, "migrate").returncode == 0
    fresh_cluster.stop()
    assert not fresh_cluster.is_running()
    again = Cluster(fresh_cluster.root).ensure_started(database="indb")
    with psycopg.connect(again) as conn:
        assert history(conn) == CORE
