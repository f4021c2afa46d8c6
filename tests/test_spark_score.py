"""indb.spark.score: a version deployed on PostgreSQL, scored on a local Spark (issue 16 item 2).

The same rows scored by ``indb score`` inside PostgreSQL and by ``indb.spark.score`` on a
Spark DataFrame must agree row for row (labels exactly, probabilities to 1e-9), through
both Spark engines (Spark SQL and the IR evaluator in mapInPandas); every call is in
``indb.scoring_calls``; a changed IR and a wrongly typed column are refused with a clear
message.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from indb import errors
from indb import spark as ispark
from indb.governance.score import score as pg_score
from tests.gov import connect, deploy, make_source, train_gb


@pytest.fixture(scope="module")
def deployed(pg_server, pg_migrated_template):
    """One catalog for the module: GradientBoosting deployed as m, a 200-row table src
    (with NULL rows), and PostgreSQL's own scores of it."""
    name = pg_server.new_name("spark", prefix="spk")
    pg_server.create_database(name, template=pg_migrated_template)
    dsn = pg_server.dsn(name)
    est = train_gb()
    deploy(dsn, est, "m")
    with connect(dsn) as conn:
        make_source(conn, n=200)
        conn.execute("UPDATE src SET a = NULL WHERE id IN (3, 50); UPDATE src SET b = 'NaN' WHERE id = 7")
        pg_score("m", "src", "scored", keep=["id"], conn=conn)
        want = conn.execute("SELECT * FROM scored ORDER BY id").fetchall()
        cols = [r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'scored'::regclass AND attnum > 0 ORDER BY attnum")]
        src = conn.execute("SELECT id, a, b, c FROM src ORDER BY id").fetchall()
    yield dsn, src, cols, want
    pg_server.drop_database(name)


def _frame(spark, rows, types=("bigint", "double", "double", "double")):
    arrow = {"bigint": pa.int64(), "double": pa.float64(), "string": pa.string()}
    names = ["id", "a", "b", "c"]
    return spark.createDataFrame(pa.table([pa.array([r[i] for r in rows], type=arrow[t]) for i, t in enumerate(types)], names=names))


def _same(want, got) -> None:
    assert len(want) == len(got)
    for w, g in zip(want, got):
        assert w[:2] == g[:2], (w, g)  # id and label exactly
        for x, y in zip(w[2:], g[2:]):
            assert (x is None) == (y is None) or (isinstance(y, float) and math.isnan(y) and x is None), (w, g)
            if x is not None:
                assert abs(x - y) <= 1e-9 * max(abs(x), 1e-3), (w, g)


@pytest.mark.parametrize("engine", ["sql", "python"])
def test_spark_scores_equal_postgres(spark, deployed, engine, tmp_path):
    dsn, src, cols, want = deployed
    log = tmp_path / "log.parquet"
    out = ispark.score(_frame(spark, src), "m@champion", dsn=dsn, keep=["id"], engine=engine, log_to=str(log), key="id")
    assert out.columns == cols == ["id", "prediction", "probability_0", "probability_1"]
    _same(want, sorted(tuple(r) for r in out.collect()))
    with connect(dsn) as conn:
        call = conn.execute("SELECT call_id, model, version, entry_point, rows_scored, target, finished_at IS NOT NULL, called_by = session_user"
                            " FROM indb.scoring_calls WHERE entry_point = 'spark.score' ORDER BY call_id DESC LIMIT 1").fetchone()
    assert call[1:] == ("m", 1, "spark.score", 200, str(log), True, True)
    logged = spark.read.parquet(str(log)).orderBy("row_key").collect()
    assert {r.call_id for r in logged} == {call[0]} and len(logged) == 200
    row = next(r for r in logged if r.row_key == "10")
    assert row.features == list(src[10][1:]) and row.prediction == want[10][1] and row.features_text is None


def test_wrong_column_type_is_a_clear_error(spark, deployed):
    dsn, src, _, _ = deployed
    df = _frame(spark, [(i, str(a), b, c) for i, a, b, c in src[:5]], types=("bigint", "string", "double", "double"))
    with pytest.raises(errors.UsageError, match=r"column 'a' is string, but feature 'a' of m@1 is numeric: cast it"):
        ispark.score(df, "m", dsn=dsn)
    with pytest.raises(errors.UsageError, match=r"m@1 needs column\(s\) c, which the DataFrame lacks"):
        ispark.score(_frame(spark, src[:5]).drop("c"), "m", dsn=dsn)


def test_tampered_ir_is_refused(spark, pg_server, pg_migrated_template):
    name = pg_server.new_name("sparkt", prefix="spk")
    pg_server.create_database(name, template=pg_migrated_template)
    dsn = pg_server.dsn(name)
    try:
        deploy(dsn, train_gb(), "m")
        with connect(dsn) as conn:
            # a superuser, past the immutability trigger and the checksum constraint, changes one
            # digit of a threshold, not the checksum (as tests/test_engine.py does)
            conn.execute("ALTER TABLE indb.versions DISABLE TRIGGER versions_immutable")
            conn.execute("ALTER TABLE indb.versions DROP CONSTRAINT versions_ir_checksum")
            conn.execute("UPDATE indb.versions SET ir = overlay(ir PLACING"
                         " CASE WHEN substr(ir, strpos(ir, '\"threshold\":[') + 14, 1) = '1' THEN '2' ELSE '1' END"
                         " FROM strpos(ir, '\"threshold\":[') + 14 FOR 1) WHERE model = 'm'")
        with pytest.raises(errors.IntegrityError, match=r"integrity check failed for m@1: .* refusing to score"):
            ispark.score(_frame(spark, [(0, 1.0, 2.0, 3.0)]), "m", dsn=dsn)
        with connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM indb.scoring_calls WHERE entry_point = 'spark.score'").fetchone()[0] == 0
    finally:
        pg_server.drop_database(name)


def test_spark_score_command_writes_parquet(spark, deployed, tmp_path, capsys):
    from indb.cli import main

    dsn, src, cols, want = deployed
    source, target = tmp_path / "src.parquet", tmp_path / "scores"
    _frame(spark, src).write.parquet(str(source))
    argv = ["spark-score", "m", "--from", str(source), "--into", str(target), "--keep", "id", "--dsn", dsn]
    assert main(argv) == 0
    assert "scored with m into" in capsys.readouterr().out
    got = spark.read.parquet(str(target))
    assert got.columns == cols
    _same(want, sorted(tuple(r) for r in got.collect()))
    # an existing --into is a one-line error, not a traceback
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert f"--into {target}:" in err and "(--replace overwrites it)" in err and "Traceback" not in err


def test_auto_takes_the_evaluator_for_large_tree_ensembles():
    """Spark SQL for linear models and small trees; the IR evaluator (mapInPandas) past
    SPARK_STEPS_LIMIT tree comparisons per row, where Spark's code generation gives up."""
    import numpy as np
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    from indb.compilers import compile_model

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), rng.normal(size=300)
    small = compile_model(GradientBoostingRegressor(n_estimators=5, max_depth=2, random_state=0).fit(X, y))
    large = compile_model(GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0).fit(X, y))
    assert ispark.choose_engine(compile_model(LinearRegression().fit(X, y)), "auto")[0] == "sql"
    assert ispark.choose_engine(small, "auto")[0] == "sql"
    engine, why = ispark.choose_engine(large, "auto")
    assert engine == "python" and "tree comparisons per row" in why, why
    assert ispark.choose_engine(large, "sql") == ("sql", "asked for")


@pytest.mark.parametrize("engine", ["sql", "python"])
def test_awkward_column_names_score_on_both_engines(spark, engine):
    """Feature and kept columns named like SQL keywords, with spaces, dots, mixed case or a
    backtick reach Spark as columns, never as SQL: both engines give the model's answers."""
    import numpy as np
    from sklearn.ensemble import GradientBoostingRegressor

    from indb.compilers import compile_model

    names = ["select", "Order Total", "a.b", "MixedCase", "tick`name"]
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, len(names)))
    est = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0).fit(X, X[:, 0] - X[:, 2] * X[:, 4])
    m = compile_model(est, features=names)
    v = ispark.Version("awkward", 1, "", m)
    table = pa.table([pa.array(np.arange(60)), *[pa.array(X[:, j]) for j in range(len(names))]], names=["from", *names])
    df = spark.createDataFrame(table)
    keep = ["from"]
    kinds = ispark.output_kinds(m)
    scored = ispark._score_sql(df, v, kinds, keep) if engine == "sql" else ispark._score_python(df, v, ispark._output_names(m, kinds, keep), keep)
    got = sorted(tuple(r) for r in scored.collect())
    assert [r[0] for r in got] == list(range(60))
    np.testing.assert_allclose([r[1] for r in got], est.predict(X), rtol=1e-12)
