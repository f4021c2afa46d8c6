"""indb log, indb log maintain, indb log prune."""

from __future__ import annotations

import csv
import io
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, timedelta

import psycopg
import pytest
from psycopg import sql

import indb
from indb import errors
from tests.gov import connect, deploy, make_source, train_lr


def _cli(dsn, *args):
    return subprocess.run([sys.executable, "-m", "indb.cli", *args], env=dict(os.environ, INDB_DSN=dsn),
                          capture_output=True, text=True, timeout=120)


def test_log_reads_rows_and_calls_filtered_as_a_table_or_csv(migrated_dsn, migrated_conn, pg_role):
    deploy(migrated_dsn, train_lr(), "m")
    make_source(migrated_conn, n=12)
    alice = pg_role(migrated_dsn, "indb_scorer")
    migrated_conn.execute(sql.SQL("GRANT SELECT ON src TO {}").format(sql.Identifier(alice.name)))
    with connect(alice.dsn) as conn:
        conn.execute("SELECT indb.predict_logged('m', s, 'req-' || id) FROM src AS s WHERE id < 4")
    indb.score("m", "src", "scored", keep=["id"], key="id", dsn=migrated_dsn)
    cols, rows = indb.log(user=alice.name, dsn=migrated_dsn)
    assert len(rows) == 4 and {r[cols.index("entry_point")] for r in rows} == {"predict_logged"}
    cols, rows = indb.log(model="m", version=1, since="1h", calls=True, dsn=migrated_dsn)
    assert len(rows) == 5 and rows[0][cols.index("entry_point")] == "score"  # newest first
    assert indb.log(model="m", until="1h", dsn=migrated_dsn)[1] == []
    out = _cli(migrated_dsn, "log", "--model", "m", "--format", "csv", "--limit", "0")
    assert out.returncode == 0, out.stderr
    table = list(csv.reader(io.StringIO(out.stdout)))
    assert table[0][:4] == ["call_id", "called_at", "called_by", "model"] and len(table) == 1 + 16
    keys = sorted(int(r[table[0].index("row_key")]) for r in table[1:] if r[table[0].index("row_key")])
    assert keys == list(range(12))
    out = _cli(alice.dsn, "log", "--calls")
    assert out.returncode == 0 and out.stdout.count("predict_logged") == 4 and "score " not in out.stdout, out.stdout


def _day_partitions(conn, parent):
    return sorted(r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        [f"indb.{parent}"]))


def test_maintain_creates_partitions_ahead_and_reports_a_default_partition(migrated_dsn, migrated_conn, pg_role):
    # days 0..7 exist (a template migrated before a midnight the suite crossed lacks day 7)
    migrated_conn.execute("SELECT indb.log_ensure_partitions(7)")
    future = (date.today() + timedelta(days=5)).strftime("%Y%m%d")
    migrated_conn.execute(sql.SQL("DROP TABLE {}, {}").format(
        sql.Identifier("indb", "scoring_calls_p" + future), sql.Identifier("indb", "prediction_log_p" + future)))
    deployer = pg_role(migrated_dsn, "indb_deployer")
    res = indb.log_maintain(days_ahead=10, dsn=deployer.dsn)
    assert res.created == 2 * 3 + 2 and not res.problems  # days 8..10 of both tables, and day 5 again
    assert res.through == (date.today() + timedelta(days=10)).isoformat()
    migrated_conn.execute("SET ROLE indb_log_writer")
    migrated_conn.execute("CREATE TABLE indb.prediction_log_default PARTITION OF indb.prediction_log DEFAULT")
    migrated_conn.execute("RESET ROLE")
    out = _cli(deployer.dsn, "log", "maintain")
    assert out.returncode == 1 and "PROBLEM: indb.prediction_log has a DEFAULT partition" in out.stdout, out.stdout
    scorer = pg_role(migrated_dsn, "indb_scorer")
    with pytest.raises(errors.PermissionError, match="needs indb_deployer"):
        indb.log_maintain(dsn=scorer.dsn)


def _old_day(conn, days_ago: int, rows: int) -> str:
    """Partitions of both tables for a day long gone, with a call and its rows."""
    day = date.today() - timedelta(days=days_ago)
    suffix = day.strftime("%Y%m%d")
    conn.execute("SET ROLE indb_log_writer")
    for parent in ("scoring_calls", "prediction_log"):
        conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier("indb", f"{parent}_p{suffix}"), sql.Identifier("indb", parent),
            sql.Literal(f"{day} 00:00:00+00"), sql.Literal(f"{day + timedelta(days=1)} 00:00:00+00")))
    at = f"{day} 12:00:00+00"
    call = conn.execute("INSERT INTO indb.scoring_calls (called_at, model, version, ir_sha256, entry_point, rows_logged,"
                        " finished_at) VALUES (%s, 'm', 1, repeat('a', 64), 'score', %s, %s) RETURNING call_id",
                        [at, rows, at]).fetchone()[0]
    conn.execute("INSERT INTO indb.prediction_log (logged_at, call_id, features, prediction)"
                 " SELECT %s, %s, '{1,2,3}', 1 FROM generate_series(1, %s)", [at, call, rows])
    conn.execute("RESET ROLE")
    return suffix


def test_prune_drops_expired_partitions_only_and_never_holds_scoring_up(migrated_dsn, migrated_conn, pg_role):
    deploy(migrated_dsn, train_lr(), "m")
    make_source(migrated_conn, n=5)
    old = [_old_day(migrated_conn, d, 100) for d in (120, 95)]
    kept = _old_day(migrated_conn, 40, 100)
    before = {p: _day_partitions(migrated_conn, p) for p in ("scoring_calls", "prediction_log")}
    deployer = pg_role(migrated_dsn, "indb_deployer")
    scorer = pg_role(migrated_dsn, "indb_scorer")
    migrated_conn.execute(sql.SQL("GRANT SELECT ON src TO {}").format(sql.Identifier(scorer.name)))
    with pytest.raises(errors.UsageError, match="shorter than the log's minimum retention of 30 days"):
        indb.log_prune("7d", dsn=deployer.dsn)
    assert indb.log_prune("90d", dry_run=True, dsn=deployer.dsn).dropped == [
        f"indb.prediction_log_p{old[0]}", f"indb.scoring_calls_p{old[0]}",
        f"indb.prediction_log_p{old[1]}", f"indb.scoring_calls_p{old[1]}"]

    # A long scoring transaction holds the log while prune runs; another session keeps
    # scoring and must never wait long behind prune's lock requests.
    latencies, stop, failures = [], threading.Event(), []

    def score_loop():
        with connect(scorer.dsn) as conn:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    conn.execute("SELECT indb.predict_logged('m', s) FROM src AS s WHERE id = 1")
                except psycopg.Error as e:  # noqa: PERF203
                    failures.append(e)
                latencies.append((t0, time.perf_counter() - t0))

    holder = connect(scorer.dsn)
    holder.execute("BEGIN")
    holder.execute("SELECT indb.predict_logged('m', s) FROM src AS s WHERE id = 2")
    worker = threading.Thread(target=score_loop)
    worker.start()
    time.sleep(0.5)
    result = {}
    pruner = threading.Thread(target=lambda: result.setdefault("r", indb.log_prune("90d", dsn=deployer.dsn)))
    t_prune = time.perf_counter()
    pruner.start()
    time.sleep(2.0)
    assert pruner.is_alive()  # waiting for the long transaction, retrying
    holder.execute("COMMIT")
    holder.close()
    pruner.join(60)
    t_done = time.perf_counter()
    time.sleep(0.3)
    stop.set()
    worker.join(30)
    assert not failures, failures
    during = [d for t0, d in latencies if t_prune <= t0 <= t_done]
    assert len(during) > 10 and max(during) < 1.0, (len(during), max(during), statistics.median(during))
    res = result["r"]
    assert sorted(res.dropped) == sorted(f"indb.{p}_p{s}" for s in old for p in ("scoring_calls", "prediction_log"))
    assert not res.kept_busy
    after = {p: _day_partitions(migrated_conn, p) for p in ("scoring_calls", "prediction_log")}
    for parent in after:
        assert after[parent] == [p for p in before[parent] if not any(p.endswith(s) for s in old)]
        assert f"{parent}_p{kept}" in after[parent]
    assert migrated_conn.execute("SELECT count(*) FROM indb.prediction_log WHERE logged_at < now() - interval '30 days'"
                                 ).fetchone()[0] == 100
    pruned = [(e.who, e.detail["partition"]) for e in indb.audit(action="prune", dsn=migrated_dsn)]  # in the audit trail
    assert sorted(pruned) == sorted((deployer.name, p) for p in res.dropped)
    print(f"\nprune while scoring: {len(during)} logged predictions, max {max(during) * 1000:.0f} ms, "
          f"median {statistics.median(during) * 1000:.1f} ms")


def test_migration_0006_converts_rows_logged_in_0003s_format(pg_dsn, pg_conn):
    import json

    from indb.catalog.migrator import migrate

    migrate(pg_dsn, to=4)
    pg_conn.execute("INSERT INTO indb.models (name) VALUES ('old')")
    pg_conn.execute(
        "INSERT INTO indb.versions (model, version, ir, ir_sha256, artifact_sha256, features, outputs, engine)"
        " VALUES ('old', 1, '{}', encode(sha256('{}'), 'hex'), repeat('b', 64), '[[\"x\", \"float\"], [\"k\", \"text\"], [\"y\", \"float\"]]',"
        " '{predict}', 'sql')")
    pg_conn.execute("SET ROLE indb_owner")
    call = pg_conn.execute("SELECT indb.log_call('old', 1, 'score', 'src', NULL, 1.0, 'r1')").fetchone()[0]
    rows = [{"key": "1", "features": {"x": 1.5, "k": "red", "y": "NaN"}, "prediction": 0.25},
            {"key": "2", "features": {"x": None, "k": None, "y": 2}, "prediction": "yes"}]
    pg_conn.execute("SELECT indb.log_rows(%s, %s)", [call, json.dumps(rows)])
    pg_conn.execute("SELECT indb.log_call_finish(%s, 2)", [call])
    pg_conn.execute("RESET ROLE")
    migrate(pg_dsn)
    got = pg_conn.execute("SELECT r.row_key, r.features::text, r.features_text, r.prediction, r.label, r.logged_at = c.called_at"
                          " FROM indb.prediction_log AS r JOIN indb.scoring_calls AS c USING (call_id) ORDER BY r.row_key").fetchall()
    assert got == [("1", "{1.5,NULL,NaN}", [None, "red", None], 0.25, None, True),
                   ("2", "{NULL,NULL,2}", [None, None, None], None, "yes", True)]
    assert pg_conn.execute("SELECT to_regclass('indb.prediction_log_0003')").fetchone()[0] is None
