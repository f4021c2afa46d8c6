"""Deployed-model benchmark: indb.predict() paths and the PL/Python engine, in one run.

Run by hand after ``bench/run.py`` has created its table (or let this create it)::

    python bench/predict.py                    # 1,000,000 rows, medians of 3
    python bench/predict.py --rows 200000 --models lr,gb100

On the same table and models as bench/run.py it measures, with default settings:

* ``bound``: ``SELECT sum(indb.predict('m', t)) FROM t`` for a row type bound with
  ``indb bind``, against the compiled predict expression written inline (target: at
  most 1.2x), for LogisticRegression and GradientBoosting 100x3;
* ``generic``: the same through the generic path (a row type that is not bound), in
  microseconds per row (on a 20,000-row sample: it is the slow path);
* ``plpython``: every model deployed with ``--engine plpython``, scored in chunks of
  table blocks (string_agg of float8send per chunk, the engine's pipelined numpy/numba
  batch path: a chunk is scored while the next is packed), against the export ->
  predict -> import round trip of bench/run.py;
* ``row``: one-row calls of GradientBoosting 100x3 through the PL/Python engine,
  server-side (EXPLAIN ANALYZE over generate_series, after a first call), with the
  table's bound row type and through the generic path.

Results go to bench/predict.json and the Markdown table to stdout.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import run as B  # noqa: E402  (bench/run.py: the table, the models, the round trip)

CHUNK_BLOCKS = 1024


#: models whose `indb score` with `--engine auto` is measured against the round trip
AUTO = ("gb200", "rf100", "hgb", "xgb200", "mlp")


def _chunked_sql(name: str, output: str, n_features: int) -> str:
    """A server-side loop over block ranges: the engine's pipelined batch path, as indb
    score uses it (each call scores its chunk in the background and returns the chunk
    before; a last call with no rows returns the last answers)."""
    packed = " || ".join(f"float8send(x{i})" for i in range(n_features))
    return f"""
CREATE OR REPLACE FUNCTION pg_temp.indb_bench_chunks(model text, version integer, output text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    blocks bigint := pg_relation_size('{B.TABLE}') / current_setting('block_size')::bigint;
    b bigint := 0;
    res double precision[];
    total bigint := 0;
BEGIN
    WHILE b < blocks LOOP
        SELECT indb.engine_chunk_next(model, version, output, string_agg({packed}, ''::bytea), count(*)::integer, NULL, 1)
          INTO res
          FROM {B.TABLE}
         WHERE ctid >= format('(%s,0)', b)::tid AND ctid < format('(%s,0)', b + {CHUNK_BLOCKS})::tid;
        total := total + coalesce(cardinality(res), 0);
        b := b + {CHUNK_BLOCKS};
    END LOOP;
    res := indb.engine_chunk_next(model, version, output, NULL, 0, NULL, 1);
    RETURN total + coalesce(cardinality(res), 0);
END $$;
"""


def run(args) -> dict:
    import psycopg

    from indb.catalog.connection import resolve_dsn
    from indb.catalog.migrator import migrate
    from indb.registry.versions import deploy
    from indb.governance.score import score

    dsn = resolve_dsn(args.dsn).conninfo
    migrate(dsn)
    migrate(dsn, component="plpython")
    conn = psycopg.connect(dsn, autocommit=True)
    B.load_table(conn, args.rows)
    chosen = set(args.models.split(",")) if args.models else None
    results = {"rows": args.rows, "models": {}}
    for b in B._models():
        if chosen and b.key not in chosen:
            continue
        print(f"== {b.title}", file=sys.stderr)
        est = B.fit(b)
        rec: dict = {"title": b.title}
        output = "proba" if b.classifier else "predict"
        if b.key in ("lr", "gb100"):
            name = f"bench_{b.key}"
            deploy(est, name, dsn=dsn, engine="sql", for_tables=[B.TABLE])
            from indb.sqlgen.compile import lower_model

            inline = lower_model(est, dialect="postgres", output="predict").columns[0][1].sql("postgres")
            rec["inline"] = B.timed(lambda: conn.execute(f"SELECT sum({inline}) FROM {B.TABLE}").fetchone(), args.repeat)
            rec["bound"] = B.timed(lambda: conn.execute(f"SELECT sum(indb.predict('{name}', t)) FROM {B.TABLE} t").fetchone(), args.repeat)
            sample = 20_000
            generic = B.timed(
                lambda: conn.execute(
                    f"SELECT sum(indb.predict('{name}', s)) FROM (SELECT {', '.join(B.FEATURES)}, c0 FROM {B.TABLE} LIMIT {sample}) s"
                ).fetchone(),
                1,
            )
            rec["generic_us_per_row"] = generic["median"] / sample * 1e6
            print(f"   inline {rec['inline']['median']:.3f}s  bound {rec['bound']['median']:.3f}s  generic {rec['generic_us_per_row']:.1f} us/row", file=sys.stderr)
        py = f"bench_{b.key}_py"
        deploy(est, py, dsn=dsn, engine="plpython", for_tables=[B.TABLE] if b.key == "gb100" else ())
        conn.execute(_chunked_sql(py, output, B.N_FEATURES))
        if not b.uses_category:
            rec["plpython"] = B.timed(lambda: conn.execute("SELECT pg_temp.indb_bench_chunks(%s, 1, %s)", [py, output]).fetchone(), args.repeat)
            print(f"   plpython chunks {rec['plpython']['median']:.3f}s", file=sys.stderr)
        rec["roundtrip"] = B.timed(B.roundtrip(conn, b, est), args.repeat)
        print(f"   roundtrip {rec['roundtrip']['median']:.3f}s", file=sys.stderr)
        if b.key in AUTO:
            # `indb score` (every row logged) of the version `--engine auto` deploys; the
            # log is emptied between runs, outside the timing
            auto = f"bench_{b.key}_auto"
            d = deploy(est, auto, dsn=dsn)
            rec["auto_engine"] = f"{d.engine} ({d.engine_reason})"

            def score_all() -> None:
                score(auto, B.TABLE, "indb_bench_scored", keep=["id"], key="id", replace=True, dsn=dsn)
                conn.execute("TRUNCATE indb.prediction_log")

            rec["score_auto"] = B.timed(score_all, args.repeat)
            conn.execute("DROP TABLE IF EXISTS indb_bench_scored")
            print(f"   indb score, engine {rec['auto_engine']}: {rec['score_auto']['median']:.3f}s", file=sys.stderr)
        if b.key == "gb100":
            # one row per call, server-side over generate_series (after a first call that
            # loads the engine): through the table's bound row type (indb.predict calls the
            # version's function directly), and through the generic path (a row type that
            # is not bound: a dynamic call per row)
            vals = ", ".join("(g % 7)::float8 / 7" for _ in range(B.N_FEATURES))
            # (the row is a column of a subquery, as a table's row is: a ROW() constructor
            # written in the call would stop PostgreSQL from inlining indb.predict)
            bound_q = (f"SELECT sum(indb.predict('{py}', s.r)) FROM generate_series(1, 10000) g, "
                       f"LATERAL (SELECT ROW(g, {vals}, 'a')::{B.TABLE} AS r OFFSET 0) AS s")
            generic_row = ", ".join(f"(g % 7)::float8 / 7 AS x{i}" for i in range(B.N_FEATURES))
            generic_q = f"SELECT sum(indb.predict('{py}', t)) FROM (SELECT {generic_row} FROM generate_series(1, 10000) g) t"
            for key, q in (("row_us", bound_q), ("row_generic_us", generic_q)):
                q = "EXPLAIN (ANALYZE, FORMAT JSON) " + q
                conn.execute(q)  # the first call loads the engine and compiles the row scorer
                times = [conn.execute(q).fetchone()[0][0]["Execution Time"] for _ in range(args.repeat)]
                rec[key] = statistics.median(times) * 1000 / 10000
            print(f"   one row through the PL/Python engine: {rec['row_us']:.1f} us bound, {rec['row_generic_us']:.1f} us generic", file=sys.stderr)
        results["models"][b.key] = rec
        Path(args.out).write_text(json.dumps(results, indent=2))  # what is done so far survives an interruption
    return results


def markdown(res: dict) -> str:
    lines = [f"{res['rows']:,} rows; medians.", "",
             "| model | inline (s) | bound predict (s) | bound / inline | generic (µs/row) | PL/Python batch (s) | round trip (s) | PL/Python / round trip | one row via PL/Python, bound / generic (µs) | `indb score`, auto (s) | score / round trip | auto engine |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rec in res["models"].values():
        inl = rec.get("inline", {}).get("median")
        bnd = rec.get("bound", {}).get("median")
        py = rec.get("plpython", {}).get("median")
        rt = rec["roundtrip"]["median"]
        sc = rec.get("score_auto", {}).get("median")
        f = lambda v, d=3: "—" if v is None else f"{v:.{d}f}"  # noqa: E731
        lines.append(
            f"| {rec['title']} | {f(inl)} | {f(bnd)} | {f(bnd / inl if inl and bnd else None, 2)} | {f(rec.get('generic_us_per_row'), 1)} "
            f"| {f(py)} | {f(rt)} | {f(py / rt if py else None, 2)} | {f(rec.get('row_us'), 1)} / {f(rec.get('row_generic_us'), 1)} "
            f"| {f(sc)} | {f(sc / rt if sc else None, 2)} | {rec.get('auto_engine', '—').split(' (')[0]} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = B.arguments(__doc__, "predict.json")
    ap.add_argument("--models", help="comma-separated keys of bench/run.py's models")
    return B.report(ap.parse_args(argv), run, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
