"""Scoring a cached Spark DataFrame: indb's Spark SQL and indb's IR evaluator in
mapInPandas against a mapInPandas that calls scikit-learn (issue 16).

    python bench/spark.py [--rows 1000000] [--models lr,gb200,rf100,hgb] [--json bench/spark.json] [--markdown]

N rows x 20 double features (numpy's normal, through Arrow), cached and counted first, on local[2]. Each contender
computes ``sum`` of the model's score column (the positive class probability, or the
regression value) so the whole column is evaluated; medians of ``--repeat`` runs after
a warm-up; the three answers are checked against each other (max relative difference).
A contender that fails (Spark's code generation or heap on a large tree SQL) is reported
as failed with Spark's message; ``auto picks`` is what ``indb.spark.score`` runs. The scan
floor (``sum(x0 + ... + x19)`` of the cached frame) is printed first.
Needs pyspark and a Java 17+ runtime (``pip install -e '.[spark]'``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_FEATURES = 20
NAMES = [f"x{i}" for i in range(N_FEATURES)]


def models():
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, N_FEATURES))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=len(X)) > 0).astype(int)
    yr = X[:, 0] * 2 + np.sin(X[:, 3]) + rng.normal(scale=0.3, size=len(X))
    return {
        "lr": ("LogisticRegression", lambda: LogisticRegression(max_iter=500).fit(X, y), "proba"),
        "gb200": ("GradientBoostingClassifier 200×d4", lambda: GradientBoostingClassifier(n_estimators=200, max_depth=4).fit(X[:5000], y[:5000]), "proba"),
        "rf100": ("RandomForestRegressor 100×d8", lambda: RandomForestRegressor(n_estimators=100, max_depth=8, n_jobs=2).fit(X[:5000], yr[:5000]), "predict"),
        "hgb": ("HistGradientBoostingRegressor 100 it.", lambda: HistGradientBoostingRegressor(max_iter=100).fit(X, yr), "predict"),
    }


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm-up (code generation, Python workers, numba)
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--models", default="lr,gb200,rf100,hgb")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default="bench/spark.json")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args(argv)

    import os

    import pandas as pd
    from pyspark.sql import SparkSession, functions as F, types as T

    from indb import spark as ispark
    from indb.compilers import compile_model

    # the Python workers (mapInPandas) run this interpreter, which has indb, numpy and pyarrow
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("indb-bench").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2").config("spark.driver.memory", "3g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    # the rows come from numpy through Arrow: a frame of F.randn columns is nondeterministic,
    # so Spark would never match a SQL query over it to the cache and would draw the
    # numbers again in every SQL run (while mapInPandas read the cache)
    import pyarrow as pa

    X = np.random.default_rng(1).normal(size=(a.rows, N_FEATURES))
    df = spark.createDataFrame(pa.table([pa.array(X[:, j]) for j in range(N_FEATURES)], names=NAMES)).repartition(2).cache()
    del X
    df.count()
    # what any contender pays to read the 20 cached columns once: the floor of every ratio
    floor, _ = timed(lambda: df.agg(F.sum(sum((F.col(n) for n in NAMES[1:]), F.col(NAMES[0])))).collect()[0][0], a.repeat)
    results = []
    for key in a.models.split(","):
        label, fit, kind = models()[key]
        est = fit()
        m = compile_model(est, features=NAMES)
        v = ispark.Version("bench", 0, "", m)
        col = "probability_1" if kind == "proba" else "prediction"
        names = ispark._output_names(m, [kind], [])

        def indb_sql():
            return ispark._score_sql(df, v, [kind], []).agg(F.sum(col)).collect()[0][0]

        def indb_python():
            return ispark._score_python(df, v, names, []).agg(F.sum(col)).collect()[0][0]

        def sklearn_map():
            b = spark.sparkContext.broadcast(est)

            def run(batches):
                for pdf in batches:
                    X = pdf[NAMES].to_numpy()
                    s = b.value.predict_proba(X)[:, 1] if kind == "proba" else b.value.predict(X)
                    yield pd.DataFrame({col: s})

            return df.mapInPandas(run, T.StructType([T.StructField(col, T.DoubleType())])).agg(F.sum(col)).collect()[0][0]

        row = {"model": label, "rows": a.rows, "auto": ispark.choose_engine(m, "auto")[0]}
        for name, fn in (("indb_sql", indb_sql), ("indb_python", indb_python), ("sklearn_mapinpandas", sklearn_map)):
            try:
                row[name], row[name + "_sum"] = timed(fn, a.repeat)
                print(f"{label}: {name} {row[name]:.2f} s", flush=True)
            except Exception as e:  # noqa: BLE001 - a contender that cannot run is a result, not the end of the run
                row[name] = row[name + "_sum"] = None
                row[name + "_error"] = str(e).strip().splitlines()[-1][:200]
                print(f"{label}: {name} failed: {row[name + '_error']}", flush=True)
        ref = row["sklearn_mapinpandas_sum"]
        done = [row[k + "_sum"] for k in ("indb_sql", "indb_python") if row[k + "_sum"] is not None]
        row["max_rel_diff"] = max((abs(v - ref) / max(abs(ref), 1e-300) for v in done), default=None) if ref is not None else None
        results.append(row)
    Path(a.json).write_text(json.dumps({"scan_floor": floor, "results": results}, indent=1))
    if a.markdown:
        def cell(v):
            return "failed" if v is None else f"{v:.2f}"

        def ratio(v, s):
            return "—" if v is None or s is None else f"{v / s:.2f}"

        print(f"Scan floor (`sum(x0 + … + x19)` over the cached frame): {floor:.2f} s")
        print("| model | indb SQL (s) | indb mapInPandas (s) | sklearn mapInPandas (s) | SQL / sklearn | evaluator / sklearn | auto picks | auto / sklearn | sums agree to |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results:
            s = r["sklearn_mapinpandas"]
            auto = r["indb_sql" if r["auto"] == "sql" else "indb_python"]
            agree = "—" if r["max_rel_diff"] is None else f"{r['max_rel_diff']:.0e}"
            print(f"| {r['model']} | {cell(r['indb_sql'])} | {cell(r['indb_python'])} | {cell(s)} | {ratio(r['indb_sql'], s)} | "
                  f"{ratio(r['indb_python'], s)} | {r['auto']} | {ratio(auto, s)} | {agree} |")
        for r in results:
            for k in ("indb_sql", "indb_python", "sklearn_mapinpandas"):
                if r.get(k + "_error"):
                    print(f"- {r['model']}, {k}: {r[k + '_error']}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
