"""The analyst's own statement under PostgreSQL's defaults (jit = on): time and JIT time.

Run by hand against a database migrated with the plpython component (``INDB_DSN``)::

    python bench/analyst.py --rows 300000 --models rf20,gb100,mlp

For every model (bench/run.py's set) deployed with ``--engine auto`` and bound to the
benchmark table, it times ``SELECT sum(indb.predict('m', t)) FROM indb_bench t`` with
``jit = on`` and ``jit = off`` (best of ``--repeat`` after a warm-up), reads the JIT
section of ``EXPLAIN (ANALYZE, FORMAT JSON)`` (Timing: Total, summed over the leader and
the workers) and prints the ratio on/off. A model whose version function is too big to
inline (``indb.registry.functions.too_big_to_inline``) is a PL/pgSQL function: the
query holds only its call, so LLVM has nothing large to compile.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import run as B  # noqa: E402  (bench/run.py: the table and the models)


def _jit_total(conn, query) -> float:
    plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query).fetchone()[0][0]
    return plan.get("JIT", {}).get("Timing", {}).get("Total", 0.0) / 1000.0


def _best(conn, query, repeat) -> float:
    conn.execute(query).fetchone()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        conn.execute(query).fetchone()
        runs.append(time.perf_counter() - t0)
    return min(runs)


def main(argv=None) -> int:
    import psycopg
    from psycopg import sql

    from indb.catalog.connection import resolve_dsn
    from indb.registry.versions import bind, deploy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn")
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--models", default="rf20,gb100,mlp")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    dsn = resolve_dsn(args.dsn).conninfo
    conn = psycopg.connect(dsn, autocommit=True)
    B.load_table(conn, args.rows)
    print("| model | function | jit on (s) | JIT time (s) | jit off (s) | on/off |\n|---|---|---:|---:|---:|---:|")
    for b in B._models():
        if b.key not in args.models.split(","):
            continue
        est = B.fit(b)
        features = None if hasattr(est, "feature_names_in_") else B.FEATURES + (["c0"] if b.uses_category else [])
        deploy(est, b.key, dsn=dsn, features=features, engine="auto")
        bind(b.key, B.TABLE, dsn=dsn)
        lang = conn.execute(
            "SELECT l.lanname FROM indb.version_functions AS f JOIN pg_proc AS p ON p.oid = f.fn JOIN pg_language AS l ON l.oid = p.prolang"
            " WHERE f.model = %s AND f.output = 'predict' ORDER BY f.version DESC LIMIT 1", [b.key]).fetchone()[0]
        query = sql.SQL("SELECT sum(indb.predict({}, t)) FROM {} AS t").format(sql.Literal(b.key), sql.Identifier(B.TABLE)).as_string(conn)
        conn.execute("SET jit = on")
        on, jit = _best(conn, query, args.repeat), _jit_total(conn, query)
        conn.execute("SET jit = off")
        off = _best(conn, query, args.repeat)
        conn.execute("RESET jit")
        print(f"| {b.title} | {lang} | {on:.3f} | {jit:.3f} | {off:.3f} | {on / off:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
