"""Load: 8 sessions scoring through the logged path at once (issue 5).

15 seconds by default (thousands of calls from 8 sessions, within the suite's time
budget); INDB_LOAD_SECONDS sets a longer soak by hand."""

from __future__ import annotations

import os
import threading
import time

import pytest
from psycopg import sql

import indb
from tests.gov import connect, deploy, make_source, train_lr

SECONDS = float(os.environ.get("INDB_LOAD_SECONDS", "15"))


@pytest.mark.slow
def test_eight_sessions_score_through_the_logged_path_without_error_and_the_log_holds_every_row(
        migrated_dsn, migrated_conn, pg_role, capsys):
    deploy(migrated_dsn, train_lr(), "m")
    make_source(migrated_conn, n=50)
    users = [pg_role(migrated_dsn, "indb_scorer") for _ in range(8)]
    for u in users:
        migrated_conn.execute(sql.SQL("GRANT SELECT ON src TO {0}; GRANT CREATE ON SCHEMA public TO {0}").format(sql.Identifier(u.name)))
    latencies: list[list[float]] = [[] for _ in users]
    scored = [0] * len(users)
    errors: list[BaseException] = []
    start = threading.Barrier(len(users))

    def session(i: int) -> None:
        try:
            with connect(users[i].dsn) as conn:
                start.wait()
                deadline = time.monotonic() + SECONDS
                n = 0
                while time.monotonic() < deadline:
                    t0 = time.perf_counter()
                    if i < 6:  # online: one row per call
                        conn.execute("SELECT indb.predict_logged('m', s, %s) FROM src AS s WHERE id = %s", [f"{i}-{n}", n % 50])
                        scored[i] += 1
                    else:  # batches of a table, each into a new table
                        res = indb.score("m", "src", f"batch_{i}", keep=["id"], key="id", replace=True, conn=conn)
                        scored[i] += res.rows_logged
                    latencies[i].append(time.perf_counter() - t0)
                    n += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(users))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 120)
    assert not errors, errors[:3]
    logged = dict(migrated_conn.execute(
        "SELECT c.called_by, count(r.*) FROM indb.scoring_calls AS c JOIN indb.prediction_log AS r"
        " ON r.call_id = c.call_id AND r.logged_at = c.called_at GROUP BY 1").fetchall())
    assert logged == {u.name: scored[i] for i, u in enumerate(users)}
    assert migrated_conn.execute("SELECT count(*) FROM indb.scoring_calls WHERE finished_at IS NULL").fetchone()[0] == 0
    online = sorted(x for lat in latencies[:6] for x in lat)
    batch = sorted(x for lat in latencies[6:] for x in lat)

    def pct(xs, q):
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000

    with capsys.disabled():
        print(f"\nload, 8 sessions for {SECONDS:.0f} s: {len(online)} predict_logged calls, p50 {pct(online, .5):.1f} ms,"
              f" p99 {pct(online, .99):.1f} ms; {len(batch)} indb.score calls of 50 rows, p50 {pct(batch, .5):.1f} ms,"
              f" p99 {pct(batch, .99):.1f} ms; {sum(scored)} rows logged")
