"""Logged scoring benchmark: ``indb score`` with 100% row logging against the same
scoring without logging, in one run on one PostgreSQL.

Run by hand (minutes; not part of the test suite)::

    python bench/score.py                      # 1,000,000 rows, LR and GB 100x3, medians of 3
    python bench/score.py --rows 200000 --models lr --repeat 3

It reuses bench/run.py's table (``indb_bench``: 20 double precision features) and
models, deploys each one (SQL engine) and times, per model:

* ``unlogged``: the ``CREATE TABLE ... AS`` that ``indb score`` runs, without the log:
  ``id`` and every output column (prediction, probability_<label>...), each output
  evaluated once per row, parallel query under default settings;
* ``logged``: ``indb score NAME --from indb_bench --into T --keep id --key id`` (every
  row logged), in the mode indb picks, and in each mode forced
  (``SET indb.score_mode``: ``recompute`` evaluates the logged rows' prediction a
  second time, ``stage`` evaluates every output once into a temporary table).

Reported: medians, logged / unlogged, and the cost per logged row
((logged - unlogged) / rows). The machine's load average is recorded with the numbers.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import run as base  # noqa: E402  (bench/run.py: the table and the models)

MODELS = {"lr": "bench_lr", "gb100": "bench_gb100"}


def _unlogged_sql(conn, name: str):
    """The CREATE TABLE AS of indb.score without its log, built from the same catalog entries."""
    from psycopg import sql

    version = conn.execute("SELECT version FROM indb.aliases WHERE model = %s AND alias = 'champion'", [name]).fetchone()[0]
    outs = [o for o in ("predict", "proba") if conn.execute(
        "SELECT 1 FROM indb.version_functions WHERE model = %s AND version = %s AND output = %s", [name, version, o]).fetchone()]
    args = [sql.SQL("{}::double precision").format(sql.Identifier("s", f)).as_string(conn) for f in base.FEATURES]
    inner, outer = [sql.SQL("s.id AS k1")], [sql.SQL("s.k1 AS id")]
    for i, o in enumerate(outs, 1):
        call = conn.execute("SELECT indb.output_sql(%s, %s, %s, %s)", [name, version, o, args]).fetchone()[0]
        cols = conn.execute("SELECT indb.output_columns(%s, %s, %s)", [name, version, o]).fetchone()[0]
        inner.append(sql.SQL("{} AS {}").format(sql.SQL(call), sql.Identifier(f"o{i}")))
        if o == "predict":
            outer.append(sql.SQL("s.{} AS {}").format(sql.Identifier(f"o{i}"), sql.Identifier(cols[0])))
        else:
            outer += [sql.SQL("s.{}[{}] AS {}").format(sql.Identifier(f"o{i}"), sql.Literal(j + 1), sql.Identifier(c))
                      for j, c in enumerate(cols)]
    return sql.SQL("CREATE TABLE indb_bench_scored AS SELECT {} FROM (SELECT {} FROM {} AS s OFFSET 0) AS s").format(
        sql.SQL(", ").join(outer), sql.SQL(", ").join(inner), sql.Identifier(base.TABLE))


def _backend_cpu(conn):
    """CPU seconds used so far by the connection's backend (not its parallel workers),
    or None when the server does not run on this machine."""
    pid = conn.info.backend_pid
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _timed(conn, fn, cleanup, repeat: int) -> dict:
    fn()
    cleanup()
    runs, cpu = [], []
    for _ in range(repeat):
        c0 = _backend_cpu(conn)
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
        c1 = _backend_cpu(conn)
        if c0 is not None and c1 is not None:
            cpu.append(c1 - c0)
        cleanup()
    return {"median": statistics.median(runs), "runs": runs, "leader_cpu": statistics.median(cpu) if cpu else None}


def measure(dsn: str, rows: int, models: list[str], repeat: int) -> dict:
    import psycopg

    from indb.catalog.migrator import migrate
    from indb.registry.versions import deploy
    from indb.governance.score import score

    migrate(dsn)
    conn = psycopg.connect(dsn, autocommit=True)
    server = conn.execute("SHOW server_version").fetchone()[0]
    base.load_table(conn, rows)
    out = {"rows": rows, "server": server, "load_before": os.getloadavg(), "models": {}}
    for key in models:
        b = next(m for m in base._models() if m.key == key)
        name = MODELS[key]
        print(f"== {b.title}", file=sys.stderr)
        deploy(base.fit(b), name, dsn=dsn, features=base.FEATURES, engine="sql")
        ctas = _unlogged_sql(conn, name)

        def unlogged():
            conn.execute(ctas)

        def cleanup():
            conn.execute("DROP TABLE indb_bench_scored")
            # the log grows by every run; keep it from slowing the next ones (a superuser,
            # in the benchmark's own database only)
            conn.execute("TRUNCATE indb.prediction_log")

        def logged(mode: str | None):
            def run_once():
                conn.execute("SELECT set_config('indb.score_mode', %s, false)", [mode or ""])
                res = score(name, base.TABLE, "indb_bench_scored", keep=["id"], key="id", conn=conn)
                assert res.rows_logged == rows
            return run_once

        rec = {"title": b.title, "unlogged": _timed(conn, unlogged, cleanup, repeat)}
        for mode in (None, "recompute", "stage"):
            rec[f"logged_{mode or 'auto'}"] = _timed(conn, logged(mode), cleanup, repeat)
        u = rec["unlogged"]["median"]
        for k in [k for k in rec if k.startswith("logged_")]:
            m = rec[k]["median"]
            rec[k]["ratio"] = m / u
            rec[k]["us_per_logged_row"] = (m - u) / rows * 1e6
            if rec[k]["leader_cpu"] is not None and rec["unlogged"]["leader_cpu"] is not None:
                rec[k]["leader_cpu_us_per_logged_row"] = (rec[k]["leader_cpu"] - rec["unlogged"]["leader_cpu"]) / rows * 1e6
        print("   " + "  ".join(f"{k} {v['median']:.2f}s" + (f" ({v['ratio']:.2f}x, {v['us_per_logged_row']:.2f} us/row)" if "ratio" in v else "")
                              for k, v in rec.items() if isinstance(v, dict)), file=sys.stderr)
        out["models"][key] = rec
    out["load_after"] = os.getloadavg()
    return out


def markdown(res: dict) -> str:
    lines = [
        f"{res['rows']:,} rows, PostgreSQL {res['server']}, default settings, medians of "
        f"{len(next(iter(res['models'].values()))['unlogged']['runs'])} runs after a warm-up; "
        f"load average {res['load_before'][0]:.1f} before, {res['load_after'][0]:.1f} after.",
        "",
        "| model | unlogged CTAS (s) | indb score, 100% logged (s) | ratio | µs per logged row (wall) | µs per logged row (leader CPU) | forced recompute (s) | forced stage (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rec in res["models"].values():
        a, r, s = rec["logged_auto"], rec["logged_recompute"], rec["logged_stage"]
        cpu = a.get("leader_cpu_us_per_logged_row")
        lines.append(f"| {rec['title']} | {rec['unlogged']['median']:.2f} | {a['median']:.2f} | {a['ratio']:.2f} | "
                     f"{a['us_per_logged_row']:.2f} | {'—' if cpu is None else f'{cpu:.2f}'} | "
                     f"{r['median']:.2f} ({r['ratio']:.2f}×) | {s['median']:.2f} ({s['ratio']:.2f}×) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = base.arguments(__doc__, "score_results.json", "PostgreSQL to measure on, as a superuser (default: INDB_DSN / the private cluster)")
    ap.add_argument("--models", default="lr,gb100", help="comma-separated: lr,gb100")
    args = ap.parse_args(argv)

    def run(args) -> dict:
        from indb.catalog.connection import resolve_dsn

        return measure(resolve_dsn(args.dsn).conninfo, args.rows, args.models.split(","), args.repeat)

    return base.report(args, run, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
