"""A label chosen by one comparison of a score after its missing test, on PostgreSQL.

A binary linear classifier's label is ``CASE WHEN missing(z) THEN NULL WHEN z > 0 THEN
b ELSE a END``; PostgreSQL gets it as one ``width_bucket`` lookup that reads the score
once (``Lowering._bucket_case``). These tests run that lookup on a real PostgreSQL over
every comparison operator, thresholds at 0, -0, a fraction, the edges of the doubles, and
rows on, one ulp either side of, and far from each threshold, NULL, NaN and both
infinities, against the IR evaluator; then a real scikit-learn model's labels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from psycopg import sql

from indb import ir
from indb.ir.evaluate import evaluate
from indb.sqlgen.compile import compile_sql

X = ir.Feature("x")
OPS = ("<", "<=", ">", ">=")
THRESHOLDS = (0.0, -0.0, 0.5, -2.5, 5e-324, -1.7976931348623157e308, 1.7976931348623157e308)


def _rows(c: float) -> list[float | None]:
    near = [c, math.nextafter(c, math.inf), math.nextafter(c, -math.inf), math.nextafter(math.nextafter(c, math.inf), math.inf)]
    return [*near, 0.0, -0.0, 5e-324, -5e-324, 1.0, -1.0, 1e300, -1e300, math.inf, -math.inf, math.nan, None]


def _check(conn, expression: ir.Expr, rows: list[float | None]) -> str:
    model = ir.Model((ir.FeatureSpec("x"),), (("predict", expression),))
    query = compile_sql(model, "postgres")
    got = [r[0] for r in conn.execute(
        sql.SQL("SELECT {} FROM unnest(%s::float8[]) WITH ORDINALITY AS t(x, i) ORDER BY i").format(sql.SQL(query)), [rows]).fetchall()]
    with np.errstate(all="ignore"):
        want = evaluate(expression, {"x": np.array([math.nan if v is None else v for v in rows], dtype=float)})
    for v, w, g in zip(rows, want, got):
        w = w.item() if isinstance(w, np.generic) else w
        missing = w is None or (isinstance(w, float) and math.isnan(w))
        assert (g is None) if missing else (g == w), f"x = {v!r}: PostgreSQL gives {g!r}, the IR {w!r} ({query})"
    return query


@pytest.mark.parametrize("op", OPS)
def test_numeric_labels_equal_the_ir_on_and_around_every_threshold(pg_schema_conn, op):
    for c in THRESHOLDS:
        e = ir.Case(((ir.IsMissing(X), ir.Const(None)), (ir.Compare(op, X, ir.Const(c)), ir.Const(7.0))), ir.Const(-3.0))
        query = _check(pg_schema_conn, e, _rows(c))
        # the shape the lookup serves (a threshold whose next double is infinite keeps the CASE)
        assert ("WIDTH_BUCKET" in query) == math.isfinite(c if op in (">=", "<") else math.nextafter(c, math.inf)), query


@pytest.mark.parametrize("op", OPS)
def test_text_labels_equal_the_ir(pg_schema_conn, op):
    e = ir.Case(((ir.IsMissing(X), ir.Const(None, ir.TEXT)), (ir.Compare(op, X, ir.Const(0.0)), ir.Const("yes", ir.TEXT))),
                ir.Const("no's", ir.TEXT))
    assert "WIDTH_BUCKET" in _check(pg_schema_conn, e, _rows(0.0))


def test_other_shapes_keep_the_case(pg_schema_conn):
    # a missing value that is not NULL, a non-constant label, a threshold that is a feature
    imputed = ir.Case(((ir.IsMissing(X), ir.Const(1.0)), (ir.Compare(">", X, ir.Const(0.0)), ir.Const(2.0))), ir.Const(3.0))
    read = ir.Case(((ir.IsMissing(X), ir.Const(None)), (ir.Compare(">", X, ir.Const(0.0)), X)), ir.Const(3.0))
    other = ir.Case(((ir.IsMissing(X), ir.Const(None)), (ir.Compare(">", ir.BinOp("*", X, ir.Const(2.0)), ir.Const(0.0)), ir.Const(2.0))),
                    ir.Const(3.0))
    for e in (imputed, read, other):
        assert "WIDTH_BUCKET" not in _check(pg_schema_conn, e, _rows(0.0))


def test_logistic_regression_label_reads_its_score_once(pg_schema_conn):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    features = rng.normal(size=(300, 3))
    est = LogisticRegression().fit(features, np.where(features[:, 0] - features[:, 1] > 0, "churn", "stay"))
    query = compile_sql(est, "postgres", features=["a", "b", "c"])
    assert query.count(" * ") == 3 and "WIDTH_BUCKET" in query, query  # the score is written once
    rows = [*map(tuple, rng.normal(size=(200, 3)) * 3), (0.0, 0.0, 0.0), (math.nan, 1.0, 1.0), (None, 1.0, 1.0), (math.inf, 0.0, 0.0),
            (-math.inf, 0.0, 0.0), (1e300, -1e300, 0.0)]
    pg_schema_conn.execute("CREATE TABLE lr_rows (i integer, a float8, b float8, c float8)")
    with pg_schema_conn.cursor() as cur:
        cur.executemany("INSERT INTO lr_rows VALUES (%s, %s, %s, %s)", [(i, *map(lambda v: None if v is None else float(v), r)) for i, r in enumerate(rows)])
    got = [r[0] for r in pg_schema_conn.execute(sql.SQL("SELECT {} FROM lr_rows ORDER BY i").format(sql.SQL(query))).fetchall()]
    finite = [i for i, r in enumerate(rows) if all(v is not None and math.isfinite(v) for v in r)]
    want = est.predict(np.array([rows[i] for i in finite], dtype=float))
    assert [got[i] for i in finite] == list(want)
    # a missing input makes the score missing: no label (the rule of every indb classifier)
    assert got[len(rows) - 5] is None and got[len(rows) - 4] is None
    # an infinite input gives an infinite score, whose label is its sign's
    assert got[len(rows) - 3] == "churn" and got[len(rows) - 2] == "stay"
