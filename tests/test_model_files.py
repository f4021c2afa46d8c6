"""Model files (``indb.compilers.files``): every format compiles to SQL that equals the
library's own predictions on PostgreSQL, DuckDB and SQLite; pickle needs the opt-in;
every broken MODEL ends in one line naming it.

The attacks (a pickle that would run code, a skops file naming a dangerous type) are
in tests/attacks/test_hostile_files.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from indb import errors
from indb.compilers.files import FORMATS, load_model_file
from indb.sqlgen.compile import compile_file, compile_sql, to_ir
from tests.helpers import one_line_error
from tests.sql_engines import LOADERS, mismatches, table_rows

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
sio = pytest.importorskip("skops.io")

ENGINES = ("postgres", "duckdb", "sqlite")


@pytest.fixture
def engines(pg_schema_conn, duckdb_conn, sqlite_conn):
    return {"postgres": pg_schema_conn, "duckdb": duckdb_conn, "sqlite": sqlite_conn}


def _data(classes: int = 0, n: int = 300, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[rng.random((n, d)) < 0.05] = np.nan  # learned missing-value branches
    score = X[:, 0] + 0.5 * np.nan_to_num(X[:, 1]) - 0.25 * np.nan_to_num(X[:, 2])
    if not classes:
        return X, np.nan_to_num(score) * 3 + 1
    return X, np.digitize(np.nan_to_num(score), np.quantile(np.nan_to_num(score), np.linspace(0, 1, classes + 1)[1:-1]))


def _rows(X: np.ndarray) -> np.ndarray:
    """Test rows: some training rows, a row of NaN, zeros, extremes (XGBoost refuses inf)."""
    d = X.shape[1]
    extra = np.array([[np.nan] * d, [0.0] * d, [1e30] * d, [-1e30] * d])
    return np.vstack([X[:60], extra])


def _score(engines, path: str, output: str, X: np.ndarray, **load) -> dict[str, np.ndarray]:
    """Each engine's answers for ``output`` over the rows of ``X``: (n, k) per engine."""
    model, _ = load_model_file(path, **load)
    m = to_ir(model)
    rows = table_rows(m, {name: X[:, j] for j, name in enumerate(m.feature_names)})
    got = {}
    for engine in ENGINES:
        conn = engines[engine]
        LOADERS[engine](conn, "t", m, rows)
        sql = compile_file(path, dialect=engine, output=output, table="t", keep=["id"], **load)
        got[engine] = np.array([r[1:] for r in sorted(conn.execute(sql).fetchall())], dtype=object)
    return got


def _same(engines, path, output, X, want, rtol=1e-6, atol=1e-7):
    want = np.asarray(want, dtype=object).reshape(len(X), -1)
    for engine, got in _score(engines, path, output, X).items():
        assert got.shape == want.shape, (engine, got.shape, want.shape)
        for j in range(want.shape[1]):
            bad = mismatches(list(want[:, j]), list(got[:, j]), rtol, atol)
            assert not bad, f"{path} {output}[{j}] on {engine}: {len(bad)} rows differ, e.g. {bad[:3]}"


def _fit_xgb(objective: str, classes: int, X, y, rounds: int = 6):
    params = {"objective": objective, "max_depth": 3, "eta": 0.3, "seed": 0}
    if classes > 2:
        params["num_class"] = classes
    return xgb.train(params, xgb.DMatrix(X, y), rounds)


# ------------------------------------------------------------------------- XGBoost


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
@pytest.mark.parametrize("objective, classes", [("binary:logistic", 2), ("multi:softprob", 3), ("reg:squarederror", 0)])
def test_xgboost_booster_files_equal_the_booster(engines, tmp_path, suffix, objective, classes):
    X, y = _data(classes)
    booster = _fit_xgb(objective, classes, X, y)
    path = str(tmp_path / f"booster{suffix}")
    booster.save_model(path)
    rows = _rows(X)
    # the library's own answers, from the file it wrote
    own = xgb.Booster(model_file=path)
    raw = own.predict(xgb.DMatrix(rows))
    if classes:
        proba = np.column_stack([1 - raw, raw]) if classes == 2 else raw
        wrapper = xgb.XGBClassifier()
        wrapper.load_model(path)
        _same(engines, path, "proba", rows, proba)
        _same(engines, path, "predict", rows, wrapper.predict(rows).astype(float), rtol=0, atol=0)
        model, _ = load_model_file(path)
        assert isinstance(model, xgb.XGBClassifier)
    else:
        _same(engines, path, "predict", rows, raw)
        model, _ = load_model_file(path)
        assert isinstance(model, xgb.XGBRegressor)


def test_xgboost_wrapper_saved_model_keeps_its_kind_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = _data(2)
    frame = pd.DataFrame(X, columns=["age", "income", "tenure", "visits"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(frame, y)
    path = str(tmp_path / "clf.json")
    est.save_model(path)
    model, digest = load_model_file(path)
    assert isinstance(model, xgb.XGBClassifier) and len(digest) == 64
    assert to_ir(model).feature_names == ("age", "income", "tenure", "visits")
    assert "income" in compile_file(path, dialect="duckdb", output="proba")


# ------------------------------------------------------------------------- LightGBM


@pytest.mark.parametrize("objective, classes", [("binary", 2), ("multiclass", 3), ("regression", 0), ("poisson", 0)])
def test_lightgbm_model_files_equal_the_booster(engines, tmp_path, objective, classes):
    X, y = _data(classes)
    if objective == "poisson":
        y = np.abs(y)
    params = {"objective": objective, "num_leaves": 7, "verbose": -1, "seed": 0}
    if classes > 2:
        params["num_class"] = classes
    booster = lgb.train(params, lgb.Dataset(X, y), 6)
    path = str(tmp_path / "model.txt")
    booster.save_model(path)
    rows = _rows(X)
    own = lgb.Booster(model_file=path).predict(rows)
    if classes:
        proba = np.column_stack([1 - own, own]) if classes == 2 else own
        _same(engines, path, "proba", rows, proba, rtol=1e-9, atol=1e-12)
        _same(engines, path, "predict", rows, np.argmax(proba, axis=1).astype(float), rtol=0, atol=0)
    else:
        _same(engines, path, "predict", rows, own, rtol=1e-9, atol=1e-12)


def test_lightgbm_feature_names_come_from_the_file(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = _data(0)
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(pd.DataFrame(X, columns=list("abcd")), y), 2)
    path = str(tmp_path / "named.txt")
    booster.save_model(path)
    assert to_ir(load_model_file(path)[0]).feature_names == ("a", "b", "c", "d")


# ------------------------------------------------------------------------- skops and pickle


def test_skops_file_equals_the_model(engines, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data(3)
    clf = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    path = str(tmp_path / "hgb.skops")
    sio.dump(clf, path)
    rows = _rows(X)
    _same(engines, path, "proba", rows, clf.predict_proba(rows), rtol=1e-9, atol=1e-12)
    Xr, yr = _data(0)
    Xr = np.nan_to_num(Xr)
    reg = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0)).fit(Xr, yr)
    path = str(tmp_path / "rf.skops")
    sio.dump(reg, path)
    _same(engines, path, "predict", Xr[:40], reg.predict(Xr[:40]), rtol=1e-9, atol=1e-12)


def test_pickle_files_need_the_opt_in(tmp_path):
    import joblib
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])
    for suffix in (".joblib", ".pkl", ".pickle"):
        path = str(tmp_path / f"m{suffix}")
        joblib.dump(model, path)
        with pytest.raises(errors.UntrustedFileError, match="runs code when it is loaded") as refused:
            compile_file(path)
        for safe in (".skops", ".onnx", ".json/.ubj", ".txt", "--allow-pickle"):
            assert safe in str(refused.value)
        assert compile_file(path, dialect="sqlite", allow_pickle=True) == compile_sql(model, "sqlite")


def test_every_format_has_one_loader():
    suffixes = [s for f in FORMATS for s in f.suffixes]
    assert len(suffixes) == len(set(suffixes))
    assert {s for f in FORMATS if f.runs_code for s in f.suffixes} == {".joblib", ".pkl", ".pickle"}


# ------------------------------------------------------------------------- one-line errors


def _indb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indb.cli", *args], capture_output=True, text=True, timeout=120)


def _xgb_file(tmp_path) -> bytes:
    X, y = _data(2, n=50)
    path = tmp_path / "ok.json"
    _fit_xgb("binary:logistic", 2, X, y, rounds=2).save_model(str(path))
    return path.read_bytes()


def test_broken_model_files_end_in_one_line(tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = _data(2, n=50)
    sio.dump(LogisticRegression().fit(np.nan_to_num(X), y), str(tmp_path / "ok.skops"))
    lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 2).save_model(str(tmp_path / "ok.txt"))
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "empty.json").write_bytes(b"")
    xgb_bytes = _xgb_file(tmp_path)
    cases = {
        "folder.onnx": "is a folder",
        "missing.skops": "does not exist",
        "empty.json": "is empty",
        "model.h5": "unknown model file type",
    }
    for name, data in {
        "half.skops": (tmp_path / "ok.skops").read_bytes()[:200],
        "half.json": xgb_bytes[: len(xgb_bytes) // 2],
        "half.ubj": b"{" + b"\x00" * 40,
        "half.txt": (tmp_path / "ok.txt").read_bytes()[:300],
        # LightGBM's own parser aborts the process on this one: a child process reads it first
        "noleaves.txt": b"\n".join(ln for ln in (tmp_path / "ok.txt").read_bytes().split(b"\n") if not ln.startswith(b"leaf_value=")),
        "half.onnx": b"\x08\x07\x12\x05hello\x3a\xff",
        "notjson.json": b"this is not json",
        "nottext.txt": b"\xff\xfe\x00binary",
    }.items():
        (tmp_path / name).write_bytes(data)
        cases[name] = "not a readable"
    for name, expected in cases.items():
        path = str(tmp_path / name)
        with pytest.raises(errors.IndbError) as e:  # the ONNX front end calls a corrupt graph unsupported (exit 1)
            load_model_file(path)
        assert expected in str(e.value) and name in str(e.value), str(e.value)
        assert "\n" not in str(e.value) and "Stack trace" not in str(e.value), str(e.value)
    # and the command line says it in one line, exit 2, for compile and deploy alike
    for name in ("folder.onnx", "half.json", "noleaves.txt"):
        path = str(tmp_path / name)
        for argv in (["compile", path], ["--dsn", "host=/nonexistent", "deploy", path, "--name", "m"]):
            run = _indb(*argv)
            assert cases[name] in one_line_error(run) and run.returncode == 2, (argv, run.stderr)


def test_a_nul_byte_in_a_class_label_is_refused_in_one_line(tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = _data(2, n=60)
    labels = np.array(["ok", "bad\x00label"], dtype=object)[y]
    path = str(tmp_path / "nul.skops")
    sio.dump(LogisticRegression().fit(np.nan_to_num(X), labels), path)
    for argv in (["compile", path, "--output", "proba"], ["--dsn", "host=/nonexistent", "deploy", path, "--name", "m"]):
        run = _indb(*argv)
        line = one_line_error(run)
        assert "NUL" in line and "nul.skops" in line and "rename the class" in line, line
        assert run.returncode == 1


def _nan_leaf_onnx(path):
    from onnx import TensorProto, helper

    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1,
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[0.5, 0.0, 0.0],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], nodes_missing_value_tracks_true=[0, 0, 0],
        target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[float("nan"), 20.0],
    )
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def test_an_onnx_tree_with_a_nan_leaf_is_refused_at_deploy_in_one_line(tmp_path, migrated_dsn):
    path = tmp_path / "nanleaf.onnx"
    _nan_leaf_onnx(path)
    run = _indb("--dsn", migrated_dsn, "deploy", str(path), "--name", "nanleaf")
    line = one_line_error(run)
    assert "nanleaf.onnx" in line and "NaN leaf weight" in line and "fix or retrain" in line, line
    assert run.returncode == 1
    # SQL can say NaN, so compiling it still works: the rows reaching that leaf score NaN
    assert "NaN" in compile_file(str(path))


@pytest.mark.parametrize("argv, what", [
    (["promote", "m", "99999999999"], "VERSION"),
    (["retire", "m", "99999999999"], "VERSION"),
    (["score", "m@99999999999", "--from", "a", "--into", "b"], "NAME"),
    (["drift", "m", "--version", "99999999999"], "--version"),
])
def test_a_version_beyond_int_range_is_a_usage_error(argv, what):
    run = _indb("--dsn", "host=/nonexistent", *argv)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert what in last and "99999999999" in last and "2147483647" in last, last


def test_xgboost_json_that_is_not_a_model_is_not_read_as_one(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"learner": {"attributes": {}}, "version": [3, 0, 0]}))
    with pytest.raises(errors.UsageError, match="config.json: not a readable XGBoost model file"):
        load_model_file(str(path))
