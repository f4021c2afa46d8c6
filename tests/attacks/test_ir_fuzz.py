"""A model is data, never code: mutated IR documents against the validator, the row-code
generator, the numpy evaluator and (a few hundred) the PL/Python engine in PostgreSQL.

Every field of four real models' IRs (a GradientBoosting, a tree ensemble with
categorical splits, an MLP, a pipeline with a OneHotEncoder) is replaced in turn by
Python that would create a canary file, out-of-range numbers, wrong types, nested junk
and huge lists. Each case must end in a refusal (``ValueError`` from the validator, a
clean ``indb: model M@V: ...`` error in the database) or in answers the row path and
the batch path agree on; the canary file never appears.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest

from indb import ir
from indb.ir import validate
from indb.ir.evaluate import evaluate
from indb.plpython import rowcode
from indb.registry.versions import deploy
from tests.attacks.seeds import seeds

pytestmark = pytest.mark.slow

CANARY = Path("/tmp") / f"indb_canary_{uuid.uuid4().hex}"


def _payloads() -> list:
    touch = f"__import__('os').system('touch {CANARY}')"
    texts = [
        touch,
        f"1); import os; os.system('touch {CANARY}') #",
        f"x')\n{touch}\n('",
        f"0]\n{touch}\n#",
        f"'; {touch}; '",
        f"{{{touch}}}",
        "}]\"; DROP TABLE indb.versions; --",
        "\x00\n\r\\",
    ]
    numbers = [-1, -2, 10**9, -(10**9), 2**63, 10**400, 1e308, -1e308, 0.5, {"f": "inf"}, {"f": "nan"}, float("nan")]
    junk = [True, False, None, "1", [], {}, {"n": 0}, {"n": -1}, {"n": 10**6}, {"n": "0"}, {"n": 0, "x": 1},
            [[[[[[1]]]]]], {"t": "Feature", "name": touch, "kind": "float"}, functools_nested(400), [0.0] * 5_000]
    return texts + numbers + junk


def functools_nested(depth: int) -> list:
    v: list = []
    for _ in range(depth):
        v = [v]
    return v


def _paths(doc, path=()):
    """Every place in the document (dict keys, list items: the first two and the last)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*path, k)
            yield from _paths(v, (*path, k))
    elif isinstance(doc, list):
        picks = range(len(doc)) if len(doc) <= 4 else (0, 1, len(doc) - 1)
        for i in picks:
            yield (*path, i)
            yield from _paths(doc[i], (*path, i))


def _get(doc, path):
    for p in path[:-1]:
        doc = doc[p]
    return doc, path[-1]


def mutations(doc: dict, rng: random.Random, per_path: int):
    """(description, mutated JSON text), about ``per_path`` hostile values per place."""
    payloads = _payloads()
    for path in _paths(doc):
        parent, key = _get(doc, path)
        old = parent[key]
        for value in rng.sample(payloads, per_path):
            parent[key] = value
            try:
                yield f"{path} = {validate.show(value)}", json.dumps(doc)
            finally:
                parent[key] = old
        if isinstance(parent, dict):  # an extra field beside it
            parent[f"{key}');__import__('os').system('touch {CANARY}')#"] = 1
            try:
                yield f"{path} + hostile key", json.dumps(doc)
            finally:
                del parent[f"{key}');__import__('os').system('touch {CANARY}')#"]


def _same(a, b) -> bool:
    a, b = np.asarray(a, dtype=object).ravel(), np.asarray(b, dtype=object).ravel()
    if a.shape != b.shape:
        return False
    for x, y in zip(a, b):
        fx = isinstance(x, float) and math.isnan(x)
        fy = isinstance(y, float) and math.isnan(y)
        if (x is None or fx) and (y is None or fy):
            continue
        if x != y and not (isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-12)):
            return False
    return True


def run_in_process(text: str) -> str:
    """'refused' or 'scored'; raises (failing the test) on anything unclean."""
    try:
        m = ir.model_from_json(text, share=True)
    except ValueError:
        return "refused"
    cols = None
    for _name, (seed, rows) in seeds().items():
        if set(seed.feature_names) == set(m.feature_names):
            cols = rows
    if cols is None:  # features renamed: rows of that name
        cols = {f.name: (np.array(["red", None, "x"], dtype=object) if f.kind == ir.TEXT else np.array([0.5, np.nan, -2.0]))
                for f in m.features}
    n = len(next(iter(cols.values()))) if cols else 3
    for kind, e in m.outputs:
        try:
            batch = evaluate(e, cols, n)
        except ValueError:  # a Fail node (on_missing="error") hit by a row
            batch = None
        fn = rowcode.compile_row(e, m.feature_names)
        for r in range(n):
            values = rowcode.normalise_row([cols[f][r] for f in m.feature_names], [f.kind for f in m.features])
            try:
                one = fn(values)
            except ValueError:
                assert batch is None, f"{kind}: the row path raised where the batch path answered"
                continue
            if batch is not None:
                assert _same(one, batch[r]), f"{kind}, row {r}: row path {one!r} != batch path {batch[r]!r}"
    return "scored"


def test_thousands_of_mutated_irs_are_refused_or_scored_consistently_and_never_run_code():
    rng = random.Random(12)
    counts = {"refused": 0, "scored": 0}
    for name, (m, _) in seeds().items():
        doc = json.loads(ir.model_to_json(m))
        for what, text in mutations(doc, rng, per_path=10):
            try:
                counts[run_in_process(text)] += 1
            except AssertionError as e:
                raise AssertionError(f"{name}: {what}: {e}") from None
            except Exception as e:  # noqa: BLE001 - anything but a refusal is a finding
                raise AssertionError(f"{name}: {what}: unclean {type(e).__name__}: {e}") from None
    raw = ['{"format": 1, "features": ' + "[" * 100_000, "NaN", "[]", '"x"', "{" * 50_000, "\x00", ""]
    for text in raw:
        assert run_in_process(text) == "refused"
        counts["refused"] += 1
    total = counts["refused"] + counts["scored"]
    print(f"\nIR fuzz, in process: {total} mutated documents, {counts['refused']} refused, {counts['scored']} scored")
    assert total >= 3000 and counts["refused"] > 0 and counts["scored"] > 0
    assert not CANARY.exists(), "a mutated IR ran code"


def test_the_seeds_are_what_the_test_says():
    s = seeds()
    assert any(isinstance(n, ir.TreeEnsemble) and any(c is not None for t in n.trees for c in t.categories)
               for n in ir.walk(s["hgb_cat"][0].output("predict")))
    assert any(f.kind == ir.TEXT for f in s["onehot"][0].features)


# ------------------------------------------------------------------ in PostgreSQL

ROW_SQL = {
    "gb": ("SELECT indb.predict(%s, t) FROM (SELECT 0.5::float8 AS x0, -1.0::float8 AS x1, 2.0::float8 AS x2) t", [0.5, -1.0, 2.0], None),
    "hgb_cat": ("SELECT indb.predict(%s, t) FROM (SELECT 3.0::float8 AS x0, 2.0::float8 AS x1) t", [3.0, 2.0], None),
    "mlp": ("SELECT indb.predict(%s, t) FROM (SELECT 0.5::float8 AS x0, -1.0::float8 AS x1, 2.0::float8 AS x2) t", [0.5, -1.0, 2.0], None),
    "onehot": ("SELECT indb.predict(%s, t) FROM (SELECT 'red'::text AS color, 0.5::float8 AS size) t", [0.5], ["red"]),
}


def _clean(e: psycopg.Error, name: str) -> None:
    msg = e.diag.message_primary or ""
    assert msg.startswith(f"indb: model {name}@1: ") or msg.startswith("indb: "), msg
    assert "\n" not in msg and "plpy.Error" not in msg and "Traceback" not in msg, msg


def test_hundreds_of_mutated_irs_end_to_end_in_postgresql(migrated_dsn, migrated_conn):
    rng = random.Random(5)
    for name, (m, _) in seeds().items():
        deploy(m, name, dsn=migrated_dsn, engine="plpython")
    counts = {"refused": 0, "scored": 0}
    with psycopg.connect(migrated_dsn, autocommit=True) as scorer:
        for name, (m, _) in seeds().items():
            doc = json.loads(ir.model_to_json(m))
            cases = list(mutations(doc, rng, per_path=2))
            rng.shuffle(cases)
            sql, nums, texts = ROW_SQL[name]
            for what, text in cases[:90]:
                # as a superuser, around the deploy-time check: the engine must refuse it itself
                with migrated_conn.transaction():
                    migrated_conn.execute("SET LOCAL session_replication_role = replica")
                    migrated_conn.execute("UPDATE indb.versions SET ir = %s, ir_sha256 = %s WHERE model = %s AND version = 1",
                                          [text, hashlib.sha256(text.encode()).hexdigest(), name])
                try:
                    expected = ir.model_from_json(text, share=True)
                except ValueError:
                    expected = None
                packed = np.array(nums, dtype=">f8").tobytes()
                for query, args in ((sql, [name]),
                                    ("SELECT indb.engine_chunk(%s, 1, 'predict', %s, 1, %s)", [name, packed, texts])):
                    try:
                        scorer.execute(query, args).fetchone()
                    except psycopg.Error as e:
                        _clean(e, name)
                        counts["refused"] += 1
                        continue
                    assert expected is not None, f"{name}: {what}: the engine scored an IR the validator refuses"
                    counts["scored"] += 1
    total = counts["refused"] + counts["scored"]
    print(f"\nIR fuzz, in PostgreSQL: {total} scoring calls over mutated IRs, {counts['refused']} refused, {counts['scored']} scored")
    assert total >= 300 and counts["refused"] > 0 and counts["scored"] > 0
    assert not CANARY.exists(), "a mutated IR ran code in the server"


def test_a_hostile_ir_is_refused_at_insert_by_the_server(migrated_dsn, migrated_conn):
    m, _ = seeds()["gb"]
    deploy(m, "gb_trig", dsn=migrated_dsn, engine="plpython")
    doc = json.loads(ir.model_to_json(m))
    doc["outputs"][0][1]["nodes"][0]["t"] = f"__import__('os').system('touch {CANARY}')"
    text = json.dumps(doc)
    row = migrated_conn.execute("SELECT features, outputs FROM indb.versions WHERE model = 'gb_trig'").fetchone()
    with pytest.raises(psycopg.Error) as got:
        migrated_conn.execute(
            "INSERT INTO indb.versions (model, version, ir, ir_sha256, artifact_sha256, features, outputs, engine)"
            " VALUES ('gb_trig', 2, %s, %s, repeat('c', 64), %s, %s, 'plpython')",
            [text, hashlib.sha256(text.encode()).hexdigest(), psycopg.types.json.Jsonb(row[0]), row[1]])
    msg = got.value.diag.message_primary
    assert msg.startswith("indb: model 'gb_trig' version 2 refused: its IR is not a valid model: output predict: node 0 has kind"), msg
    assert "\n" not in msg
    with pytest.raises(psycopg.Error, match="refused: its IR is not a valid model"):
        migrated_conn.execute("UPDATE indb.versions SET ir = %s WHERE model = 'gb_trig'", [text])
    assert not CANARY.exists()


@pytest.fixture(autouse=True)
def _no_canary_left():
    yield
    if CANARY.exists():
        os.unlink(CANARY)
        pytest.fail("a mutated IR created the canary file")


def test_indb_validate_reports_an_invalid_ir_written_around_the_trigger(migrated_dsn, migrated_conn):
    from indb.governance.hooks import check_installed_functions

    m, _ = seeds()["mlp"]
    deploy(m, "mlp_v", dsn=migrated_dsn, engine="plpython")
    assert check_installed_functions(migrated_conn) == []
    doc = json.loads(ir.model_to_json(m))
    doc["outputs"][0][1]["root"] = 10**6
    text = json.dumps(doc)
    with migrated_conn.transaction():
        migrated_conn.execute("SET LOCAL session_replication_role = replica")
        migrated_conn.execute("UPDATE indb.versions SET ir = %s, ir_sha256 = %s WHERE model = 'mlp_v'",
                              [text, hashlib.sha256(text.encode()).hexdigest()])
    assert check_installed_functions(migrated_conn) == [
        "mlp_v@1: the stored IR is not a valid model, the engine refuses it: output predict: root is 1000000, outside 0.."
        f"{len(doc['outputs'][0][1]['nodes']) - 1}"]
