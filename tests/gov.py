"""Shared pieces of the governance tests: small models deployed into a test database,
a source table of their features, and connections as other roles."""

from __future__ import annotations

import numpy as np
import psycopg

FEATURES = ["a", "b", "c"]


def train_lr():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] - X[:, 1] + 0.3 * X[:, 2] > 0).astype(int)
    return LogisticRegression().fit(X, y)


def train_gb():
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    return GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0).fit(X, y)


def train_text():
    """A pipeline with a text feature ("c", one-hot) and text class labels."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300),
                          "c": rng.choice(["red", "green", "blue"], size=300)})
    y = np.where(frame["a"] + (frame["c"] == "red") > 0.5, "yes", "no")
    pipe = Pipeline([("ct", ColumnTransformer([("oh", OneHotEncoder(handle_unknown="ignore"), ["c"])], remainder="passthrough")),
                     ("m", LogisticRegression())])
    return pipe.fit(frame, y)


def deploy(dsn, estimator, name, **kw):
    from indb.registry.versions import deploy as _deploy

    kw.setdefault("features", FEATURES if not hasattr(estimator, "feature_names_in_") else None)
    return _deploy(estimator, name, dsn=dsn, **kw)


def make_source(conn, table="src", n=200, seed=3, schema="public"):
    """A table (id, a, b, c) of n rows; returns the features as an array."""
    from psycopg import sql

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    ident = sql.Identifier(schema, table)
    conn.execute(sql.SQL("CREATE TABLE {} (id integer PRIMARY KEY, a double precision, b double precision, c double precision)").format(ident))
    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(ident)) as cp:
        for i, row in enumerate(X):
            cp.write_row((i, *map(float, row)))
    conn.execute(sql.SQL("ANALYZE {}").format(ident))
    return X


def counts(conn) -> tuple:
    """What a failed call must leave unchanged: registry and log row counts."""
    return conn.execute(
        "SELECT (SELECT count(*) FROM indb.versions), (SELECT count(*) FROM indb.aliases),"
        " (SELECT count(*) FROM indb.alias_history), (SELECT count(*) FROM indb.scoring_calls),"
        " (SELECT count(*) FROM indb.prediction_log)").fetchone()


def connect(dsn, **kw):
    return psycopg.connect(dsn, autocommit=True, **kw)
