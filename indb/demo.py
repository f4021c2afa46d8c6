"""The model and table of the main job (``scripts/demo``): scikit-learn's diabetes data.

    python -m indb.demo prepare DIR   # train, save DIR/diabetes.skops, load table demo_diabetes
    python -m indb.demo check FILE    # the database's predictions equal the model's own

The model is saved with skops, which stores no code: ``indb deploy`` loads it without
``--allow-pickle``.

It uses the database indb would use (``INDB_DSN``, libpq's environment, or the private
cluster).
"""

from __future__ import annotations

import sys
from pathlib import Path

TABLE = "demo_diabetes"


def _data():
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True)


def prepare(directory: str) -> Path:
    import skops.io
    from psycopg import sql
    from sklearn.ensemble import GradientBoostingRegressor

    from indb.catalog.connection import connect, user_schema

    data = _data()
    X, y = data.data, data.target
    model = GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0).fit(X.iloc[:400], y.iloc[:400])
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "diabetes.skops"
    skops.io.dump(model, path)
    cols = [sql.SQL("id integer PRIMARY KEY")] + [sql.SQL("{} double precision").format(sql.Identifier(c)) for c in X.columns]
    with connect(None, purpose="demo") as conn:
        # indb's connections pin search_path to pg_catalog: the table goes where the user's would
        table = sql.Identifier(user_schema(conn), TABLE)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(cols)))
        with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(table)) as cp:
            for i, row in enumerate(X.itertuples(index=False)):
                cp.write_row((i, *row))
    print(f"trained GradientBoostingRegressor(100 trees, depth 3) on 400 rows, saved {path}")
    print(f"loaded {len(X)} rows into table {TABLE}")
    return path


def check(model_path: str) -> float:
    import numpy as np
    from psycopg import sql

    from indb.catalog.connection import connect, user_relation
    from indb.compilers.files import load_model_file

    data = _data()
    model, _ = load_model_file(model_path)
    with connect(None, purpose="demo") as conn:
        table = conn.execute("SELECT %s::oid::regclass::text", [user_relation(conn, TABLE)]).fetchone()[0]
        got = conn.execute(sql.SQL("SELECT indb.predict('diabetes', d) FROM {} d ORDER BY id").format(sql.SQL(table))).fetchall()
    got = np.array([r[0] for r in got])
    want = model.predict(data.data)
    err = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-12)))
    print(f"indb.predict in PostgreSQL vs the model's own predict on all {len(want)} rows: max relative difference {err:.1e}")
    if err > 1e-9:
        raise SystemExit("the database's predictions differ from the model's")
    return err


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
