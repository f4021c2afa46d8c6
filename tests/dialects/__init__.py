"""Golden SQL per dialect (sqlglot's ``tests/dialects`` style): one small IR per concern,
and per dialect the exact SQL indb writes for it, or the error it raises.

``validate(model, write={dialect: expected})`` compiles ``model`` (an ``ir.Model`` or a
bare IR expression over features ``x0``, ``x1``, ...) to a scalar expression for each
dialect and compares the text; an exception class as the expectation means compiling
must raise it. Where a dialect can run in this process (DuckDB, SQLite, a local Spark), ``rows`` (values of
x0, x1, ...) makes the golden SQL also run there and equal the IR evaluator on those rows, so a golden
string is never the only proof.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pytest

from indb import ir
from indb.ir.evaluate import evaluate
from indb.sqlgen.compile import compile_sql


def as_model(e: ir.Expr | ir.Model) -> ir.Model:
    if isinstance(e, ir.Model):
        return e
    names = sorted(ir.features_used(e))
    return ir.Model(tuple(ir.FeatureSpec(n) for n in names), (("predict", e),))


def validate(e: ir.Expr | ir.Model, write: Mapping[str, Any], rows: Sequence[Sequence[float | None]] = ()) -> None:
    model = as_model(e)
    for dialect, want in write.items():
        if isinstance(want, type) and issubclass(want, BaseException):
            with pytest.raises(want):
                compile_sql(model, dialect)
            continue
        got = compile_sql(model, dialect)
        assert got == want, f"{dialect}:\n got: {got}\nwant: {want}"
        if rows and dialect in RUNNERS:
            run_rows(model, dialect, got, rows)


def _duckdb(names, rows, sql):
    import duckdb  # noqa: PLC0415

    conn = duckdb.connect()
    cols = ", ".join(f'"{n}" DOUBLE' for n in names)  # test-only DDL: names come from the test
    conn.execute(f"CREATE TABLE t (i INTEGER, {cols})")
    conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in range(len(names) + 1))})", [(i, *r) for i, r in enumerate(rows)])
    return [r[0] for r in conn.execute(f"SELECT {sql} FROM t ORDER BY i").fetchall()]


def _sqlite(names, rows, sql):
    import sqlite3  # noqa: PLC0415

    conn = sqlite3.connect(":memory:")
    cols = ", ".join(f'"{n}" REAL' for n in names)
    conn.execute(f"CREATE TABLE t (i INTEGER, {cols})")
    # SQLite stores NaN as NULL
    clean = [(i, *[None if isinstance(v, float) and math.isnan(v) else v for v in r]) for i, r in enumerate(rows)]
    conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in range(len(names) + 1))})", clean)
    return [r[0] for r in conn.execute(f"SELECT {sql} FROM t ORDER BY i").fetchall()]


def _spark(names, rows, sql):
    """Run on Spark with ANSI mode on, then off: both must give the IR's answers."""
    from tests import spark_engine  # noqa: PLC0415

    spark = spark_engine.session()
    model = ir.Model(tuple(ir.FeatureSpec(n) for n in names), ())
    spark_engine.load_spark(spark, "t", model, [(i, *r) for i, r in enumerate(rows)])
    on, off = (spark_engine.run_spark(spark, f"SELECT {sql} FROM t ORDER BY id", ansi) for ansi in (True, False))
    assert repr(on) == repr(off), f"spark: ANSI on and off differ: {on} vs {off}"
    return [r[0] for r in on]


RUNNERS = {"duckdb": _duckdb, "sqlite": _sqlite, "spark": _spark}


def run_rows(model: ir.Model, dialect: str, sql: str, rows) -> None:
    """``rows`` hold values of x0, x1, ...; the model reads the ones it names."""
    names = model.feature_names
    rows = [tuple(r[int(n[1:])] for n in names) for r in rows]
    cols = {n: np.array([np.nan if r[j] is None else r[j] for r in rows], dtype=float) for j, n in enumerate(names)}
    with np.errstate(all="ignore"):
        want = evaluate(model.output("predict"), cols)
    got = RUNNERS[dialect](names, rows, sql)
    for i, (w, g) in enumerate(zip(want, got)):
        w = w.item() if isinstance(w, np.generic) else w
        w_missing = w is None or (isinstance(w, float) and math.isnan(w))
        g_missing = g is None or (isinstance(g, float) and math.isnan(g))
        assert w_missing == g_missing and (w_missing or w == g or abs(w - g) <= 1e-12 * max(abs(w), 1.0)), (
            f"{dialect} row {rows[i]}: SQL gives {g!r}, the IR {w!r}"
        )
