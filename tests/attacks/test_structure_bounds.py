"""Structure bounds: trees that would make a backend loop forever (a cycle), read out of
bounds, recurse without end (100,000 deep) or take all its memory (a huge ensemble) are
refused at deploy (client side, and by the server for any INSERT); a valid but slow
model is stopped by statement_timeout and pg_cancel_backend within about a second."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import psycopg
import pytest

from indb import errors, ir
from indb.ir import validate
from indb.registry.versions import deploy

pytestmark = pytest.mark.slow


def _model(trees: list[ir.Tree], n_inputs: int = 2) -> ir.Model:
    inputs = tuple(ir.Feature(f"x{i}") for i in range(n_inputs))
    te = ir.TreeEnsemble(inputs, tuple(trees), 1, (0.0,))
    return ir.Model(tuple(ir.FeatureSpec(f"x{i}") for i in range(n_inputs)), (("predict", ir.Index(te, 0)),))


def _tree(feature, left, right) -> ir.Tree:
    n = len(feature)
    return ir.Tree(tuple(feature), (0.5,) * n, tuple(left), tuple(right), (True,) * n, tuple((float(i),) for i in range(n)))


def chain(depth: int, feature: int = 0) -> ir.Tree:
    """Splits 0..depth-1 in a line (left: the next split, right: a leaf of its own), then a leaf."""
    feats, left, right = [], [], []
    for i in range(depth):
        feats.append(feature)
        left.append(i + 1)
        right.append(depth + 1 + i)
    feats.append(-1), left.append(-1), right.append(-1)
    for _ in range(depth):
        feats.append(-1), left.append(-1), right.append(-1)
    return _tree(feats, left, right)


HOSTILE = {
    "cycle": (lambda: _model([_tree([0, 1, -1], [1, 0, -1], [2, 2, -1])]), "is reached twice from the root"),
    "child out of range": (lambda: _model([_tree([0, -1, -1], [1, -1, -1], [7, -1, -1])]), "node 0: right is 7, outside 0..2"),
    "feature out of range": (lambda: _model([_tree([5, -1, -1], [1, -1, -1], [2, -1, -1])]), "feature is 5, not an input number below 2"),
    "100k deep": (lambda: _model([chain(100_000)]), f"is deeper than {validate.MAX_TREE_DEPTH} splits"),
    "huge ensemble": (lambda: _model([_tree([-1], [-1], [-1])] * (validate.MAX_TREES + 1)), f"trees has {validate.MAX_TREES + 1} entries"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_tree_is_refused_by_the_validator_and_by_a_client_deploy(case, migrated_dsn, migrated_conn):
    build, message = HOSTILE[case]
    m = build()
    with pytest.raises(validate.InvalidIR, match=message.replace("(", r"\(")):
        ir.validate_model(m)
    with pytest.raises(errors.CompileError, match="the model's IR is not valid, nothing was deployed: .*" + message.split(",")[0]):
        deploy(m, "hostile", dsn=migrated_dsn, engine="plpython")
    assert migrated_conn.execute("SELECT count(*) FROM indb.versions WHERE model = 'hostile'").fetchone()[0] == 0


def test_out_of_range_child_message_is_exact():
    with pytest.raises(validate.InvalidIR, match=r"output predict: node 2 \(TreeEnsemble\) tree 0 node 0: right is 7, outside 0..2"):
        validate.model_data(__import__("json").loads(ir.model_to_json(HOSTILE["child out of range"][0]())))


@pytest.fixture
def deployer_with_a_version(migrated_dsn, pg_role):
    deploy(_model([chain(3)]), "shape", dsn=migrated_dsn, engine="plpython")
    return pg_role(migrated_dsn, "indb_deployer")


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("who", ["superuser", "deployer"])
def test_a_hostile_tree_is_refused_by_the_server_on_a_raw_insert(case, who, migrated_conn, deployer_with_a_version):
    text = ir.model_to_json(HOSTILE[case][0]())
    conn = migrated_conn if who == "superuser" else psycopg.connect(deployer_with_a_version.dsn, autocommit=True)
    try:
        features, outputs = migrated_conn.execute("SELECT features, outputs FROM indb.versions WHERE model = 'shape'").fetchone()
        with pytest.raises(psycopg.Error) as got:
            conn.execute(
                "INSERT INTO indb.versions (model, version, ir, ir_sha256, artifact_sha256, features, outputs, engine)"
                " VALUES ('shape', 2, %s, %s, repeat('d', 64), %s, %s, 'plpython')",
                [text, hashlib.sha256(text.encode()).hexdigest(), psycopg.types.json.Jsonb(features), outputs])
        msg = got.value.diag.message_primary
        assert msg.startswith("indb: model 'shape' version 2 refused: its IR is not a valid model: output predict: node 2 (TreeEnsemble) "), msg
        assert HOSTILE[case][1].split(",")[0] in msg and "\n" not in msg
    finally:
        if conn is not migrated_conn:
            conn.close()


def test_a_deployer_cannot_drop_or_disable_the_server_side_check(migrated_conn, deployer_with_a_version):
    with psycopg.connect(deployer_with_a_version.dsn, autocommit=True) as conn:
        conn.execute("SET ROLE indb_versions")  # the most a deployer can become
        for statement in ("ALTER TABLE indb.versions DISABLE TRIGGER versions_check_ir",
                          "ALTER TABLE indb.versions ENABLE REPLICA TRIGGER versions_check_ir",
                          "DROP TRIGGER versions_check_ir ON indb.versions",
                          "ALTER TRIGGER versions_check_ir ON indb.versions RENAME TO x"):
            with pytest.raises(psycopg.Error, match="cannot be dropped, renamed or disabled|must be owner|permission denied"):
                conn.execute(statement)
    assert migrated_conn.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'versions_check_ir'").fetchone()[0] == "O"
    with pytest.raises(psycopg.Error, match="must be owner|permission denied"):
        with psycopg.connect(deployer_with_a_version.dsn, autocommit=True) as conn:
            conn.execute("SET ROLE indb_versions")
            conn.execute("CREATE OR REPLACE FUNCTION indb.versions_check_ir() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'")


# ------------------------------------------------------------- slow but valid models

ROWS = 1_000_000


@pytest.fixture
def slow_model(migrated_dsn):
    """A valid ensemble (400 trees, each 40 splits deep on alternating inputs) that takes
    many seconds over a million rows, packed as indb.engine_chunk takes them."""
    trees = [chain(40, feature=i % 2) for i in range(400)]
    deploy(_model(trees), "slow", dsn=migrated_dsn, engine="plpython")
    X = np.random.default_rng(0).uniform(0.0, 0.4, size=(ROWS, 2))  # every row walks the whole chain
    return X.astype(">f8").tobytes()


CHUNK = "SELECT indb.engine_chunk('slow', 1, 'predict', %s, %s, NULL)"


@pytest.mark.parametrize("compile_after", ["0", "100000000"], ids=["kernel", "numpy"])
def test_statement_timeout_stops_a_slow_valid_model_within_a_second(migrated_dsn, slow_model, compile_after):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("SELECT set_config('indb.engine_compile_after', %s, false)", [compile_after])
        conn.execute("SELECT indb.engine_chunk('slow', 1, 'predict', %s, 1, NULL)", [slow_model[:16]])  # load, compile
        conn.execute("SET statement_timeout = '1s'")
        start = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(CHUNK, [slow_model, ROWS]).fetchone()
        assert time.monotonic() - start < 2.0


def test_pg_cancel_backend_stops_a_slow_valid_model_within_a_second(migrated_dsn, slow_model):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn, psycopg.connect(migrated_dsn, autocommit=True) as other:
        pid = conn.info.backend_pid
        conn.execute("SET indb.engine_compile_after = 0")  # compiling the kernel (once) is not interruptible
        conn.execute("SELECT indb.engine_chunk('slow', 1, 'predict', %s, 1, NULL)", [slow_model[:16]])
        outcome = {}

        def run():
            try:
                conn.execute(CHUNK, [slow_model, ROWS]).fetchone()
                outcome["result"] = "finished"
            except psycopg.Error as e:
                outcome["result"] = e
            outcome["at"] = time.monotonic()

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(1.5)
        cancelled_at = time.monotonic()
        assert other.execute("SELECT pg_cancel_backend(%s)", [pid]).fetchone()[0]
        worker.join(10)
        assert isinstance(outcome.get("result"), psycopg.errors.QueryCanceled), outcome
        assert outcome["at"] - cancelled_at < 1.5


def test_statement_timeout_stops_the_pipelined_batch_path(migrated_dsn, slow_model):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("SET indb.engine_compile_after = '100000000'")  # numpy: the slowest path
        conn.execute("SELECT indb.engine_chunk('slow', 1, 'predict', %s, 1, NULL)", [slow_model[:16]])  # load
        conn.execute("SET statement_timeout = '1s'")
        start = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):  # in the call that starts it, or the one that waits
            conn.execute("SELECT indb.engine_chunk_next('slow', 1, 'predict', %s, %s, NULL, 7)", [slow_model, ROWS])
            conn.execute("SELECT indb.engine_chunk_next('slow', 1, 'predict', NULL, 0, NULL, 7)").fetchone()
        assert time.monotonic() - start < 2.0
        conn.execute("SET statement_timeout = 0")
        # the abandoned chunk was stopped: a new caller (token) waits for it to end, briefly
        start = time.monotonic()
        assert conn.execute("SELECT indb.engine_chunk_next('slow', 1, 'predict', NULL, 0, NULL, 8)").fetchone()[0] == []
        assert time.monotonic() - start < 2.0
