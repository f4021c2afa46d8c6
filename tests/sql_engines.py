"""Load rows into the real engines and run generated SQL there (PostgreSQL, DuckDB, SQLite).

Test data keeps NaN and NULL apart: in every other row that holds a NaN, the NaN is
sent as SQL NULL instead, so both kinds of missing value reach each engine.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from psycopg import sql as pgsql

from indb import ir


def table_rows(model: ir.Model, columns: dict[str, Sequence[Any]]) -> list[tuple]:
    """Rows (id, feature values...) with NaN turned into None in every other NaN-bearing row."""
    n = len(next(iter(columns.values())))
    names = model.feature_names
    kinds = [f.kind for f in model.features]
    rows = []
    flip = False
    for i in range(n):
        vals = []
        for name, kind in zip(names, kinds):
            v = columns[name][i]
            if isinstance(v, np.generic):
                v = v.item()
            if kind == ir.TEXT and isinstance(v, float) and math.isnan(v):
                v = None  # a missing category is NULL; a float NaN would become the text 'nan'
            vals.append(v)
        has_nan = any(isinstance(v, float) and math.isnan(v) for v in vals)
        if has_nan:
            flip = not flip
            if flip:
                vals = [None if isinstance(v, float) and math.isnan(v) else v for v in vals]
        rows.append((i, *vals))
    return rows


def _sql_type(kind: str, engine: str) -> str:
    if kind == ir.TEXT:
        return "TEXT"
    return {"postgres": "DOUBLE PRECISION", "duckdb": "DOUBLE", "sqlite": "REAL"}[engine]


def load_postgres(conn, table: str, model: ir.Model, rows: list[tuple]) -> None:
    cols = [pgsql.SQL("{} bigint").format(pgsql.Identifier("id"))]
    for f in model.features:
        cols.append(pgsql.SQL("{} " + _sql_type(f.kind, "postgres")).format(pgsql.Identifier(f.name)))
    conn.execute(pgsql.SQL("DROP TABLE IF EXISTS {}").format(pgsql.Identifier(table)))
    conn.execute(pgsql.SQL("CREATE TABLE {} ({})").format(pgsql.Identifier(table), pgsql.SQL(", ").join(cols)))
    names = [pgsql.Identifier("id")] + [pgsql.Identifier(f.name) for f in model.features]
    with conn.cursor() as cur:
        with cur.copy(pgsql.SQL("COPY {} ({}) FROM STDIN").format(pgsql.Identifier(table), pgsql.SQL(", ").join(names))) as cp:
            for r in rows:
                cp.write_row(r)


def load_duckdb(conn, table: str, model: ir.Model, rows: list[tuple]) -> None:
    cols = ['"id" BIGINT'] + [f'"{f.name}" {_sql_type(f.kind, "duckdb")}' for f in model.features]
    conn.execute(f'DROP TABLE IF EXISTS "{table}"')  # test-only: names come from the test itself
    conn.execute(f'CREATE TABLE "{table}" ({", ".join(cols)})')
    marks = ", ".join("?" for _ in range(len(model.features) + 1))
    conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)


def load_sqlite(conn, table: str, model: ir.Model, rows: list[tuple]) -> None:
    cols = ['"id" INTEGER'] + [f'"{f.name}" {_sql_type(f.kind, "sqlite")}' for f in model.features]
    conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    conn.execute(f'CREATE TABLE "{table}" ({", ".join(cols)})')
    marks = ", ".join("?" for _ in range(len(model.features) + 1))
    # SQLite has no NaN: it stores NaN as NULL, which is what we test against
    clean = [tuple(None if isinstance(v, float) and math.isnan(v) else v for v in r) for r in rows]
    conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', clean)


LOADERS = {"postgres": load_postgres, "duckdb": load_duckdb, "sqlite": load_sqlite}


def run(conn, engine: str, query: str) -> list[tuple]:
    if engine == "postgres":
        return conn.execute(query).fetchall()
    return conn.execute(query).fetchall()


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def mismatches(expected: Sequence[Any], got: Sequence[Any], rtol: float, atol: float) -> list[tuple[int, Any, Any]]:
    """Rows where ``got`` differs: labels exactly, numbers within rtol (atol near 0), missing == missing."""
    bad = []
    for i, (w, g) in enumerate(zip(expected, got)):
        if isinstance(w, np.generic):
            w = w.item()
        if is_missing(w) or is_missing(g):
            if is_missing(w) != is_missing(g):
                bad.append((i, w, g))
            continue
        if isinstance(w, str) or isinstance(g, str):
            if str(w) != str(g):
                bad.append((i, w, g))
            continue
        w, g = float(w), float(g)
        if w == g:
            continue
        if math.isinf(w) or math.isinf(g) or abs(w - g) > max(rtol * abs(w), atol):
            bad.append((i, w, g))
    return bad
