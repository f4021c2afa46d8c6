"""Every zoo model, deployed, scored through indb.predict / predict_proba / ... on PostgreSQL,
with the SQL engine and with the PL/Python engine, equals the model's own answer.

One database for the module; each case is deployed twice (``<case>_sql`` with
``--engine sql``, ``<case>_py`` with ``--engine plpython``), bound to its own table of
test rows (NULL and NaN kept apart, as in test_parity.py), and every output is read
through the bound entry points. The PL/Python engine is also driven through its chunk
entry point (the batch path of ``indb score``), which uses the compiled tree kernel.
"""

from __future__ import annotations

import re

import numpy as np
import psycopg
import pytest
from psycopg import sql

from indb.ir.evaluate import columns_from_matrix
from indb.errors import CompileError
from indb.registry.functions import servable_outputs
from indb.registry.versions import SQL_BYTES_LIMIT, deploy
from tests.sql_engines import load_postgres, mismatches, table_rows
from tests.zoo import all_cases

CASES = [c for c in all_cases() if "large" not in c.tags]
ENTRY = {"predict": "predict", "proba": "predict_proba", "decision": "decision_function", "transform": "transform"}


def _name(case_id: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", case_id.lower())[:40]


@pytest.fixture(scope="module")
def catalog(pg_server, pg_migrated_template):
    """A copy of the migrated template (core and plpython) for the module."""
    name = pg_server.new_name("deploy_parity", prefix="dp")
    pg_server.create_database(name, template=pg_migrated_template)
    with pg_server.connect(name) as conn:
        yield conn
    pg_server.drop_database(name)


@pytest.mark.parametrize("engine", ["sql", "plpython"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_deployed_model_matches_its_own_answer(case, engine, catalog):
    conn = catalog
    est, X = case.fitted()
    model = case.compiled()
    table = "t_" + _name(case.id)
    name = _name(case.id) + ("_sql" if engine == "sql" else "_py")
    rows = table_rows(model, columns_from_matrix(model, X))
    if conn.execute("SELECT to_regclass(%s) IS NULL", [table]).fetchone()[0]:
        load_postgres(conn, table, model, rows)
    try:
        deploy(model, name, conn=conn, engine=engine, for_tables=[table])
    except CompileError as e:
        # SQL repeats shared subexpressions; past the size limit the SQL engine refuses
        # (auto routes such models to the PL/Python engine, tested in the other half)
        assert engine == "sql" and "cannot take this model" in str(e), e
        assert e.sql_bytes is not None and e.sql_bytes > SQL_BYTES_LIMIT, e  # the size it measured, not lowered twice
        return
    for kind in case.outputs:
        ref = case.expected(kind)
        if kind not in servable_outputs(model):
            # a transform passing text through: indb.transform returns double precision[]
            with pytest.raises(psycopg.Error, match=f"has no {kind} output"):
                conn.execute(sql.SQL("SELECT {fn}({name}, t) FROM {table} t").format(
                    fn=sql.Identifier("indb", ENTRY[kind]), name=sql.Literal(name), table=sql.Identifier(table))).fetchall()
            continue
        label_text = kind == "predict" and model.output("predict").type == "text"
        entry = "predict_label" if label_text else ENTRY[kind]
        q = sql.SQL("SELECT {fn}({name}, t) FROM {table} t ORDER BY id").format(
            fn=sql.Identifier("indb", entry), name=sql.Literal(name), table=sql.Identifier(table))
        got = [r[0] for r in conn.execute(q).fetchall()]
        if kind == "predict":
            columns = [got]
        else:
            width = len(ref.columns)
            columns = [[None if r is None else r[j] for r in got] for j in range(width)]
        for j, (want, have) in enumerate(zip(ref.columns, columns)):
            bad = mismatches(want, have, case.rtol, case.atol)
            assert not bad, f"{case.id} [{engine}] {entry}[{j}] differs on {len(bad)} of {len(rows)} rows, e.g. {bad[:3]}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plpython_chunk_path_matches_the_model(case, catalog):
    """The batch entry point (numpy, or the compiled tree kernel on larger batches) equals the model, chunk by chunk."""
    conn = catalog
    est, X = case.fitted()
    model = case.compiled()
    name = _name(case.id) + "_py"
    # the version the other test deployed (an identical artifact registers nothing new)
    assert deploy(model, name, conn=conn, engine="plpython").version == 1
    cols = columns_from_matrix(model, X)
    n = len(next(iter(cols.values())))
    nums = [f.name for f in model.features if f.kind == "float"]
    texts = [f.name for f in model.features if f.kind == "text"]
    packed = np.column_stack([np.asarray(cols[f], dtype=np.float64) for f in nums]).astype(">f8").tobytes() if nums else b""
    text_values = [None if v is None or (isinstance(v, float) and v != v) else str(v) for i in range(n) for v in (cols[f][i] for f in texts)] or None
    for kind in case.outputs:
        if (kind == "predict" and model.output("predict").type == "text") or kind not in servable_outputs(model):
            continue  # labels and text columns come back through the row path (the test above)
        ref = case.expected(kind)
        got = conn.execute("SELECT indb.engine_chunk(%s, 1, %s, %s, %s, %s)", [name, kind, packed, n, text_values]).fetchone()[0]
        width = len(ref.columns)
        arr = np.asarray([np.nan if v is None else v for v in got], dtype=float).reshape(n, width)
        for j in range(width):
            bad = mismatches(ref.columns[j], list(arr[:, j]), case.rtol, case.atol)
            assert not bad, f"{case.id} chunk {kind}[{j}] differs on {len(bad)} rows, e.g. {bad[:3]}"
