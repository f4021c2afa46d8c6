"""The analyst's entry points under PostgreSQL's defaults (jit = on): the issue 13 table.

Run by hand against a database migrated with the plpython component (``INDB_DSN``)::

    python bench/analyst.py --rows 1000000 --models lr,scaler_lr,onehot_linear,rf20,gb100,gb200,hgb,rf100,xgb200,mlp

For every model (bench/run.py's set) deployed with ``--engine auto`` and bound to the
benchmark table, in one run, each entry point is timed with ``jit = on`` (the default)
and ``jit = off`` (best of ``--repeat`` after a warm-up), with the JIT time read from
``EXPLAIN (ANALYZE, FORMAT JSON)`` (Timing: Total, summed over the leader and the
workers), against the export → predict → import round trip of the same rows:

- ``bound sum``: ``SELECT sum(indb.predict('m', t)) FROM indb_bench t``
- ``bound CTAS``: ``CREATE TABLE … AS SELECT id, indb.predict('m', t) FROM indb_bench t``
- ``predict_batch``: ``SELECT sum(prediction) FROM indb.predict_batch('m', 'indb_bench', 'id')``
- ``wrapped row``: ``indb.predict('m', s)`` over ``(SELECT * FROM indb_bench WHERE id < N) s``
  (the generic path), ``--generic-rows`` rows, reported per row in µs and as a multiple of
  ``SELECT count(*)`` over the same subquery (a ratio that survives a loaded machine); the
  per-row figure is net of that ``count(*)`` (the scan that finds the rows)
- ``cast row``: the same subquery, its row cast to the bound table's type
  (``indb.predict('m', s::indb_bench)``: the bound path), reported the same way
- ``one row``: one bound call per row, server-side: ``indb.predict('m', s.r)`` over 10,000
  rows each built from ``generate_series`` as a row of the bound table's type, the
  ``EXPLAIN ANALYZE`` execution time per row (after a first call)

Prints a markdown table; ``--json FILE`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import run as B  # noqa: E402  (bench/run.py: the table, the models and the round trip)


def _jit_total(conn, statement: str) -> float:
    plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement).fetchone()[0][0]
    return plan.get("JIT", {}).get("Timing", {}).get("Total", 0.0) / 1000.0


def _best(run, repeat: int) -> float:
    """The fastest of ``repeat`` runs after a warm-up."""
    return min(B.time_runs(run, repeat))


ONE_ROW_CALLS = 10_000


def _execution_time(conn, statement: str) -> float:
    """The server's execution time of ``statement`` in seconds (EXPLAIN ANALYZE, no client)."""
    return conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement).fetchone()[0][0]["Execution Time"] / 1000.0


def _statements(conn, key: str, generic_rows: int) -> dict:
    """entry point -> (statement, rows it scores, what to run after it)."""
    from psycopg import sql

    m, t = sql.Literal(key), sql.Identifier(B.TABLE)
    wrapped = sql.SQL("SELECT * FROM {} WHERE id < {}").format(t, sql.Literal(generic_rows))
    q = {
        "bound sum": (sql.SQL("SELECT sum(indb.predict({}, t)) FROM {} AS t").format(m, t), None, None),
        "bound CTAS": (sql.SQL("CREATE TABLE indb_bench_out AS SELECT t.id, indb.predict({}, t) AS p FROM {} AS t").format(m, t),
                       None, "DROP TABLE indb_bench_out"),
        "predict_batch": (sql.SQL("SELECT sum(prediction) FROM indb.predict_batch({}, {}, 'id')").format(m, sql.Literal(B.TABLE)),
                          None, None),
        "wrapped row": (sql.SQL("SELECT sum(indb.predict({}, s)) FROM ({}) AS s").format(m, wrapped), generic_rows, None),
        "cast row": (sql.SQL("SELECT sum(indb.predict({}, s::{})) FROM ({}) AS s").format(m, t, wrapped), generic_rows, None),
        # (the row is a column of a subquery, as a table's row is: a ROW() constructor
        # written in the call would stop PostgreSQL from inlining indb.predict)
        "one row": (sql.SQL("SELECT sum(indb.predict({}, s.r)) FROM generate_series(1, {}) AS g, "
                            "LATERAL (SELECT ROW(g, {}, 'a')::{} AS r OFFSET 0) AS s").format(
            m, sql.Literal(ONE_ROW_CALLS), sql.SQL(", ").join(sql.SQL("(g % 7)::float8 / 7") for _ in range(B.N_FEATURES)), t),
            ONE_ROW_CALLS, None),
    }
    # the rows of the wrapped shapes without scoring them: their per-row cost is net of this
    base = sql.SQL("SELECT count(*) FROM ({}) AS s").format(wrapped).as_string(conn)
    return {k: (s.as_string(conn), n, after, base if k in ("wrapped row", "cast row") else None) for k, (s, n, after) in q.items()}


def main(argv=None) -> int:
    import psycopg

    from indb.catalog.connection import resolve_dsn
    from indb.registry.versions import bind, deploy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--models", default="rf20,gb100,mlp")
    ap.add_argument("--entries", default="bound sum,bound CTAS,predict_batch,wrapped row",
                    help="entry points to time, comma-separated")
    ap.add_argument("--generic-rows", type=int, default=20_000, help="rows through the wrapped-row (generic) path")
    ap.add_argument("--engine", default="auto", choices=["auto", "sql", "plpython"],
                    help="deploy every model with this engine (another than auto: under the name <model>_<engine>)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    dsn = resolve_dsn(args.dsn).conninfo
    conn = psycopg.connect(dsn, autocommit=True)
    B.load_table(conn, args.rows)
    version = conn.execute("SELECT version()").fetchone()[0]
    settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                                 "('jit', 'max_parallel_workers_per_gather', 'shared_buffers', 'work_mem')").fetchall())
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"{args.rows:,} rows; {version}; {settings}; {platform.node()} load average at start {' '.join(load)}\n")
    print("| model | engine | entry point | jit on (s) | JIT time (s) | jit off (s) | round trip (s) | on / round trip | on / off |\n"
          "|---|---|---|---:|---:|---:|---:|---:|---:|", flush=True)
    results = []
    wanted = args.entries.split(",")
    for b in B._models():
        if b.key not in args.models.split(","):
            continue
        est = B.fit(b)
        features = None if hasattr(est, "feature_names_in_") else B.FEATURES + (["c0"] if b.uses_category else [])
        name = b.key if args.engine == "auto" else f"{b.key}_{args.engine}"
        deploy(est, name, dsn=dsn, features=features, engine=args.engine)
        bind(name, B.TABLE, dsn=dsn)
        engine = conn.execute("SELECT v.engine FROM indb.versions AS v JOIN indb.aliases AS a USING (model, version)"
                              " WHERE a.model = %s AND a.alias = 'champion'", [name]).fetchone()[0]
        rt = _best(B.roundtrip(conn, b, est), args.repeat)
        for entry, (statement, rows, after, base_statement) in _statements(conn, name, args.generic_rows).items():
            if entry not in wanted:
                continue

            def run(statement=statement, after=after) -> None:
                conn.execute(statement)
                if after:
                    conn.execute(after)

            if entry == "one row":  # the server's execution time, after a first call that loads the engine
                def measure(statement=statement) -> float:
                    return min(_execution_time(conn, statement) for _ in range(max(3, args.repeat)))
            else:
                def measure(run=run) -> float:
                    return _best(run, args.repeat)

            conn.execute("SET jit = on")
            if entry == "one row":
                _execution_time(conn, statement)
            on = measure()
            jit = _jit_total(conn, statement) if entry != "one row" else None
            if after:
                conn.execute(after)
            conn.execute("SET jit = off")
            off = measure()
            conn.execute("RESET jit")
            if entry == "one row":
                results.append({"model": b.title, "engine": engine, "entry": entry, "on": on, "off": off, "rows": rows})
                print(f"| {b.title} | {engine} | one row, bound (server-side, {rows:,} calls) | {on * 1e6 / rows:.1f} µs/row | — |"
                      f" {off * 1e6 / rows:.1f} µs/row | — | — | {on / off:.2f} |", flush=True)
                continue
            # the same rows without scoring: a ratio that survives a loaded machine
            base = _best(lambda: conn.execute(base_statement), args.repeat) if base_statement else None
            row = {"model": b.title, "engine": engine, "entry": entry, "on": on, "jit": jit, "off": off,
                   "round_trip": rt if rows is None else None, "rows": rows or args.rows, "count_s": base}
            results.append(row)
            if rows is None:
                print(f"| {b.title} | {engine} | {entry} | {on:.2f} | {jit:.2f} | {off:.2f} | {rt:.2f} | {on / rt:.2f} | {on / off:.2f} |",
                      flush=True)
            else:
                print(f"| {b.title} | {engine} | {entry} ({rows:,} rows) | {(on - base) * 1e6 / rows:.1f} µs/row | {jit:.2f} |"
                      f" {(off - base) * 1e6 / rows:.1f} µs/row | — | {on / base:.1f}× count(*) | {on / off:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": args.rows, "version": version, "settings": settings, "load": load,
                                               "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
