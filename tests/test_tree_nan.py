"""Trees test NaN once per row: rows with a NaN anywhere take the branch whose splits
route NaN, every other row takes the branch with one comparison per split.

A tree fitted with NaN in both features sends missing values left at some splits and
right at others; rows sit on each threshold and one ulp either side, at +-1e38, NaN and
NULL, alone and mixed, and PostgreSQL and DuckDB must equal scikit-learn on every one.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from indb import ir
from indb.ir.evaluate import columns_from_matrix
from indb.sqlgen.compile import lower_model, to_ir
from tests.sql_engines import LOADERS, mismatches, run, table_rows


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    X[rng.random(400) < 0.15, 0] = np.nan
    X[rng.random(400) < 0.15, 1] = np.nan
    y = np.where(np.isnan(X[:, 0]), 5.0, X[:, 0]) + 2 * np.nan_to_num(X[:, 1], nan=-3.0)
    est = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, y)
    t = est.tree_
    edge = []
    for thr in t.threshold[(t.feature >= 0) & np.isfinite(t.threshold)]:
        for v in (thr, math.nextafter(thr, math.inf), math.nextafter(thr, -math.inf)):
            edge += [(v, 0.1), (0.1, v), (v, math.nan), (math.nan, v)]
    # scikit-learn refuses infinities (and values beyond float32): the extremes it takes
    edge += [(1e38, -1e38), (-1e38, 1e38), (math.nan, math.nan), (1e38, math.nan), (math.nan, -1e38)]
    return est, np.vstack([X[:60], np.array(edge, dtype=float)])


def test_missing_goes_both_ways(fitted):
    est, _ = fitted
    model = to_ir(est)
    tree = model.output("predict")
    ens = next(n for n in ir.walk(tree) if isinstance(n, ir.TreeEnsemble))
    sides = {bool(m) for t in ens.trees for f, m in zip(t.feature, t.missing_left) if f >= 0}
    assert sides == {True, False}, "the fixture must split missing values both ways"


def test_one_comparison_per_split_without_nan(fitted):
    est, _ = fitted
    case = lower_model(est, dialect="postgres").columns[0][1]
    assert case.sql("postgres").startswith("CASE WHEN GREATEST(x0, x1) = CAST('NaN' AS DOUBLE PRECISION) THEN")
    slow, fast = case.args["ifs"][0].args["true"].sql("postgres"), case.args["default"].sql("postgres")
    assert "AND x0<'NaN'" in slow and "'NaN'" not in fast


@pytest.mark.parametrize("engine", ["postgres", "duckdb"])
def test_rows_with_nan_anywhere_equal_the_model(fitted, engine, request):
    est, X = fitted
    model = to_ir(est)
    conn = request.getfixturevalue("pg_schema_conn") if engine == "postgres" else duckdb.connect()
    rows = table_rows(model, columns_from_matrix(model, X))
    # NULL as well as NaN: the same rows with NaN written as NULL
    rows += [(len(rows) + i, *[None if isinstance(v, float) and math.isnan(v) else v for v in r[1:]]) for i, r in enumerate(rows)]
    LOADERS[engine](conn, "t_tree_nan", model, rows)
    query = lower_model(est, dialect=engine, share=True).select("t_tree_nan", keep=["id"]).order_by("id").sql(engine)
    got = [r[1] for r in run(conn, engine, query)]
    want = list(est.predict(np.array([[np.nan if v is None else v for v in r[1:]] for r in rows], dtype=float)))
    bad = mismatches(want, got, 1e-12, 0.0)
    assert not bad, f"{engine}: rows {[(i, rows[i][1:], w, g) for i, w, g in bad[:5]]}"
