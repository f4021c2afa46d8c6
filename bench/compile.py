"""Compile-time benchmark: model -> IR -> SQL text, per dialect, in one run.

Run by hand (no database needed)::

    python bench/compile.py
    python bench/compile.py --dialects postgres,duckdb --repeat 3

For a RandomForestRegressor 100x8 (20 features) and an MLPRegressor 20 -> 64 -> 64 -> 1 it
reports, per dialect, the seconds from the fitted estimator to the rendered
``SELECT ... FROM t`` (``indb compile --table``'s work: IR, passes, lowering, rendering;
best of ``--repeat``) and the SQL's size as a multiple of PostgreSQL's. Targets (issue
14): compile at most 2 s on every dialect; no dialect's SQL more than 1.2x PostgreSQL's.
These are measurements, not tests: the suite checks sizes and answers, never the clock.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIALECTS = ("postgres", "duckdb", "sqlite", "spark", "mysql")


def models():
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 20))
    y = X[:, :5].sum(axis=1) + rng.normal(size=4000) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield "RandomForest 100x8", RandomForestRegressor(n_estimators=100, max_depth=8, random_state=0).fit(X, y)
        yield "MLP 20-64-64-1", MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=50, random_state=0).fit(X[:500], y[:500])


def main(argv=None) -> int:
    from indb.sqlgen.compile import lower_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dialects", default=",".join(DIALECTS), help="comma-separated (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per model and dialect; the best is reported")
    args = ap.parse_args(argv)
    dialects = [d for d in args.dialects.split(",") if d]
    print("| model | dialect | compile s | SQL bytes | x PostgreSQL |")
    print("|---|---|---|---|---|")
    for label, est in models():
        base = None
        for dialect in dialects:
            best, size = float("inf"), 0
            for _ in range(max(1, args.repeat)):
                t0 = time.perf_counter()
                text = lower_model(est, dialect=dialect, output="predict", share=True).select("t", keep=["id"]).sql(dialect)
                best = min(best, time.perf_counter() - t0)
                size = len(text.encode())
            base = size if dialect == "postgres" else base
            ratio = f"{size / base:.2f}" if base else "-"
            print(f"| {label} | {dialect} | {best:.2f} | {size:,} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
