"""The PL/Python engine: integrity of the stored IR, its cache, its installed sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import psycopg
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from indb.plpython import install
from indb.registry.versions import deploy

ROOT = Path(__file__).resolve().parent.parent
ROW = "(SELECT 0.5::float8 AS x0, -1.0::float8 AS x1, 2.0::float8 AS x2) t"


def _model():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    return GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, (X[:, 0] * X[:, 1] > 0).astype(int))


def test_migrate_installs_the_engine_from_the_current_sources(migrated_conn):
    want = install.sources_sha(install.sources())
    assert migrated_conn.execute("SELECT indb.engine_boot()").fetchone()[0] == want
    assert f"Engine sources SHA-256: {want}" in install.render()


def test_a_flipped_byte_in_a_stored_ir_is_refused_before_scoring_even_when_cached(migrated_dsn, migrated_conn):
    est = _model()
    deploy(est, "gb", dsn=migrated_dsn, engine="plpython")
    query = f"SELECT indb.predict_proba('gb', t) FROM {ROW}"
    with psycopg.connect(migrated_dsn, autocommit=True) as cached:
        want = est.predict_proba(np.array([[0.5, -1.0, 2.0]]))[0]
        np.testing.assert_allclose(cached.execute(query).fetchone()[0], want, rtol=1e-9)  # loads and caches the IR
        # a superuser, past the immutability trigger and the checksum constraint, changes one
        # byte of the IR (a threshold's digit), not its checksum
        migrated_conn.execute("ALTER TABLE indb.versions DISABLE TRIGGER versions_immutable")
        migrated_conn.execute("ALTER TABLE indb.versions DROP CONSTRAINT versions_ir_checksum")
        migrated_conn.execute(
            "UPDATE indb.versions SET ir = overlay(ir PLACING"
            " CASE WHEN substr(ir, strpos(ir, '\"threshold\":[') + 14, 1) = '1' THEN '2' ELSE '1' END"
            " FROM strpos(ir, '\"threshold\":[') + 14 FOR 1) WHERE model = 'gb'")
        with pytest.raises(psycopg.Error, match="integrity check failed for gb@1"):
            cached.execute(query).fetchone()
        # the batch path refuses too
        with pytest.raises(psycopg.Error, match="integrity check failed for gb@1"):
            cached.execute("SELECT indb.engine_chunk('gb', 1, 'proba', %s, 1, NULL)",
                           [np.array([0.5, -1.0, 2.0], dtype=">f8").tobytes()]).fetchone()
    with psycopg.connect(migrated_dsn, autocommit=True) as fresh, pytest.raises(psycopg.Error, match="integrity check failed"):
        fresh.execute(query).fetchone()


def _system_has_numba() -> bool:
    """Whether the system Python that PL/Python embeds can import numba."""
    return subprocess.run(["/usr/bin/python3", "-c", "import numba"], capture_output=True).returncode == 0


def test_the_engine_uses_the_compiled_tree_kernel_when_numba_is_installed(migrated_conn):
    has_numba = _system_has_numba()
    migrated_conn.execute("""
        CREATE FUNCTION pg_temp.kernel_available() RETURNS boolean LANGUAGE plpython3u AS $$
        plpy.execute("SELECT indb.engine_boot()")
        import sys
        return sys.modules["indb.ir.kernels"].available()
        $$""")
    assert migrated_conn.execute("SELECT pg_temp.kernel_available()").fetchone()[0] is has_numba


def _mlp():
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPRegressor(hidden_layer_sizes=(16, 8), max_iter=50, random_state=0).fit(X, X[:, 0] - 2 * X[:, 1] * X[:, 2])


@pytest.mark.parametrize("which", ["gb", "mlp"])
def test_a_large_batch_split_over_threads_gives_the_single_threaded_answer(migrated_dsn, which):
    """A batch above the kernels' threshold runs on several threads (numba's tree and
    dense-layer kernels): bitwise the single-threaded answer, and the model's."""
    if which == "gb":  # HistGradientBoosting: it takes NaN (its learned missing-value track)
        from sklearn.ensemble import HistGradientBoostingClassifier

        rng = np.random.default_rng(4)
        Xt = rng.normal(size=(600, 3))
        Xt[::7, 1] = np.nan
        est = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(Xt, (np.nan_to_num(Xt[:, 0]) + Xt[:, 2] > 0).astype(int))
    else:
        est = _mlp()
    name = f"threads_{which}"
    output = "proba" if which == "gb" else "predict"
    deploy(est, name, dsn=migrated_dsn, engine="plpython")
    rng = np.random.default_rng(11)
    X = rng.normal(size=(12_000, 3))
    X[::97, 1] = np.nan if which == "gb" else 0.0  # NaN: the tree kernel's missing-value track
    X[5] = [1e300, -1e300, 0.0]
    packed = X.astype(">f8").tobytes()
    answers = {}
    compiled = """
        CREATE FUNCTION pg_temp.compiled() RETURNS text[] LANGUAGE plpython3u AS $$
        import sys
        return sorted(sys.modules["indb.ir.kernels"]._compiled) if "indb.ir.kernels" in sys.modules else []
        $$"""
    has_numba = _system_has_numba()
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        # a backend compiles its kernels once it has seen enough rows to make it pay:
        # 12,000 rows are scored with numpy, bitwise the same answers
        conn.execute(compiled)
        small = conn.execute("SELECT indb.engine_chunk(%s, 1, %s, %s, %s, NULL)", [name, output, packed, len(X)]).fetchone()[0]
        assert conn.execute("SELECT pg_temp.compiled()").fetchone()[0] == []
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute(compiled)
        conn.execute("SET indb.engine_compile_after = 0")  # compile on first use
        for threads in ("1", "2"):
            conn.execute(f"SET indb.engine_threads = {threads}")
            got = conn.execute("SELECT indb.engine_chunk(%s, 1, %s, %s, %s, NULL)", [name, output, packed, len(X)]).fetchone()[0]
            answers[threads] = np.asarray(got, dtype=float)
        kind = "tree" if which == "gb" else "layers"
        assert conn.execute("SELECT pg_temp.compiled()").fetchone()[0] == ([kind] if has_numba else [])
    assert np.array_equal(answers["1"], answers["2"], equal_nan=True)
    assert np.array_equal(answers["1"], np.asarray(small, dtype=float), equal_nan=True)
    # and bitwise what the plain numpy evaluator (no kernels) gives inside the database
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION pg_temp.plain(name text, output text, nums bytea, n int) RETURNS float8[]
            LANGUAGE plpython3u AS $$
            import sys
            import numpy as np
            engine, ev = GD["indb_engine"], sys.modules["indb.ir.evaluate"]
            L = engine.get(name, 1)  # loaded by the scoring call before
            arr = np.frombuffer(nums, dtype=">f8").reshape(n, -1).astype(np.float64)
            cols = {f.name: arr[:, j] for j, f in enumerate(L.model.features)}
            return np.asarray(ev.evaluate(L.expr(output), cols, n), dtype=np.float64).ravel().tolist()
            $$""")
        conn.execute("SELECT indb.engine_chunk(%s, 1, %s, %s, 1, NULL)", [name, output, packed[:8 * X.shape[1]]])
        plain = conn.execute("SELECT pg_temp.plain(%s, %s, %s, %s)", [name, output, packed, len(X)]).fetchone()[0]
    assert np.array_equal(np.asarray(plain, dtype=float), answers["2"], equal_nan=True)
    want = est.predict_proba(X).ravel() if which == "gb" else est.predict(X)
    np.testing.assert_allclose(answers["2"], want, rtol=1e-9, atol=1e-12)


def test_the_evaluator_computes_dense_layers_as_one_product_with_the_same_additions():
    """With a cache (the engine's batch path), an MLP's layers are found and computed at
    once (numpy here, numba in the database): bitwise the unit-by-unit evaluation."""
    from indb.sqlgen.compile import to_ir
    from indb.ir.evaluate import dense_layers, evaluate

    est = _mlp()
    m = to_ir(est, features=["x0", "x1", "x2"])
    e = m.output("predict")
    layers = {len(layer.units): layer for layer in dense_layers(e)}
    assert sorted(layers) == [1, 8, 16]
    # the second layer and the output read the relu of the layer before, as a matrix
    assert layers[8].source[:2] == (layers[16], "max") and layers[1].source[:2] == (layers[8], "max")
    assert layers[8].in_place and layers[1].in_place  # relu overwrites the matrix nothing else reads
    # with numba, the three layers and their relus run as one kernel call (in the database:
    # test_a_large_batch_split_over_threads_gives_the_single_threaded_answer compares it,
    # bitwise, with the plain evaluator)
    assert layers[1].chain == [layers[16], layers[8], layers[1]] and layers[8].chain is None
    X = np.random.default_rng(2).normal(size=(500, 3)) * [1, 1e150, 1e-150]
    cols = {f"x{i}": X[:, i] for i in range(3)}
    plain = evaluate(e, cols)
    fast = evaluate(e, cols, cache={})
    assert np.array_equal(plain, fast, equal_nan=True)
    np.testing.assert_allclose(fast, est.predict(X), rtol=1e-9)


def test_the_pipelined_batch_entry_returns_each_chunks_answers_one_call_later(migrated_dsn):
    """indb.engine_chunk_next starts a chunk in the background and returns the chunk
    before; a call with no rows collects the last one; a new token drops what an
    interrupted caller left behind."""
    deploy(_model(), "pipe", dsn=migrated_dsn, engine="plpython")
    rng = np.random.default_rng(8)
    chunks = [rng.normal(size=(m, 3)) for m in (5000, 37, 6000)]
    chunks[0][::11, 2] = np.nan
    packed = [c.astype(">f8").tobytes() for c in chunks]
    nxt = "SELECT indb.engine_chunk_next('pipe', 1, 'proba', %s, %s, NULL, %s)"
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        want = [conn.execute("SELECT indb.engine_chunk('pipe', 1, 'proba', %s, %s, NULL)", [p, len(c)]).fetchone()[0]
                for p, c in zip(packed, chunks)]
        got = [conn.execute(nxt, [p, len(c), 1]).fetchone()[0] for p, c in zip(packed, chunks)]
        got.append(conn.execute(nxt, [None, 0, 1]).fetchone()[0])
        assert got[0] == [] and got[1:] == want
        # an interrupted caller (token 2) leaves a chunk in flight: token 3 never sees it
        assert conn.execute(nxt, [packed[0], len(chunks[0]), 2]).fetchone()[0] == []
        assert conn.execute(nxt, [packed[1], len(chunks[1]), 3]).fetchone()[0] == []
        assert conn.execute(nxt, [None, 0, 3]).fetchone()[0] == want[1]
        assert conn.execute(nxt, [None, 0, 3]).fetchone()[0] == []


def _row_by_row(dsn: str, call: str, rows: np.ndarray, kernel: str) -> dict[str, np.ndarray]:
    """``indb.<call>, ARRAY[a, b, c, d], NULL)`` for each of ``rows`` (four features), one
    call per row, in a new backend that runs the row code's Python only ("100000000") and
    in one that compiles its kernels from the first row ("0"); checks that the second
    compiled ``kernel`` (where numba is installed) and that both answered alike, bit for
    bit."""
    query = (f"SELECT indb.{call}, ARRAY[a, b, c, d], NULL) FROM "
             "unnest(%s::float8[], %s::float8[], %s::float8[], %s::float8[]) AS r(a, b, c, d)")
    args = [list(rows[:, j]) for j in range(4)]
    compiled = """
        CREATE FUNCTION pg_temp.compiled() RETURNS text[] LANGUAGE plpython3u AS $$
        import sys
        return sorted(sys.modules["indb.ir.kernels"]._compiled) if "indb.ir.kernels" in sys.modules else []
        $$"""
    answers = {}
    for after in ("100000000", "0"):  # Python code only; the kernel from the first row
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(compiled)
            conn.execute(f"SET indb.engine_compile_after = '{after}'")
            answers[after] = np.asarray([r[0] for r in conn.execute(query, args).fetchall()], dtype=float)
            used = conn.execute("SELECT pg_temp.compiled()").fetchone()[0]
        assert used == ([kernel] if after == "0" and _system_has_numba() else []), (after, used)
    assert np.array_equal(answers["0"], answers["100000000"], equal_nan=True)
    return answers


def test_the_single_row_path_scores_a_large_ensemble_on_the_kernel_bitwise(migrated_dsn):
    """A large ensemble's row code switches to the compiled tree kernel once the backend has
    scored engine_compile_after rows: the same answers, bit for bit, as its Python code
    (NaN rows, thresholds, extremes), row by row through the bound-path entry point."""
    from sklearn.ensemble import RandomForestRegressor

    from indb.plpython.rowcode import KERNEL_MIN_NODES

    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 4))
    est = RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0).fit(X, X[:, 0] - 2 * X[:, 1] + X[:, 2] * X[:, 3])
    assert sum(t.tree_.node_count for t in est.estimators_) >= KERNEL_MIN_NODES  # large enough for the kernel
    deploy(est, "row_kernel", dsn=migrated_dsn, engine="plpython")
    rows = X[:150].copy()
    rows[::9, 1] = np.nan
    rows[3] = [1e300, -1e300, 0.0, np.inf]
    rows[4, 0] = est.estimators_[0].tree_.threshold[0]  # exactly on a split
    answers = _row_by_row(migrated_dsn, "engine_float('row_kernel', 1, 'predict'", rows, "tree")
    plain = (np.abs(np.nan_to_num(rows, nan=np.inf)) < 1e30).all(axis=1)  # rows scikit-learn accepts
    np.testing.assert_allclose(answers["0"][plain], est.predict(rows[plain]), rtol=1e-12)


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_the_single_row_path_scores_an_mlp_on_the_chain_kernel_bitwise(migrated_dsn, kind):
    """An MLP's dense layers in the row code switch to one call of the compiled chain
    kernel once the backend has scored engine_compile_after rows: the same answers, bit
    for bit, as its Python code (NaN rows, extremes, both relu sides), row by row
    through the bound-path entry point, and the model's own answers."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, 4))
    y = X[:, 0] - 2 * X[:, 1] * X[:, 2] + X[:, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if kind == "regressor":
            est = MLPRegressor(hidden_layer_sizes=(32, 24), max_iter=60, random_state=0).fit(X, y)
        else:
            est = MLPClassifier(hidden_layer_sizes=(32, 24), max_iter=60, random_state=0).fit(X, np.digitize(y, [-1, 1]))
    name = f"row_chain_{kind}"
    deploy(est, name, dsn=migrated_dsn, engine="plpython")
    rows = X[:120].copy()
    rows[::9, 1] = np.nan
    rows[3] = [1e150, -1e150, 0.0, 1e-300]
    rows[5] = [-1e6, 1e6, -1e6, 1e6]
    call = f"engine_float('{name}', 1, 'predict'" if kind == "regressor" else f"engine_array('{name}', 1, 'proba'"
    answers = _row_by_row(migrated_dsn, call, rows, "layers")
    plain = ~np.isnan(rows).any(axis=1)
    want = est.predict(rows[plain]) if kind == "regressor" else est.predict_proba(rows[plain])
    np.testing.assert_allclose(answers["0"][plain], want, rtol=1e-9, atol=1e-12)
    assert np.isnan(answers["0"][~plain]).all()  # a NaN feature: NaN (regressor) / NULL (classifier) rows


def test_the_row_code_hands_an_mlp_s_layers_to_one_kernel_call():
    """The row code finds the chain of dense layers (the same evaluate.dense_layers the
    batch path uses) and writes one kernel call with its Python code as the fallback; a
    small chain stays Python code."""
    from indb.plpython import rowcode
    from indb.sqlgen.compile import to_ir

    est = _mlp()  # 3 -> 16 -> 8 -> 1: 184 multiply-adds, under KERNEL_MIN_MACS
    m = to_ir(est, features=["x0", "x1", "x2"])
    f = rowcode.compile_row(m.output("predict"), m.feature_names)
    assert not [v for v in f.__globals__.values() if isinstance(v, rowcode._KernelChain)]
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    X = np.random.default_rng(1).normal(size=(200, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        big = MLPRegressor(hidden_layer_sizes=(32, 32), max_iter=20, random_state=0).fit(X, X[:, 0])
    m = to_ir(big, features=["x0", "x1", "x2"])
    f = rowcode.compile_row(m.output("predict"), m.feature_names)
    chains = [v for v in f.__globals__.values() if isinstance(v, rowcode._KernelChain)]
    assert len(chains) == 1 and len(chains[0].layers) == 3
    row = (0.5, -1.0, float("nan"))
    assert np.isnan(f(row)) and f((0.5, -1.0, 2.0)) == pytest.approx(big.predict([[0.5, -1.0, 2.0]])[0], rel=1e-12)


def _system_python(script: str, payload) -> dict:
    """Run ``script`` in the system Python that PL/Python embeds (its numpy and numba, the
    engine's runtime), with this checkout's ``indb`` importable and ``payload`` (JSON) in
    ``PAYLOAD``; what it prints last, as JSON."""
    import json

    prelude = ("import json, sys\n"
               f"sys.path.insert(0, {str(ROOT)!r})\n"
               "PAYLOAD = json.loads(sys.stdin.read())\n")
    done = subprocess.run(["/usr/bin/python3", "-c", prelude + script], input=json.dumps(payload),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ensembles() -> list:
    """Tree ensembles of several shapes, as the compiler lowers them (name, model JSON):
    one output and non-strict splits (a forest, 37 trees: not a multiple of the row
    kernel's group), three outputs (a multiclass boosting), NaN routed both ways
    (HistGradientBoosting, XGBoost where installed), trees of different depths."""
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    from indb.ir import nodes
    from indb.sqlgen.compile import to_ir

    rng = np.random.default_rng(8)
    X = rng.normal(size=(600, 4))
    X[::11, 2] = np.nan
    y = X[:, 0] - 2 * X[:, 1] + np.nan_to_num(X[:, 2]) * X[:, 3]
    ests = {
        "forest": RandomForestRegressor(n_estimators=37, max_depth=7, random_state=0).fit(X, y),
        "multiclass": GradientBoostingClassifier(n_estimators=9, max_depth=3, random_state=0).fit(
            np.nan_to_num(X), np.digitize(y, [-1, 1])),
        "hgb": HistGradientBoostingRegressor(max_iter=40, max_leaf_nodes=9, random_state=0).fit(X, y),
    }
    try:
        import xgboost

        ests["xgboost"] = xgboost.XGBRegressor(n_estimators=25, max_depth=5).fit(X, y)
    except ImportError:
        pass
    return [[name, nodes.model_to_json(to_ir(est, features=[f"x{i}" for i in range(4)]))] for name, est in ests.items()]


_TREE_ROWS = """
import dataclasses
import numpy as np
from indb.ir import kernels, nodes
if not kernels.available():
    print(json.dumps({"numba": False}))
    raise SystemExit
seen, bad = [], []
for name, text in PAYLOAD:
    m = nodes.model_from_json(text)
    te = [e for _, out in m.outputs for e in nodes.walk(out) if isinstance(e, nodes.TreeEnsemble)][0]
    for strict in (False, True):  # no compiler emits strict splits; a stored IR may
        t = dataclasses.replace(te, strict=strict)
        flat = kernels.Flat(t)
        rows = np.random.default_rng(8).normal(size=(200, 4)) * 2
        rows[::7, 0] = np.nan
        rows[1] = [np.inf, -np.inf, 1e300, -1e300]
        rows[2] = np.nan
        node = int(flat.roots[0])
        rows[3, int(flat.feat[node])] = flat.thr[node]  # exactly on a split
        batch = np.empty((len(rows), t.n_outputs))
        kernels._tree_kernel()(*flat.args(np.ascontiguousarray(rows), batch), 0, len(rows))
        one = np.array([kernels.tree_row(t, flat, list(r)) for r in rows])
        if one.shape != batch.shape or one.tobytes() != batch.tobytes():
            bad.append([name, strict])
        seen.append([name, strict, t.n_outputs, len(set(flat.depths.tolist())) > 1])
print(json.dumps({"numba": True, "seen": seen, "bad": bad}))
"""


def test_the_one_row_tree_kernel_adds_the_batch_kernel_s_sums_bit_for_bit():
    """The single-row path's tree kernel walks a group of trees side by side: every row
    (NaN in each feature, on a threshold, infinities, ±1e300) gets the batch kernel's
    sums bit for bit, whatever the ensemble's shape, with strict splits too. Run in the
    engine's own runtime (the system Python's numba)."""
    got = _system_python(_TREE_ROWS, _ensembles())
    if not got["numba"]:
        assert not _system_has_numba()
        pytest.skip("the system Python has no numba: the engine runs no kernel")
    assert got["bad"] == []
    seen = got["seen"]
    assert {s[1] for s in seen} == {False, True} and len(seen) >= 6
    assert max(s[2] for s in seen) == 3 and any(s[3] for s in seen)


_CHAIN_ROWS = """
import numpy as np
from indb.ir import kernels, nodes
from indb.plpython import rowcode
if not kernels.available():
    print(json.dumps({"numba": False}))
    raise SystemExit
rng = np.random.default_rng(12)
rows = rng.normal(size=(120, 5)) * 3
rows[::5, 1] = np.nan
rows[1] = [np.inf, -np.inf, 1e300, -1e300, 0.0]
checked, bad = [], []
for name, text in PAYLOAD:
    m = nodes.model_from_json(text)
    for kind in m.output_kinds:
        f = rowcode.compile_row(m.output(kind), m.feature_names)
        for kc in (v for v in f.__globals__.values() if isinstance(v, rowcode._KernelChain)):
            ch = kernels.Chain(kc.layers)
            batch = kernels.chain(rows.T, ch)
            one = np.array([kernels.chain_row(list(r), ch) for r in rows]).T
            if one.shape != batch.shape or one.tobytes() != batch.tobytes():
                bad.append([name, kind])
            checked.append(name)
print(json.dumps({"numba": True, "checked": sorted(set(checked)), "bad": bad}))
"""


def test_the_one_row_chain_kernel_adds_the_batch_kernel_s_sums_bit_for_bit():
    """The single-row path's chain kernel sums a layer's units side by side: every row
    (NaN, infinities, ±1e300, both sides of each ReLU) gets the batch kernel's last
    layer bit for bit, for a regressor, a classifier and layers of unequal widths. Run in
    the engine's own runtime (the system Python's numba)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from indb.ir import nodes
    from indb.sqlgen.compile import to_ir

    rng = np.random.default_rng(12)
    X = rng.normal(size=(300, 5))
    y = X[:, 0] - X[:, 1] * X[:, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ests = {"regressor": MLPRegressor(hidden_layer_sizes=(40, 24), max_iter=30, random_state=0).fit(X, y),
                "classifier": MLPClassifier(hidden_layer_sizes=(33, 20), max_iter=30, random_state=0).fit(
                    X, np.digitize(y, [-1, 1])),
                "unequal": MLPRegressor(hidden_layer_sizes=(7, 50, 9), max_iter=30, random_state=0).fit(X, y)}
    payload = [[name, nodes.model_to_json(to_ir(est, features=[f"x{i}" for i in range(5)]))] for name, est in ests.items()]
    got = _system_python(_CHAIN_ROWS, payload)
    if not got["numba"]:
        assert not _system_has_numba()
        pytest.skip("the system Python has no numba: the engine runs no kernel")
    assert got["bad"] == []
    assert got["checked"] == sorted(ests)  # every model's layers went through the kernels


@pytest.mark.parametrize("entry, output", [("engine_float", "predict"), ("engine_array", "proba"), ("engine_text", "label")])
def test_the_fast_row_path_answers_only_for_what_this_statement_s_checked_path_admitted(migrated_dsn, pg_role, entry, output):
    """A row entry point (indb.engine_float, _array, _text: what a PL/Python version's
    own function calls) tries the fast path first: PL/Python without SECURITY DEFINER,
    which answers only for a version the checked path admitted in the same statement,
    for the same session user. The statement and the user are read from the server, not
    from the arguments, so a scorer who calls the fast path directly gets nothing they
    could not get through the checked path: NULL for the first row of a statement, NULL
    in the next statement, NULL for a model they may not score even after scoring one
    they may."""
    from indb.governance.grants import grant

    est = _model()
    deploy(est, "fast_ok", dsn=migrated_dsn, engine="plpython")
    deploy(est, "fast_secret", dsn=migrated_dsn, engine="plpython")
    erin = pg_role(migrated_dsn)
    grant("scorer", erin.name, model="fast_ok", dsn=migrated_dsn)
    args = f"'{output}', ARRAY[0.5, -1.0, (i % 3)::float8], NULL"
    X = np.array([[0.5, -1.0, i % 3] for i in range(1, 4)])
    with psycopg.connect(erin.dsn, autocommit=True) as c:
        rows = c.execute(f"SELECT indb.{entry}_fast('fast_ok', 1, {args}), indb.{entry}_checked('fast_ok', 1, {args}),"
                         f" indb.{entry}_fast('fast_secret', 1, {args}) FROM generate_series(1, 3) AS i").fetchall()
        fast, checked, secret = zip(*rows)
        assert fast[0] is None and fast[1:] == checked[1:] and secret == (None, None, None)
        if output == "proba":
            np.testing.assert_allclose(np.array(checked), est.predict_proba(X), rtol=1e-12)
        else:
            assert [str(v) if output == "label" else v for v in est.predict(X)] == list(checked)
        assert c.execute(f"SELECT indb.{entry}_fast('fast_ok', 1, {args}) FROM generate_series(1, 1) AS i").fetchone()[0] is None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(f"SELECT indb.{entry}_checked('fast_secret', 1, {args}) FROM generate_series(1, 1) AS i").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="engine_admission"):
            c.execute("SELECT indb.engine_admission('fast_secret', 1, statement_timestamp(), transaction_timestamp(),"
                      " session_user, true)").fetchone()
        # the entry point itself: the fast path's answers after the first row, the same
        got = [r[0] for r in c.execute(f"SELECT indb.{entry}('fast_ok', 1, {args}) FROM generate_series(1, 3) AS i").fetchall()]
        assert got == list(checked)


def test_without_the_server_s_symbols_the_fast_row_path_never_answers():
    """Where the engine cannot read the statement, transaction and session user from the
    server (its symbols not found), the fast path answers nothing, so every row takes the
    checked path, whose admissions are then keyed by what the entry point passed."""
    import hashlib

    from indb.ir import nodes
    from indb.plpython import engine as E
    from indb.sqlgen.compile import to_ir

    from indb.ir import kernels
    from indb.plpython import rowcode

    text = nodes.model_to_json(to_ir(_model(), features=["x0", "x1", "x2"]))
    hooks = getattr(kernels._local, "check", None), rowcode.check_interrupts
    eng = E.Engine(None)  # hooks its (server-only) interrupt check into the kernels: put back below
    try:
        assert not eng._flags.available  # outside a server: no symbols
        eng.load("m", 1, text, hashlib.sha256(text.encode()).hexdigest(), "1")
        key = ("2026-12-08 01:00:00+00", "2026-12-08 01:00:00+00", "erin")
        eng.admit("m", 1, key)
        assert eng.admitted("m", 1, key) and not eng.admitted("m", 1, key[:2] + ("mallory",))
        assert eng.row_admitted("m", 1, "predict", [0.5, -1.0, 2.0], None) is None
        assert eng.row("m", 1, "predict", [0.5, -1.0, 2.0], None) == _model().predict([[0.5, -1.0, 2.0]])[0]
    finally:
        kernels.on_interrupts(hooks[0])
        rowcode.check_interrupts = hooks[1]
