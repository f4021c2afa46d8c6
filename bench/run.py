"""Scoring benchmark: indb's SQL against the alternatives, in one run on one PostgreSQL.

Run by hand (it takes tens of minutes; it is not part of the test suite)::

    pip install -e .[bench]
    python bench/run.py                       # 1,000,000 rows, every model, medians of 3
    python bench/run.py --rows 100000 --models lr,gb100 --repeat 3

The table has 1,000,000 rows of 20 ``double precision`` features (x0..x19) and one
text column c0 (8 categories, used by the one-hot pipeline). Each model is trained
on rows drawn from the same distribution. For every model the run times, with
PostgreSQL's default planner settings for every contender:

* ``bare``: ``SELECT sum(x0 + ... + x19)``, the cost of reading the rows;
* ``indb``: ``SELECT sum(score)`` and ``CREATE TABLE ... AS`` over indb's compiled SQL;
* ``orbital``: the same two statements over orbital's SQL (when it converts the model
  and PostgreSQL accepts the query);
* ``roundtrip``: the export → predict → import a user would otherwise write: binary
  ``COPY ... TO STDOUT`` parsed with numpy, the model's own predict, binary ``COPY ...
  FROM STDIN`` of (id, score) into a new table.

Every number is the median of ``--repeat`` runs after one warm-up. Results go to
``bench/results.json``; ``--markdown`` prints the table that bench/README.md holds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

N_FEATURES = 20
FEATURES = [f"x{i}" for i in range(N_FEATURES)]
CATEGORIES = [f"c{i}" for i in range(8)]
TABLE = "indb_bench"


# ----------------------------------------------------------------------------- data


def make_frame(n: int, seed: int):
    """n rows of the benchmark distribution (features, one category, two targets)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    cat = rng.integers(0, len(CATEGORIES), size=n)
    df = pd.DataFrame(X, columns=FEATURES)
    df["c0"] = np.array(CATEGORIES, dtype=object)[cat]
    signal = X[:, 0] * 1.5 - X[:, 1] + X[:, 2] * X[:, 3] + np.sin(X[:, 4]) + 0.3 * cat - X[:, 5] ** 2 * 0.5
    y_reg = signal + rng.normal(scale=0.5, size=n)
    y_cls = (signal + rng.normal(scale=0.5, size=n) > np.median(signal)).astype(int)
    return df, y_reg, y_cls


def load_table(conn, n: int) -> None:
    """Create and fill the benchmark table unless it already has n rows."""
    from psycopg import sql

    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]
    if exists and conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLE))).fetchone()[0] == n:
        return
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)))
    cols = [sql.SQL("id bigint")] + [sql.SQL("{} double precision").format(sql.Identifier(f)) for f in FEATURES]
    cols.append(sql.SQL("c0 text"))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(TABLE), sql.SQL(", ").join(cols)))
    chunk = 200_000
    for start in range(0, n, chunk):
        df, _, _ = make_frame(min(chunk, n - start), seed=1000 + start)
        with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(TABLE))) as cp:
            for i, row in enumerate(df.itertuples(index=False)):
                cp.write_row((start + i, *row))
        print(f"  loaded {min(start + chunk, n):,} rows", file=sys.stderr)
    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(TABLE)))


# --------------------------------------------------------------------------- models


@dataclass
class Bench:
    key: str
    title: str
    make: Callable[[], Any]
    train_rows: int
    classifier: bool
    uses_category: bool = False
    extra: dict = field(default_factory=dict)


def _models() -> list[Bench]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return [
        Bench("lr", "LogisticRegression", lambda: LogisticRegression(max_iter=1000), 20_000, True),
        Bench("scaler_lr", "StandardScaler + LogisticRegression", lambda: Pipeline([("s", StandardScaler()), ("m", LogisticRegression(max_iter=1000))]), 20_000, True),
        Bench(
            "onehot_linear",
            "OneHotEncoder + StandardScaler → LinearRegression",
            lambda: Pipeline(
                [
                    ("ct", ColumnTransformer([("oh", OneHotEncoder(handle_unknown="ignore"), ["c0"]), ("sc", StandardScaler(), FEATURES)])),
                    ("m", LinearRegression()),
                ]
            ),
            20_000,
            False,
            uses_category=True,
        ),
        Bench("rf20", "RandomForestRegressor 20×d6", lambda: RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0, n_jobs=2), 20_000, False),
        Bench("gb100", "GradientBoostingClassifier 100×d3", lambda: GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0), 20_000, True),
        Bench("gb200", "GradientBoostingClassifier 200×d4", lambda: GradientBoostingClassifier(n_estimators=200, max_depth=4, random_state=0), 20_000, True),
        Bench("hgb", "HistGradientBoostingRegressor 100 it.", lambda: HistGradientBoostingRegressor(max_iter=100, random_state=0), 20_000, False),
        Bench("rf100", "RandomForestRegressor 100×d8", lambda: RandomForestRegressor(n_estimators=100, max_depth=8, random_state=0, n_jobs=2), 100_000, False),
        # XGBoost adds its 200 leaves in float32 (about 1e-6 absolute error at this
        # scale): its scores are compared to 1e-6 relative, 1e-5 absolute near 0
        Bench("xgb200", "XGBRegressor 200×d6", _xgboost, 20_000, False, extra={"rtol": 1e-6, "atol": 1e-5}),
        Bench("mlp", "MLPRegressor 2×64 (relu)", _mlp, 20_000, False),
    ]


def _xgboost():
    import xgboost as xgb

    return xgb.XGBRegressor(n_estimators=200, max_depth=6, random_state=0, n_jobs=2)


def _mlp():
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    return MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=200, random_state=0)


def fit(b: Bench):
    df, y_reg, y_cls = make_frame(b.train_rows, seed=7)
    X = df if b.uses_category else df[FEATURES]
    est = b.make().fit(X, y_cls if b.classifier else y_reg)
    return est


def own_scores(b: Bench, est, X) -> np.ndarray:
    if b.classifier:
        return est.predict_proba(X)[:, 1]
    return est.predict(X)


# ------------------------------------------------------------------------ contenders


def time_runs(fn: Callable[[], Any], repeat: int) -> list[float]:
    """The seconds of ``repeat`` calls of ``fn``, after one warm-up call (and the result check)."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return runs


def timed(fn: Callable[[], Any], repeat: int) -> dict:
    runs = time_runs(fn, repeat)
    return {"median": statistics.median(runs), "runs": runs}


def _sql_sum(conn, select_sql: str) -> Callable[[], float]:
    def run() -> float:
        return conn.execute(select_sql).fetchone()[0]

    return run


def _sql_ctas(conn, select_sql: str) -> Callable[[], None]:
    def run() -> None:
        conn.execute("DROP TABLE IF EXISTS indb_bench_out")
        conn.execute("CREATE TABLE indb_bench_out AS " + select_sql)
        conn.execute("DROP TABLE indb_bench_out")

    return run


def indb_sql(b: Bench, est) -> tuple[Callable[[str], str], float, int]:
    """indb's query for a table (``SELECT id, score FROM table``: what ``indb compile
    --table`` prints, shared subexpressions computed once), the compile time, its size."""
    from indb.sqlgen.compile import lower_model

    t0 = time.perf_counter()
    compiled = lower_model(est, dialect="postgres", output="proba" if b.classifier else "predict", share=True)
    col = compiled.columns[1 if b.classifier else 0][0]

    def query(table: str) -> str:
        inner = compiled.select(table, keep=["id"]).sql("postgres")
        return f'SELECT id, "{col}" AS score FROM ({inner}) AS q' if col != "score" else inner

    size = len(query(TABLE).encode())
    return query, time.perf_counter() - t0, size


def orbital_sql(b: Bench, est) -> tuple[str | None, float, str]:
    """orbital's query (and which column is the score), or None and why it failed."""
    try:
        import orbital
        import orbital.types as ot
        from sklearn.pipeline import Pipeline
    except ImportError as e:  # pragma: no cover - bench extra not installed
        return None, 0.0, f"orbital not installed ({e})"
    pipe = est if isinstance(est, Pipeline) else Pipeline([("m", est)])
    feats = {f: ot.DoubleColumnType() for f in FEATURES}
    if b.uses_category:
        feats["c0"] = ot.StringColumnType()
    t0 = time.perf_counter()
    try:
        parsed = orbital.parse_pipeline(pipe, features=feats)
        q = orbital.export_sql(TABLE, parsed, dialect="postgres")
    except Exception as e:  # noqa: BLE001 - we report whatever orbital raises
        return None, time.perf_counter() - t0, f"{type(e).__name__}: {str(e)[:200]}"
    return q, time.perf_counter() - t0, ""


def roundtrip(conn, b: Bench, est) -> Callable[[], None]:
    """COPY out (binary, parsed with numpy), predict, COPY the scores back (binary)."""
    cols = ["id"] + FEATURES + (["c0"] if b.uses_category else [])
    n_num = 1 + N_FEATURES

    def run() -> None:
        buf = bytearray()
        with conn.cursor().copy(
            "COPY (SELECT " + ", ".join(cols) + f" FROM {TABLE}) TO STDOUT (FORMAT binary)"
        ) as cp:
            for data in cp:
                buf += data
        body = memoryview(buf)[19:-2]  # header, trailer
        if b.uses_category:
            ids, X, cats = _parse_mixed(body, n_num)
            import pandas as pd

            frame = pd.DataFrame(X, columns=FEATURES)
            frame["c0"] = cats
            scores = own_scores(b, est, frame)
        else:
            rec = np.dtype([("n", ">i2")] + [(f"l{i}", ">i4") if j == 0 else (f"v{i}", ">f8" if i else ">i8") for i in range(n_num) for j in (0, 1)])
            arr = np.frombuffer(body, dtype=rec)
            ids = arr["v0"].astype(np.int64)
            X = np.column_stack([arr[f"v{i}"] for i in range(1, n_num)]).astype(np.float64)
            scores = own_scores(b, est, X)
        out = np.empty(len(ids), dtype=[("n", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), ("s", ">f8")])
        out["n"], out["l0"], out["id"], out["l1"], out["s"] = 2, 8, ids, 8, scores
        payload = b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0) + out.tobytes() + struct.pack(">h", -1)
        conn.execute("DROP TABLE IF EXISTS indb_bench_rt")
        conn.execute("CREATE TABLE indb_bench_rt (id bigint, score double precision)")
        with conn.cursor().copy("COPY indb_bench_rt FROM STDIN (FORMAT binary)") as cp:
            cp.write(payload)
        conn.execute("DROP TABLE indb_bench_rt")

    return run


def _parse_mixed(body: memoryview, n_num: int):
    """Binary COPY rows of (int8, float8 x20, text): a short loop over variable-length rows."""
    ids, X, cats = [], [], []
    pos, end = 0, len(body)
    data = bytes(body)
    fixed = struct.Struct(">h" + "i" + "q" + "id" * (n_num - 1))
    while pos < end:
        vals = fixed.unpack_from(data, pos)
        pos += fixed.size
        ids.append(vals[2])
        X.append(vals[4::2])
        (ln,) = struct.unpack_from(">i", data, pos)
        pos += 4
        cats.append(data[pos : pos + ln].decode())
        pos += ln
    return np.array(ids), np.array(X, dtype=np.float64), np.array(cats, dtype=object)


# ------------------------------------------------------------------------------ run


def run(args) -> dict:
    import psycopg

    from indb.catalog.connection import resolve_dsn

    dsn = resolve_dsn(args.dsn).conninfo
    conn = psycopg.connect(dsn, autocommit=True)
    server = conn.execute("SHOW server_version").fetchone()[0]
    settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN ('jit','max_parallel_workers_per_gather','shared_buffers','work_mem')").fetchall())
    print(f"PostgreSQL {server}; {settings}", file=sys.stderr)
    load_table(conn, args.rows)
    bare_sql = "SELECT sum(" + " + ".join(FEATURES) + f") FROM {TABLE}"
    bare = timed(_sql_sum(conn, bare_sql), args.repeat)
    print(f"bare scan {bare['median']:.3f}s", file=sys.stderr)
    chosen = set(args.models.split(",")) if args.models else None
    results = {"rows": args.rows, "server": server, "settings": settings, "machine": platform.platform(), "bare_scan": bare, "models": {}}
    sample, _, _ = make_frame(2000, seed=99)
    for b in _models():
        if chosen and b.key not in chosen:
            continue
        print(f"== {b.title}", file=sys.stderr)
        t0 = time.perf_counter()
        est = fit(b)
        rec: dict[str, Any] = {"title": b.title, "fit_seconds": time.perf_counter() - t0}
        query, secs, size = indb_sql(b, est)
        rec["indb"] = {"compile_seconds": secs, "sql_bytes": size}
        rec["indb"]["check"] = _check(conn, b, est, query, sample)
        select = query(TABLE)
        total = f"SELECT sum(score) FROM ({select}) AS s"
        rec["indb"]["sum"] = timed(_sql_sum(conn, total), args.repeat)
        rec["indb"]["ctas"] = timed(_sql_ctas(conn, select), args.repeat)
        if args.jit_off:
            conn.execute("SET jit = off")
            rec["indb"]["sum_jit_off"] = timed(_sql_sum(conn, total), args.repeat)
            conn.execute("RESET jit")
        print(f"   indb   sum {rec['indb']['sum']['median']:.3f}s  ctas {rec['indb']['ctas']['median']:.3f}s  ({rec['indb']['sql_bytes']:,} bytes, {secs:.2f}s compile)", file=sys.stderr)
        q, osecs, why = orbital_sql(b, est)
        rec["orbital"] = {"compile_seconds": osecs}
        if q is None:
            rec["orbital"]["error"] = why
        else:
            rec["orbital"]["sql_bytes"] = len(q.encode())
            col = '"output_probability.1"' if b.classifier else '"variable"'
            conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{args.orbital_timeout}s"])
            try:
                rec["orbital"]["sum"] = timed(_sql_sum(conn, f"SELECT sum({col}) FROM ({q}) AS o"), args.repeat)
                rec["orbital"]["ctas"] = timed(_sql_ctas(conn, q), args.repeat)
            except Exception as e:  # noqa: BLE001 - PostgreSQL's refusal is a result
                rec["orbital"]["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                if "statement timeout" in str(e):
                    rec["orbital"]["error"] = f"a statement ran longer than {args.orbital_timeout} s (cancelled)"
            finally:
                conn.execute("RESET statement_timeout")
        print(f"   orbital {rec['orbital'].get('sum', {}).get('median', rec['orbital'].get('error'))}", file=sys.stderr)
        rec["roundtrip"] = timed(roundtrip(conn, b, est), args.repeat)
        print(f"   roundtrip {rec['roundtrip']['median']:.3f}s", file=sys.stderr)
        results["models"][b.key] = rec
        Path(args.out).write_text(json.dumps(results, indent=2))  # what is done so far survives an interruption
    return results


def _check(conn, b: Bench, est, query: Callable[[str], str], sample) -> dict:
    """indb's SQL on a sample equals the model's own scores (the benchmark must time the right thing)."""
    from psycopg import sql

    conn.execute("DROP TABLE IF EXISTS indb_bench_check")
    conn.execute(sql.SQL("CREATE TABLE indb_bench_check (LIKE {})").format(sql.Identifier(TABLE)))
    with conn.cursor().copy("COPY indb_bench_check FROM STDIN") as cp:
        for i, row in enumerate(sample.itertuples(index=False)):
            cp.write_row((i, *row))
    got = np.array([r[0] for r in conn.execute(f"SELECT score FROM ({query('indb_bench_check')}) AS s ORDER BY id").fetchall()], dtype=float)
    conn.execute("DROP TABLE indb_bench_check")
    want = own_scores(b, est, sample if b.uses_category else sample[FEATURES])
    rtol, atol = b.extra.get("rtol", 1e-9), b.extra.get("atol", 1e-12)
    diff = np.abs(got - want)
    err = float(np.max(diff / np.maximum(np.abs(want), atol)))
    if not np.all(diff <= np.maximum(rtol * np.abs(want), atol)):
        raise SystemExit(f"{b.title}: indb's SQL differs from the model (max relative error {err:.3g})")
    return {"rows": len(want), "max_rel_error": err}


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None else f"{a / b:.2f}"


def markdown(res: dict) -> str:
    bare = res["bare_scan"]["median"]
    lines = [
        f"{res['rows']:,} rows, PostgreSQL {res['server']}, default settings ({res['settings']}); medians of {len(res['bare_scan']['runs'])} runs after a warm-up. Bare scan: {bare:.3f} s.",
        "",
        "| model | indb sum (s) | indb CTAS (s) | orbital sum (s) | orbital CTAS (s) | round trip (s) | indb / bare | indb / orbital | indb / round trip | indb SQL | compile (s) | orbital SQL |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in res["models"].values():
        i, o, rt = rec["indb"], rec["orbital"], rec["roundtrip"]["median"]
        osum = o.get("sum", {}).get("median")
        octas = o.get("ctas", {}).get("median")
        lines.append(
            "| {t} | {s:.3f} | {c:.3f} | {os} | {oc} | {rt:.3f} | {rb} | {ro} | {rr} | {b:,} B | {cs:.2f} | {ob} |".format(
                t=rec["title"],
                s=i["sum"]["median"],
                c=i["ctas"]["median"],
                os="fails" if osum is None else f"{osum:.3f}",
                oc="fails" if octas is None else f"{octas:.3f}",
                rt=rt,
                rb=ratio(i["sum"]["median"], bare),
                ro=ratio(i["sum"]["median"], osum),
                rr=ratio(i["ctas"]["median"], rt),
                b=i["sql_bytes"],
                cs=i["compile_seconds"],
                ob="—" if "sql_bytes" not in o else f"{o['sql_bytes']:,} B",
            )
        )
    errs = [(r["title"], r["orbital"]["error"]) for r in res["models"].values() if "error" in r["orbital"]]
    if errs:
        lines.append("")
        lines.extend(f"- orbital, {t}: {e}" for t, e in errs)
    return "\n".join(lines)


# ------------------------------------------------------------- the command line


def arguments(doc: str, out: str, dsn_help: str = "PostgreSQL to measure on (default: INDB_DSN / the private cluster)") -> argparse.ArgumentParser:
    """The options every measuring script takes: --dsn, --rows, --repeat, --out (a file in bench/), --markdown."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help=dsn_help)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / out))
    ap.add_argument("--markdown", action="store_true", help="print the Markdown table of --out and exit")
    return ap


def report(args, measure: Callable[[Any], dict], markdown: Callable[[dict], str]) -> int:
    """With --markdown, print the table of --out; else ``measure(args)``, write it to --out and print its table."""
    if args.markdown:
        print(markdown(json.loads(Path(args.out).read_text())))
        return 0
    res = measure(args)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(markdown(res))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = arguments(__doc__, "results.json")
    ap.add_argument("--models", help="comma-separated keys: lr,scaler_lr,onehot_linear,rf20,gb100,gb200,hgb,rf100,xgb200,mlp")
    ap.add_argument("--orbital-timeout", type=int, default=300, help="cancel an orbital statement after this many seconds (default 300)")
    ap.add_argument("--jit-off", action="store_true", help="also time indb's sum with jit = off (for the notes)")
    return report(ap.parse_args(argv), run, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
