"""Issue 13, the generic path: rows that are not of a bound table's type.

``indb.call_version`` resolves the reference in one query (``indb.generic_call``, kept
for the rest of the statement in the backend's memory with the PL/Python component) and
calls the version's generic-path adapter (``indb."m@1/predict"(jsonb)``), a PL/pgSQL overload the server
generates from the registry at deploy, whose plan is cached per session; features are
read by the inlinable ``indb.feature_value``. Each new piece is tested here on edge rows,
and the adapter is checked: it exists after a deploy, the DDL guard refuses any other
body, indb validate names one changed behind the guard's back, retire drops it, and a
version without one still scores (through the old per-row call).
"""

from __future__ import annotations

import math

import numpy as np
import psycopg
import pytest
from psycopg import sql

from indb.catalog.migrator import validate
from tests.db import _autocommit, _database
from tests.gov import deploy, make_source, train_gb, train_lr

ADAPTER = 'indb."m@1/predict"(jsonb)'


@pytest.fixture(scope="module")
def world(pg_server, pg_migrated_template):
    """One catalog: ``m`` (LogisticRegression, SQL) and ``g`` (GradientBoosting, PL/Python),
    ``src`` (30 rows plus a NULL, a NaN and an infinity), bound to nothing."""
    with _database(pg_server, "generic_path", template=pg_migrated_template) as dsn, _autocommit(dsn) as conn:
        X = make_source(conn, n=30)
        conn.execute("INSERT INTO src VALUES (-1, NULL, 0.5, 0.5), (-2, 'NaN', 0.5, 0.5), (-3, 'Infinity', -1, 2)")
        lr, gb = train_lr(), train_gb()
        deploy(dsn, lr, "m")
        deploy(dsn, gb, "g", engine="plpython")
        yield dsn, conn, X, lr, gb


@pytest.mark.parametrize("value, expected", [
    ("1.5", 1.5), ("-0", 0.0), ("1e308", 1e308), ("5e-324", 5e-324), ("null", None),
    ('"NaN"', math.nan), ('"Infinity"', math.inf), ('"-Infinity"', -math.inf),
])
def test_feature_value_reads_numbers_null_and_the_strings_to_jsonb_writes(world, value, expected):
    _, conn, *_ = world
    got, old = conn.execute("SELECT indb.feature_value(j, 'a', '''m@1'''), indb.feature_number(j, 'a', '''m@1''')"
                            " FROM (SELECT pg_catalog.jsonb_build_object('a', %s::jsonb) AS j) AS s", [value]).fetchone()
    if expected is None:
        assert got is None and old is None
    elif math.isnan(expected):
        assert math.isnan(got) and math.isnan(old)
    else:
        assert got == expected == old


@pytest.mark.parametrize("row, error, message", [
    ('{"b": 1}', psycopg.errors.UndefinedColumn, r'^indb: the row has no column a for model \'m@1\''),
    ('{"a": "x"}', psycopg.errors.DatatypeMismatch, r'^indb: feature a of model \'m@1\' must be a number, not "x"'),
    ('{"a": true}', psycopg.errors.DatatypeMismatch, r"^indb: feature a of model 'm@1' must be a number, not true"),
    ('{"a": [1]}', psycopg.errors.DatatypeMismatch, r"^indb: feature a of model 'm@1' must be a number, not \[1\]"),
])
def test_feature_value_keeps_feature_numbers_one_line_errors(world, row, error, message):
    _, conn, *_ = world
    with pytest.raises(error, match=message):
        conn.execute("SELECT indb.feature_value(%s::jsonb, 'a', '''m@1''')", [row])


def test_feature_value_is_inlined(world):
    """Inlinable: the plan holds the CASE, not a call of indb.feature_value."""
    _, conn, *_ = world
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN (VERBOSE) SELECT indb.feature_value(to_jsonb(s), 'a', 'x') FROM src AS s").fetchall())
    assert "jsonb_typeof" in plan and "feature_value" not in plan, plan


def test_a_deploy_installs_the_adapter_the_server_generates(world):
    _, conn, *_ = world
    rows = conn.execute(
        "SELECT f.output, a::text, p.prosrc = indb.generic_adapter_source(f.fn), p.prosecdef, p.proconfig,"
        "       pg_catalog.pg_get_userbyid(p.proowner), indb.check_version_function(a::oid)"
        "  FROM indb.version_functions AS f CROSS JOIN LATERAL indb.generic_adapter(f.fn) AS a"
        "  JOIN pg_catalog.pg_proc AS p ON p.oid = a::oid WHERE f.model = 'm' ORDER BY f.output").fetchall()
    assert [r[0] for r in rows] == ["decision", "label", "predict", "proba"]
    for output, adapter, same, secdef, config, owner, why in rows:
        assert adapter == f'indb."m@1/{output}"(jsonb)'
        assert same and not secdef and config == ["search_path=pg_catalog, indb, pg_temp"] and owner == "indb_versions"
        assert why is None
    src = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = %s::regprocedure", [ADAPTER]).fetchone()[0]
    assert src == ("\nBEGIN\n    RETURN indb.\"m@1/predict\"(indb.feature_value($1, 'a', '''m@1'''), "
                   "indb.feature_value($1, 'b', '''m@1'''), indb.feature_value($1, 'c', '''m@1'''));\nEND\n")
    # nobody but scorers may run it, and it runs with the caller's rights
    acl = conn.execute("SELECT proacl::text[] FROM pg_proc WHERE oid = %s::regprocedure", [ADAPTER]).fetchone()[0]
    assert sorted(a.split("=")[0] for a in acl) == ["indb_scorer", "indb_scorer_base", "indb_versions"], acl


def test_wrapped_and_unbound_rows_equal_the_model_edge_rows_included(world):
    _, conn, X, lr, gb = world
    for model, est in (("m", lr), ("g", gb)):
        rows = conn.execute(sql.SQL(
            "SELECT s.id, indb.predict({m}, s), indb.predict_proba({m}, s), indb.predict_label({m}, s)"
            "  FROM (SELECT * FROM src WHERE id >= 0) AS s ORDER BY s.id").format(m=sql.Literal(model))).fetchall()
        want = est.predict_proba(X)
        for i, p, proba, label in rows:
            assert p == float(est.predict(X[i:i + 1])[0]) and label == str(int(p))
            np.testing.assert_allclose(proba, want[i], rtol=1e-9, atol=0)
        # the NULL, NaN and infinity rows answer as the model's bound expression does on the same values
        edge = conn.execute(sql.SQL(
            "WITH s AS (SELECT * FROM src WHERE id < 0) SELECT s.id, indb.predict({m}, s) IS NOT DISTINCT FROM"
            " indb.predict_array({m}, ARRAY[s.a, s.b, s.c]) FROM s ORDER BY s.id").format(m=sql.Literal(model))).fetchall()
        assert edge == [(-3, True), (-2, True), (-1, True)], (model, edge)


@pytest.mark.parametrize("ref, error, message", [
    ("nope", psycopg.errors.UndefinedObject, r"^indb: unknown model 'nope'"),
    ("m@7", psycopg.errors.UndefinedObject, r"^indb: model 'm' has no version 7"),
    ("m@staging", psycopg.errors.UndefinedObject, r"^indb: model 'm' has no alias 'staging'"),
    ("m@99999999999", psycopg.errors.NumericValueOutOfRange, "out of range"),
    ("", psycopg.errors.InvalidParameterValue, r"^indb: the model reference is empty"),
])
def test_resolution_errors_are_those_of_indb_resolve(world, ref, error, message):
    _, conn, *_ = world
    with pytest.raises(error, match=message):
        conn.execute("SELECT indb.predict(%s, s) FROM (SELECT * FROM src) AS s", [ref])


def test_the_guard_refuses_any_other_adapter_body(world):
    dsn, conn, *_ = world
    fn = conn.execute("SELECT fn::text FROM indb.version_functions WHERE model = 'm' AND output = 'predict'").fetchone()[0]
    src = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = %s::regprocedure", [ADAPTER]).fetchone()[0]
    bodies = [
        src.replace("'a'", "'b'"),                                        # reads another column
        "BEGIN EXECUTE 'ALTER ROLE ' || session_user || ' SUPERUSER'; RETURN 1; END",  # the caller's rights
    ]
    with _autocommit(dsn) as dave:
        for body, extra in [(b, "STABLE") for b in bodies] + [(src, "STABLE SET work_mem = '1MB'"), (src, "VOLATILE")]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refused .*adapter"):
                with dave.transaction():
                    dave.execute("SET LOCAL ROLE indb_versions")
                    dave.execute(sql.SQL("CREATE OR REPLACE FUNCTION {}(row_json jsonb) RETURNS double precision LANGUAGE plpgsql"
                                         " PARALLEL SAFE SET search_path = pg_catalog, indb, pg_temp {} AS {}").format(
                        sql.SQL(fn.split("(")[0]), sql.SQL(extra), sql.Literal(body)))
        # an invoker's PL/pgSQL function that is no version's adapter
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="SECURITY DEFINER"):
            with dave.transaction():
                dave.execute("SET LOCAL ROLE indb_versions")
                dave.execute(sql.SQL("CREATE FUNCTION indb.\"x@1/predict\"(row_json jsonb) RETURNS double precision LANGUAGE plpgsql"
                                     " STABLE SET search_path = pg_catalog, indb, pg_temp AS {}").format(sql.Literal(src)))
        # the server's own generator passes, run again
        with dave.transaction():
            dave.execute("SET LOCAL ROLE indb_versions")
            assert dave.execute("SELECT indb.install_generic_adapter(%s::regprocedure)::text", [fn]).fetchone()[0] == ADAPTER


def test_validate_names_an_adapter_changed_behind_the_guard_and_scoring_falls_back_without_one(world):
    dsn, conn, X, lr, _ = world
    fn = conn.execute("SELECT fn::text FROM indb.version_functions WHERE model = 'm' AND output = 'predict'").fetchone()[0]
    want = conn.execute("SELECT array_agg(indb.predict('m', s) ORDER BY s.id) FROM (SELECT * FROM src) AS s").fetchone()[0]
    try:
        # a superuser is not checked by the guard
        conn.execute(sql.SQL("CREATE OR REPLACE FUNCTION indb.{}(row_json jsonb) RETURNS double precision LANGUAGE plpgsql STABLE"
                             " SET search_path = pg_catalog, indb, pg_temp AS 'BEGIN RETURN 0.5; END'").format(
            sql.Identifier("m@1/predict")))
        conn.execute("ALTER FUNCTION " + ADAPTER + " OWNER TO indb_versions")
        problems = validate(dsn).problems
        assert any(p.startswith("m@1: its generic-path adapter " + ADAPTER) and "redeploy" in p for p in problems), problems
        conn.execute("DROP FUNCTION " + ADAPTER)
        assert conn.execute("SELECT indb.generic_adapter(%s::regprocedure)", [fn]).fetchone()[0] is None
        got = conn.execute("SELECT array_agg(indb.predict('m', s) ORDER BY s.id) FROM (SELECT * FROM src) AS s").fetchone()[0]
        assert got == want
    finally:
        with conn.transaction():
            conn.execute("SET LOCAL ROLE indb_versions")
            conn.execute("SELECT indb.install_generic_adapter(%s::regprocedure)", [fn])
    assert not [p for p in validate(dsn).problems if "adapter" in p]


def test_retire_drops_the_adapters(world):
    dsn, conn, X, lr, _ = world
    from indb.registry.versions import promote, retire

    deploy(dsn, train_lr(), "r")
    deploy(dsn, train_gb(), "r")  # r@2 is the champion now
    fns = [r[0] for r in conn.execute("SELECT fn::text FROM indb.version_functions WHERE model = 'r' AND version = 1")]
    assert all(conn.execute("SELECT indb.generic_adapter(%s::regprocedure)", [f]).fetchone()[0] for f in fns)
    retire("r", 1, dsn=dsn)
    assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'r@1/%%'").fetchone()[0] == 0
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="version 1 of model 'r' is retired"):
        conn.execute("SELECT indb.predict('r@1', s) FROM (SELECT * FROM src) AS s")
    promote("r", 2, dsn=dsn)
