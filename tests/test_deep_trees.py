"""Deep trees on engines whose parser nests only so far (issue 14.3).

SQLite's parser stack overflowed ("parser stack overflow") on a depth-25 DecisionTree
and on a HistGradientBoosting with categorical splits and missing values, written as
nested CASE. Trees on dialects with a CASE nesting limit are now chains of WHENs whose
nesting does not grow with depth: both models run on real SQLite and DuckDB and equal
the model's own predict.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.tree import DecisionTreeRegressor

from indb.compilers import compile_model
from indb.ir.evaluate import columns_from_matrix
from indb.sqlgen.compile import compile_sql, lower_model
from indb.sqlgen.dialects import target
from tests.sql_engines import LOADERS, mismatches, run, table_rows


def _data(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 0] = rng.integers(0, 30, n)
    X[:, 1] = rng.integers(0, 20, n)
    y = np.sin(X[:, 2] * 3) + (X[:, 0] % 7) * 0.3 + (X[:, 1] % 5) + X[:, 3] ** 2 + rng.normal(size=n) * 0.3
    X[rng.random(X.shape) < 0.15] = np.nan
    return X, y


def _deep_tree():
    X, y = _data(0)
    est = DecisionTreeRegressor(max_depth=25, random_state=0).fit(X, y)
    assert est.get_depth() == 25
    return est, X


def _deep_hgb():
    X, y = _data(1)
    est = HistGradientBoostingRegressor(max_iter=3, max_depth=None, max_leaf_nodes=None, min_samples_leaf=2,
                                        categorical_features=[0, 1], random_state=0).fit(X, y)
    return est, X


MODELS = {"decision_tree_depth25": _deep_tree, "hist_gradient_boosting_categorical": _deep_hgb}


def _depth(model) -> int:
    from indb import ir  # noqa: PLC0415

    return max(t.depth() for n in ir.walk(model.output("predict")) if isinstance(n, ir.TreeEnsemble) for t in n.trees)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_deep_trees_equal_the_model(name, engine, request):
    est, X = MODELS[name]()
    model = compile_model(est)
    assert _depth(model) >= 20  # deep enough to have overflowed SQLite's parser before
    conn = request.getfixturevalue(f"{engine}_conn")
    rows = table_rows(model, columns_from_matrix(model, X))
    LOADERS[engine](conn, "t", model, rows)
    query = lower_model(model, dialect=engine, share=True).select("t", keep=["id"]).order_by("id").sql(engine)
    got = [r[1] for r in run(conn, engine, query)]
    bad = mismatches(est.predict(X), got, 1e-9, 1e-12)
    assert not bad, f"{name} on {engine}: {len(bad)} rows differ, e.g. {bad[:3]}"


def _max_case_nesting(sql: str) -> int:
    depth = best = 0
    for word in re.findall(r"\bCASE\b|\bEND\b", sql):
        depth += 1 if word == "CASE" else -1
        best = max(best, depth)
    return best


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_tree_nesting_stays_within_the_dialect_limit(dialect):
    est, _ = _deep_tree()
    sql = compile_sql(est, dialect)
    limit = target(dialect).max_case_nesting
    assert _max_case_nesting(sql) <= limit // 2, f"{dialect}: CASE nests {_max_case_nesting(sql)} deep"
    # without a limit the tree stays one nested CASE per level (fewest comparisons)
    assert _max_case_nesting(compile_sql(est, "duckdb")) >= 20
