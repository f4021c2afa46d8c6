"""How fast a cancel stops each analyst statement (issue 13: "a cancel of any of them
returns within 2 s").

Run by hand after ``bench/analyst.py`` has deployed its models and loaded its table
(``indb_bench``) in the same database::

    python bench/cancel.py --models rf100,gb200,mlp,gb100 [--after 1.0]

Each statement starts on its own connection, under PostgreSQL's defaults (``jit = on``,
parallel query); ``--after`` seconds later another connection calls
``pg_cancel_backend`` on it, and the time from that call to the statement's error is
printed (a statement that finishes first is reported as finished).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TABLE = "indb_bench"


def statements(models: list[str]):
    """(label, statement) for every model: the bound sum, the bound CTAS, predict_batch."""
    from psycopg import sql

    t = sql.Identifier(TABLE)
    for m in models:
        name = sql.Literal(m)
        yield f"{m}: bound sum", sql.SQL("SELECT sum(indb.predict({}, t)) FROM {} AS t").format(name, t)
        yield f"{m}: bound CTAS", sql.SQL("CREATE TEMP TABLE indb_cancel_out AS SELECT t.id, indb.predict({}, t) FROM {} AS t").format(name, t)
        yield f"{m}: predict_batch", sql.SQL("SELECT count(*) FROM indb.predict_batch({}, {}, 'id')").format(name, sql.Literal(TABLE))


def main(argv=None) -> int:
    import psycopg

    from indb.catalog.connection import resolve_dsn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn")
    ap.add_argument("--models", default="rf100,gb200,mlp,gb100", help="models bench/analyst.py deployed, comma-separated")
    ap.add_argument("--after", type=float, default=1.0, help="seconds before the cancel")
    args = ap.parse_args(argv)
    dsn = resolve_dsn(args.dsn).conninfo
    print("| statement | outcome | from pg_cancel_backend to the error (s) |\n|---|---|---:|")
    for label, statement in statements(args.models.split(",")):
        with psycopg.connect(dsn, autocommit=True) as conn:
            pid = conn.info.backend_pid
            sent: list[float] = []

            def cancel(pid=pid, sent=sent) -> None:
                time.sleep(args.after)
                with psycopg.connect(dsn, autocommit=True) as other:
                    sent.append(time.perf_counter())
                    other.execute("SELECT pg_catalog.pg_cancel_backend(%s)", [pid])

            th = threading.Thread(target=cancel)
            th.start()
            try:
                conn.execute(statement)
                outcome = "finished first"
            except psycopg.errors.QueryCanceled:
                outcome = "cancelled"
            ended = time.perf_counter()
            th.join()
            waited = ended - sent[0] if sent and outcome == "cancelled" else float("nan")
            print(f"| {label} | {outcome} | {waited:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
