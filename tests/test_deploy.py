"""Deploy, the registry and indb.predict() on a real PostgreSQL (issue 4's behaviour points).

Parity of every zoo model through indb.predict is in test_deploy_parity.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import psycopg
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from indb import errors
from indb.registry.versions import PromoteResult, RetireResult, RollbackResult, bind, deploy, models, promote, retire, rollback

FEATURES = ["a", "b", "c"]


def _frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    return X, (X.a + X.b > 0).astype(int)


@pytest.fixture
def two_models():
    X, y = _frame()
    # two linear regressions whose outputs never agree: 0 + 1*a and 100 + 1*a
    m1 = LinearRegression().fit(X, X.a)
    m2 = LinearRegression().fit(X, X.a + 100.0)
    return m1, m2


def _table(conn, name="customers", n=50, seed=1):
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} (id int, a float8, b float8, c float8)")
    rng = np.random.default_rng(seed)
    with conn.cursor().copy(f"COPY {name} FROM STDIN") as cp:
        for i in range(n):
            cp.write_row((i, *rng.normal(size=3)))


def _registry_snapshot(conn):
    return (
        conn.execute("SELECT model, version, ir_sha256, retired_at FROM indb.versions ORDER BY 1, 2").fetchall(),
        conn.execute("SELECT model, alias, version FROM indb.aliases ORDER BY 1, 2").fetchall(),
        conn.execute("SELECT count(*) FROM indb.alias_history").fetchone(),
        conn.execute("SELECT count(*) FROM indb.prediction_log").fetchone(),
        conn.execute("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'indb'").fetchone(),
    )


def test_versions_aliases_and_references(migrated_dsn, migrated_conn, two_models):
    m1, m2 = two_models
    conn = migrated_conn
    _table(conn)
    r1 = deploy(m1, "churn", dsn=migrated_dsn, for_tables=["customers"])
    assert (r1.version, r1.created, r1.alias) == (1, True, "champion")
    again = deploy(m1, "churn", dsn=migrated_dsn)
    assert (again.version, again.created) == (1, False), "an identical artifact registers nothing"
    r2 = deploy(m2, "churn", dsn=migrated_dsn, alias="staging")
    assert r2.version == 2
    q = "SELECT indb.predict(%s, cu) FROM customers cu ORDER BY id"
    champion = [r[0] for r in conn.execute(q, ["churn"]).fetchall()]
    staging = [r[0] for r in conn.execute(q, ["churn@staging"]).fetchall()]
    v2 = [r[0] for r in conn.execute(q, ["churn@2"]).fetchall()]
    a = [r[0] for r in conn.execute("SELECT a FROM customers ORDER BY id").fetchall()]
    np.testing.assert_allclose(champion, m1.predict(pd.DataFrame(conn.execute("SELECT a, b, c FROM customers ORDER BY id").fetchall(), columns=FEATURES)), rtol=1e-9)
    assert staging == v2 and min(staging) > 90 > max(champion)
    assert len(a) == 50
    # promote moves champion, rollback moves it back, a second rollback has nowhere to go
    assert promote("churn", 2, dsn=migrated_dsn) == PromoteResult("churn", "champion", 2, 1)
    assert conn.execute(q, ["churn"]).fetchall()[0][0] > 90
    assert rollback("churn", dsn=migrated_dsn) == RollbackResult("churn", "champion", from_version=2, to_version=1)
    assert conn.execute(q, ["churn"]).fetchall()[0][0] < 90
    with pytest.raises(errors.IndbError, match="no earlier version"):
        rollback("churn", dsn=migrated_dsn)
    # a version an alias points to cannot be retired; a retired one cannot be scored
    with pytest.raises(errors.IndbError, match="alias staging points to it"):
        retire("churn", 2, dsn=migrated_dsn)
    assert str(promote("churn", 1, alias="staging", dsn=migrated_dsn)) == "churn@staging -> 1 (was 2)"
    assert not promote("churn", 1, alias="staging", dsn=migrated_dsn).changed
    assert retire("churn", 2, dsn=migrated_dsn) == RetireResult("churn", 2, functions=1)
    with pytest.raises(psycopg.Error, match="retired"):
        conn.execute(q, ["churn@2"]).fetchall()
    info = {(v.model, v.version): v for v in models("churn", dsn=migrated_dsn)}
    assert info[("churn", 2)].retired_at is not None and info[("churn", 1)].aliases == ["champion", "staging"]


def test_generic_path_and_entry_points(migrated_dsn, migrated_conn, capsys):
    X, y = _frame()
    clf = LogisticRegression().fit(X, y.map({0: "stay", 1: "leave"}))
    deploy(clf, "churn", dsn=migrated_dsn)
    conn = migrated_conn
    row = "(SELECT 0.5::float8 AS a, -0.25::float8 AS b, 2.0::float8 AS c) t"
    want = clf.predict_proba(pd.DataFrame([[0.5, -0.25, 2.0]], columns=FEATURES))[0]
    got = conn.execute(f"SELECT indb.predict_proba('churn', t), indb.predict_label('churn', t), indb.decision_function('churn', t) FROM {row}").fetchone()
    np.testing.assert_allclose(got[0], want, rtol=1e-9)
    assert got[1] == clf.predict(pd.DataFrame([[0.5, -0.25, 2.0]], columns=FEATURES))[0]
    assert len(got[2]) == 1
    with pytest.raises(psycopg.Error, match="labels are text|use indb.predict_label"):
        conn.execute(f"SELECT indb.predict('churn', t) FROM {row}").fetchone()
    # `indb models` lists what works: the label, not indb.predict, for text labels
    assert models("churn", dsn=migrated_dsn)[0].outputs == ["proba", "label", "decision"]
    from indb.cli.main import main

    assert main(["models", "churn", "--dsn", migrated_dsn]) == 0
    listed = capsys.readouterr().out
    assert "predict_proba,predict_label,decision_function" in listed and "predict," not in listed


BAD_INPUT = [
    ("SELECT indb.predict('nosuch', t) FROM (SELECT 1.0::float8 AS a, 2.0::float8 AS b, 3.0::float8 AS c) t", "unknown model 'nosuch'"),
    ("SELECT indb.predict('reg@7', t) FROM (SELECT 1.0::float8 AS a, 2.0::float8 AS b, 3.0::float8 AS c) t", "model 'reg' has no version 7"),
    ("SELECT indb.predict('reg@canary', t) FROM (SELECT 1.0::float8 AS a, 2.0::float8 AS b, 3.0::float8 AS c) t", "has no alias 'canary'"),
    ("SELECT indb.predict('reg', t) FROM (SELECT 1.0::float8 AS a, 2.0::float8 AS b) t", 'no column c for model'),
    ("SELECT indb.predict('reg', t) FROM (SELECT 1.0::float8 AS a, 'x'::text AS b, 3.0::float8 AS c) t", 'feature b of model .* must be a number'),
    ("SELECT indb.predict_array('reg', ARRAY[1.0, 2.0])", "takes 3 features, the array has 2"),
]


@pytest.mark.parametrize("query,message", BAD_INPUT, ids=["unknown-model", "unknown-version", "unknown-alias", "missing-column", "text-in-number", "short-array"])
def test_bad_input_names_model_and_feature_and_changes_nothing(migrated_dsn, migrated_conn, query, message):
    X, y = _frame()
    deploy(LinearRegression().fit(X, X.a), "reg", dsn=migrated_dsn)
    before = _registry_snapshot(migrated_conn)
    with pytest.raises(psycopg.Error, match=message):
        migrated_conn.execute(query).fetchall()
    assert _registry_snapshot(migrated_conn) == before


def test_missing_and_extreme_values_follow_the_documented_rules(migrated_dsn, migrated_conn):
    X, y = _frame()
    reg = LinearRegression().fit(X, X.a * 2 + 1)
    deploy(reg, "reg", dsn=migrated_dsn)
    got = migrated_conn.execute(
        "SELECT indb.predict('reg', t) FROM (VALUES (1, NULL::float8, 0::float8, 0::float8), (2, 'NaN', 0, 0),"
        " (3, 'Infinity', 0, 0), (4, '-Infinity', 0, 0), (5, 1e300, 0, 0)) AS t(id, a, b, c) ORDER BY id"
    ).fetchall()
    assert got[0][0] is None  # NULL in, NULL out
    assert np.isnan(got[1][0])  # NaN in, NaN out (as numpy)
    assert got[2][0] == np.inf and got[3][0] == -np.inf
    np.testing.assert_allclose(got[4][0], reg.predict(pd.DataFrame([[1e300, 0, 0]], columns=FEATURES))[0], rtol=1e-9)


def test_bad_model_files_get_one_line_errors(migrated_dsn, migrated_conn, tmp_path):
    corrupt = tmp_path / "broken.joblib"
    corrupt.write_bytes(b"this is not a pickle")
    before = _registry_snapshot(migrated_conn)
    with pytest.raises(errors.UntrustedFileError, match="broken.joblib: refused to unpickle"):
        deploy(str(corrupt), "x", dsn=migrated_dsn)
    with pytest.raises(errors.UsageError, match="broken.joblib: not a readable"):
        deploy(str(corrupt), "x", dsn=migrated_dsn, allow_pickle=True)
    import joblib
    from sklearn.neighbors import KNeighborsClassifier  # (VarianceThreshold, the example before, compiles now)

    unsupported = tmp_path / "knn.joblib"
    joblib.dump(KNeighborsClassifier(n_neighbors=1).fit(np.eye(3), [0, 1, 1]), unsupported)
    with pytest.raises(errors.UnsupportedModelError, match="KNeighborsClassifier is not supported"):
        deploy(str(unsupported), "x", dsn=migrated_dsn, allow_pickle=True)
    with pytest.raises(errors.UsageError, match="does not exist"):
        deploy(str(tmp_path / "missing.joblib"), "x", dsn=migrated_dsn, allow_pickle=True)
    assert _registry_snapshot(migrated_conn) == before
    # and the command line says it in one line, without a traceback
    res = subprocess.run([sys.executable, "-m", "indb.cli", "--dsn", migrated_dsn, "deploy", str(corrupt), "--name", "x",
                          "--allow-pickle"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_scoring_works_read_only_and_plans_parallel_for_a_large_table(migrated_dsn, migrated_conn):
    X, y = _frame()
    deploy(LogisticRegression().fit(X, y), "churn", dsn=migrated_dsn)
    conn = migrated_conn
    conn.execute("CREATE TABLE big AS SELECT g AS id, random() AS a, random() AS b, random() AS c FROM generate_series(1, 200000) g")
    conn.execute("ANALYZE big")
    bind("churn", "big", dsn=migrated_dsn)
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        assert conn.execute("SELECT count(indb.predict('churn', bg)) FROM big bg WHERE id <= 10").fetchone()[0] == 10
        assert conn.execute("SELECT indb.predict('churn', t) FROM (SELECT 1.0::float8 a, 2.0::float8 b, 3.0::float8 c) t").fetchone()[0] in (0.0, 1.0)
    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN SELECT sum((indb.predict_proba('churn', bg))[2]) FROM big bg").fetchall())
    assert "Workers Planned" in plan and "Parallel Seq Scan" in plan, plan
    assert "call_version" not in plan, "the bound overload must inline the version's expression"


def test_concurrent_deploys_get_consecutive_versions_and_identical_ones_collapse(migrated_dsn, migrated_conn):
    X, y = _frame()
    models_ = [LinearRegression().fit(X, X.a + k) for k in range(4)]
    results, failures = [], []

    def run(m):
        try:
            results.append(deploy(m, "race", dsn=migrated_dsn).version)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(m,)) for m in models_ + [models_[0]] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    versions = migrated_conn.execute("SELECT version FROM indb.versions WHERE model = 'race' ORDER BY 1").fetchall()
    assert [v[0] for v in versions] == [1, 2, 3, 4], "four distinct artifacts, consecutive versions, the repeats collapsed"


def test_a_deploy_killed_mid_transaction_leaves_nothing_and_a_rerun_succeeds(migrated_dsn, migrated_conn, tmp_path):
    import joblib

    X, y = _frame()
    path = tmp_path / "m.joblib"
    joblib.dump(LinearRegression().fit(X, X.a), path)
    deploy(LinearRegression().fit(X, X.b), "victim", dsn=migrated_dsn)
    before = _registry_snapshot(migrated_conn)
    blocker = psycopg.connect(migrated_dsn)
    # hold the alias row: the deploy blocks after inserting its version and functions
    blocker.execute("SELECT * FROM indb.aliases WHERE model = 'victim' FOR UPDATE")
    proc = subprocess.Popen([sys.executable, "-m", "indb.cli", "--dsn", migrated_dsn, "deploy", str(path), "--name", "victim",
                             "--allow-pickle"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        waiting = migrated_conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'indb deploy%' AND wait_event_type = 'Lock'"
        ).fetchone()[0]
        if waiting:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the deploy never reached the alias lock")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    blocker.rollback()
    blocker.close()
    # the dead client's backend notices within a few seconds and rolls back
    deadline = time.time() + 30
    while time.time() < deadline and migrated_conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'indb deploy%'").fetchone()[0]:
        time.sleep(0.2)
    assert _registry_snapshot(migrated_conn) == before
    res = deploy(str(path), "victim", dsn=migrated_dsn, allow_pickle=True)
    assert (res.version, res.created) == (2, True)


def test_scoring_sees_one_version_per_statement_during_promote_rollback_cycles(migrated_dsn, migrated_conn, two_models):
    m1, m2 = two_models
    conn = migrated_conn
    _table(conn, "wide", n=3000)
    deploy(m1, "flip", dsn=migrated_dsn, for_tables=["wide"])
    deploy(m2, "flip", dsn=migrated_dsn)
    stop = threading.Event()
    problems: list[str] = []
    statements = [0]

    def score():
        with psycopg.connect(migrated_dsn, autocommit=True) as c:
            while not stop.is_set():
                # each statement runs for at least a second; all its rows must come from one version
                rows = c.execute(
                    "SELECT indb.predict('flip', w), pg_sleep(0.001) FROM wide w, generate_series(1, 1) WHERE id < 1000"
                ).fetchall()
                low = sum(1 for r in rows if r[0] < 50)
                if low not in (0, len(rows)):
                    problems.append(f"statement mixed versions: {low} of {len(rows)} rows from version 1")
                statements[0] += 1

    t = threading.Thread(target=score)
    t.start()
    try:
        for _ in range(20):
            promote("flip", 1, dsn=migrated_dsn)
            time.sleep(0.1)
            rollback("flip", dsn=migrated_dsn)
            time.sleep(0.1)
    finally:
        stop.set()
        t.join(timeout=120)
    assert not problems, problems[:3]
    assert statements[0] >= 2


def test_deploy_sql_prints_a_script_that_applies_once(migrated_dsn, migrated_conn, tmp_path):
    import joblib

    from indb.registry.scripts import deploy_sql

    X, y = _frame()
    path = tmp_path / "churn.joblib"
    joblib.dump(LogisticRegression().fit(X, y), path)
    before = _registry_snapshot(migrated_conn)
    res = subprocess.run([sys.executable, "-m", "indb.cli", "--dsn", migrated_dsn, "deploy", str(path), "--name", "churn", "--sql",
                          "--allow-pickle"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    script = res.stdout
    assert script.startswith("-- indb deploy --sql: churn@1 deployed") and "COMMIT" not in script
    assert _registry_snapshot(migrated_conn) == before, "printing the script changes nothing"
    assert deploy_sql(str(path), "churn", dsn=migrated_dsn, allow_pickle=True) == script, "the same rehearsal gives the same script"
    for _ in range(2):  # a second run finds the version and changes nothing
        with psycopg.connect(migrated_dsn, autocommit=True) as c:
            c.execute(script)
    versions = migrated_conn.execute("SELECT version FROM indb.versions WHERE model = 'churn'").fetchall()
    assert versions == [(1,)]
    got = migrated_conn.execute("SELECT indb.predict_proba('churn', t) FROM (SELECT 0.3::float8 a, -1.0::float8 b, 2.0::float8 c) t").fetchone()[0]
    np.testing.assert_allclose(got, joblib.load(path).predict_proba(pd.DataFrame([[0.3, -1.0, 2.0]], columns=FEATURES))[0], rtol=1e-9)


def test_the_onnx_export_lists_its_opsets_in_one_order():
    """skl2onnx orders opset imports by a set of strings (Python's hash seed): the stored
    export sorts them, so deploy --sql prints the same script in every process."""
    from onnx import helper

    from indb.registry.versions import canonical_onnx

    graph = helper.make_graph([], "g", [], [])
    a = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 1), helper.make_opsetid("", 17)])
    b = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)])
    assert canonical_onnx(a) == canonical_onnx(b)


def test_binding_a_table_that_lacks_a_feature_is_one_clear_error(migrated_dsn, migrated_conn):
    """The server rebuilds the overloads (indb.refresh_bindings) and names what is wrong."""
    X, y = _frame(60)
    deploy(LinearRegression().fit(X, y), "churn", dsn=migrated_dsn)
    migrated_conn.execute("CREATE TABLE no_b (id int, a float8, c float8)")
    migrated_conn.execute("CREATE TABLE text_b (id int, a float8, b text, c float8)")
    with pytest.raises(errors.NotFoundError, match=r"cannot bind public.no_b: it has no column b, which churn@1 needs \(add the column"):
        bind("churn", "no_b", dsn=migrated_dsn)
    with pytest.raises(errors.IndbError, match="cannot bind public.text_b: column b is text, and churn@1 needs a number there"):
        bind("churn", "text_b", dsn=migrated_dsn)
    assert migrated_conn.execute("SELECT count(*) FROM indb.bindings").fetchone()[0] == 0, "nothing half-done"
