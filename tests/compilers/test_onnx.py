"""The ONNX front end: graphs to IR, checked against onnxruntime (and the IR's structure).

Each graph here is built by hand to isolate one operator or attribute value; the
end-to-end zoo (tests/zoo/onnx.py) covers converter output on the real engines. The
comparisons are exact where onnxruntime's float32 answer is representable (tree leaves,
labels) and 1e-6 relative otherwise.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from indb import ir  # noqa: E402
from indb.compilers import onnx as front  # noqa: E402
from indb.compilers.onnx import compile_onnx, float32_le_bound, float32_lt_bound, rename_features  # noqa: E402
from indb.errors import CompileError, UnsupportedModelError  # noqa: E402
from indb.ir.evaluate import evaluate  # noqa: E402
from tests.zoo import onnx as zoo  # noqa: E402

F = TensorProto.FLOAT
D = TensorProto.DOUBLE
I64 = TensorProto.INT64
S = TensorProto.STRING
ort.set_default_logger_severity(3)


# --------------------------------------------------------------------------- helpers


def graph(nodes, inputs, outputs, inits=(), ml=3, opset=17):
    g = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ml)])
    m.ir_version = 10 if ml >= 5 or opset >= 21 else 8
    return m


def tin(name, width=None, t=F):
    return helper.make_tensor_value_info(name, t, [None, width] if width else [None])


def tout(name, t=F, shape=None):
    return helper.make_tensor_value_info(name, t, shape)


def run_ort(m, X):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = X if isinstance(X, dict) else {sess.get_inputs()[0].name: X}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sess.run(None, feeds)


def run_ir(m, X, **kw):
    model = compile_onnx(m, **kw)
    if isinstance(X, dict):
        cols = {}
        for f, (_name, arr) in zip(model.features, X.items()):
            cols[f.name] = np.asarray(arr).reshape(-1)
    else:
        X = np.asarray(X)
        cols = {f.name: X[:, j].astype(np.float64) for j, f in enumerate(model.features)}
    return model, [evaluate(e, cols, n=len(next(iter(cols.values())))) for _, e in model.outputs]


def assert_same(got, want, rtol=0.0, atol=0.0, what=""):
    got = np.asarray(got)
    want = np.asarray(want)
    if want.dtype.kind in "OUS" or got.dtype.kind == "O" and want.dtype.kind not in "fiu":
        assert [str(v) for v in got.reshape(-1)] == [str(v) for v in want.reshape(-1)], what
        return
    g = got.astype(np.float64).reshape(want.shape)
    w = want.astype(np.float64)
    ok = (np.abs(g - w) <= atol + rtol * np.abs(w)) | (np.isnan(g) & np.isnan(w)) | (g == w)
    assert ok.all(), f"{what}: rows {np.argwhere(~ok)[:5].tolist()} got {g[~ok][:5]} want {w[~ok][:5]}"


def compare(m, X, rtol=1e-6, atol=1e-7, **kw):
    """Every output of the graph: the IR's evaluation equals onnxruntime's."""
    want = run_ort(m, X)
    model, got = run_ir(m, X, **kw)
    for (kind, _), g, w in zip(model.outputs, got, want):
        if isinstance(w, list):
            w = np.array([[d[c] for c in model.classes] for d in w])
        assert_same(g, w, rtol, atol, kind)
    return model


def tree_node(op, modes, values, true, false, missing=None, feature=None, leaves=(10.0, 20.0, 30.0, 40.0), **kw):
    """A one-tree TreeEnsembleRegressor: internal nodes 0..k-1, then one leaf per remaining id."""
    n_int = len(modes)
    n_leaf = len(leaves)
    ids = list(range(n_int + n_leaf))
    attrs = dict(
        n_targets=1,
        nodes_treeids=[0] * len(ids),
        nodes_nodeids=ids,
        nodes_featureids=(feature or [0] * n_int) + [0] * n_leaf,
        nodes_modes=list(modes) + ["LEAF"] * n_leaf,
        nodes_values=list(values) + [0.0] * n_leaf,
        nodes_truenodeids=list(true) + [0] * n_leaf,
        nodes_falsenodeids=list(false) + [0] * n_leaf,
        nodes_missing_value_tracks_true=(missing or [0] * n_int) + [0] * n_leaf,
        target_treeids=[0] * n_leaf,
        target_nodeids=list(range(n_int, n_int + n_leaf)),
        target_ids=[0] * n_leaf,
        target_weights=list(leaves),
    )
    attrs.update(kw)
    return helper.make_node(op, ["X"], ["Y"], domain="ai.onnx.ml", **attrs)


def probe_values(t):
    f = np.float32(t)
    vals = [float(f), float(np.nextafter(f, np.float32(-np.inf))), float(np.nextafter(f, np.float32(np.inf)))]
    for b in (float32_le_bound(float(f)), float32_lt_bound(float(f))):
        vals += [b, float(np.nextafter(b, np.inf)), float(np.nextafter(b, -np.inf))]
    return vals + [np.nan, 0.0, 1e30, -1e30, np.inf, -np.inf, 1e300, -1e300]


# --------------------------------------------------------------------------- zoo cases too large for SQL


LARGE = [c for c in zoo.CASES if "large" in c.tags]


@pytest.mark.parametrize("case", LARGE, ids=[c.id for c in LARGE])
def test_large_zoo_graphs_on_the_ir(case):
    """Zoo graphs whose SQL is too large for tests/test_parity.py: the IR against onnxruntime."""
    from tests.sql_engines import mismatches
    from tests.reference import evaluator_output, reference

    est, X = case.fitted()
    model = case.compiled()
    for kind in case.outputs:
        ref = reference(est, model, X, kind, own=case.reference)
        assert (~ref.rejected).sum() > len(X) // 2
        for j, (want, got) in enumerate(zip(ref.columns, evaluator_output(model, X, kind))):
            bad = mismatches(want, got, case.rtol, case.atol)
            assert not bad, f"{case.id} {kind}[{j}]: {bad[:3]}"


# --------------------------------------------------------------------------- float32 bounds


def test_float32_bounds_are_exact_for_every_double():
    rng = np.random.default_rng(0)
    ts = list(rng.normal(size=3000) * 10.0 ** rng.integers(-46, 39, 3000))
    ts += [0.0, -0.0, 1.5, 0.1, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, math.inf, 1e300, -1e300]
    with np.errstate(over="ignore"):
        for t in ts:
            t = float(t)
            le = float32_le_bound(t)
            assert float(np.float32(le)) <= t and (le == math.inf or float(np.float32(np.nextafter(le, math.inf))) > t), t
            lt = float32_lt_bound(t)
            assert float(np.float32(lt)) < t and float(np.float32(np.nextafter(lt, math.inf))) >= t, t
    assert math.isnan(float32_lt_bound(-math.inf))  # nothing is below -inf
    assert math.isnan(float32_le_bound(math.nan))


# --------------------------------------------------------------------------- tree split modes


@pytest.mark.parametrize("mode", ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"])
@pytest.mark.parametrize("missing", [0, 1])
@pytest.mark.parametrize("dtype", [F, D])
def test_split_mode_matches_onnxruntime(mode, missing, dtype):
    t = 0.1  # not a float32 value: the float32 graph compares with float32(0.1)
    node = tree_node("TreeEnsembleRegressor", [mode], [t], [1], [2], [missing], leaves=(10.0, 20.0))
    m = graph([node], [tin("X", 1, dtype)], [tout("Y")])
    X = np.array(probe_values(t) + probe_values(float(np.float32(t)) * 3), dtype=np.float64).reshape(-1, 1)
    want = run_ort(m, X.astype(np.float32 if dtype == F else np.float64))[0]
    _, (got,) = run_ir(m, X)
    assert_same(got, want, what=mode)


def test_split_modes_in_one_tree_against_onnxruntime():
    """A deeper tree mixing every mode on two features, random missing tracks."""
    modes = ["BRANCH_GTE", "BRANCH_EQ", "BRANCH_LT", "BRANCH_NEQ", "BRANCH_GT", "BRANCH_LEQ", "BRANCH_EQ"]
    values = [0.5, -1.25, 2.0, 0.3, -0.7, 1.1, 0.5]
    true = [1, 3, 5, 7, 8, 9, 10]
    false = [2, 4, 6, 11, 12, 13, 14]
    node = tree_node("TreeEnsembleRegressor", modes, values, true, false, [1, 0, 1, 0, 1, 0, 1], [0, 1, 0, 1, 1, 0, 1],
                     leaves=tuple(float(v) for v in range(1, 9)))
    m = graph([node], [tin("X", 2)], [tout("Y")])
    vals = sorted({v for t in values for v in probe_values(t)} - {math.nan}) + [math.nan]
    X = np.array([[a, b] for a in vals for b in vals[::3]])
    want = run_ort(m, X.astype(np.float32))[0]
    _, (got,) = run_ir(m, X)
    assert_same(got, want)


def test_gte_is_a_swapped_bound_test():
    """``float32(x) >= t`` becomes ``x <= float32_lt_bound(t)`` with the false branch on the left."""
    node = tree_node("TreeEnsembleRegressor", ["BRANCH_GTE"], [0.1], [1], [2], [1], leaves=(10.0, 20.0))
    m = compile_onnx(graph([node], [tin("X", 1)], [tout("Y")]))
    ens = m.output("predict").vector
    t = float(np.float32(0.1))
    assert ens.trees == (
        ir.Tree(feature=(0, -1, -1), threshold=(float32_lt_bound(t), 0.0, 0.0), left=(1, -1, -1), right=(2, -1, -1),
                missing_left=(False, False, False), value=((0.0,), (20.0,), (10.0,))),
    )


def test_eq_copies_the_shared_subtree():
    node = tree_node("TreeEnsembleRegressor", ["BRANCH_EQ"], [2.0], [1], [2], leaves=(10.0, 20.0))
    (tree,) = compile_onnx(graph([node], [tin("X", 1)], [tout("Y")])).output("predict").vector.trees
    # two tests (x <= hi, then x <= lo) and the false leaf written twice
    assert sorted(t for t, f in zip(tree.threshold, tree.feature) if f >= 0) == [float32_lt_bound(2.0), float32_le_bound(2.0)]
    assert sorted(v[0] for v, f in zip(tree.value, tree.feature) if f < 0) == [10.0, 20.0, 20.0]


def _te5(modes, splits, members=None, missing=0, dtype=F, leaves=None):
    n = len(modes)
    kw = dict(
        n_targets=1, aggregate_function=1, post_transform=0, tree_roots=[0], nodes_featureids=[0] * n,
        nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [n], modes),
        nodes_splits=helper.make_tensor("s", dtype, [n], splits),
        nodes_truenodeids=list(range(n)), nodes_trueleafs=[1] * n,
        nodes_falsenodeids=[i + 1 for i in range(n - 1)] + [n], nodes_falseleafs=[0] * (n - 1) + [1],
        nodes_missing_value_tracks_true=[missing] * n, leaf_targetids=[0] * (n + 1),
        leaf_weights=helper.make_tensor("w", dtype, [n + 1], leaves or [float(10 * (i + 1)) for i in range(n + 1)]),
    )
    if members is not None:
        kw["membership_values"] = helper.make_tensor("mv", dtype, [len(members)], members)
    node = helper.make_node("TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", **kw)
    return graph([node], [tin("X", 1, dtype)], [tout("Y", dtype)], ml=5, opset=21)


@pytest.mark.parametrize("dtype", [F, D])
@pytest.mark.parametrize("missing", [0, 1])
def test_tree_ensemble5_member_and_modes(dtype, missing):
    nan = float("nan")
    m = _te5([6, 1, 6, 5], [0.0, 2.5, 0.0, 7.0], members=[0.0, 3.0, 30.0, nan, 12.0, nan], missing=missing, dtype=dtype)
    vals = [v for c in (0.0, 3.0, 12.0, 30.0, 2.5, 7.0) for v in probe_values(c)] + [0.5, -0.5, 3.5, 12.25, 29.0]
    X = np.array(vals).reshape(-1, 1)
    want = run_ort(m, X.astype(np.float32 if dtype == F else np.float64))[0]
    _, (got,) = run_ir(m, X)
    assert_same(got, want)


@pytest.mark.parametrize("members", [[-1.0, 2.0], [31.0], [2.5]])
def test_member_sets_onnxruntime_truncates_are_refused(members):
    m = _te5([6], [0.0], members=members + [float("nan")])
    with pytest.raises(UnsupportedModelError, match="BRANCH_MEMBER"):
        compile_onnx(m)


# --------------------------------------------------------------------------- aggregates and transforms


def _two_tree_regressor(agg, base=None, post="NONE", n_targets=2):
    kw = dict(
        n_targets=n_targets, nodes_treeids=[0, 0, 0, 1, 1, 1], nodes_nodeids=[0, 1, 2, 0, 1, 2], nodes_featureids=[0, 0, 0, 1, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"] * 2, nodes_values=[1.0, 0, 0, 2.0, 0, 0], nodes_truenodeids=[1, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[2, 0, 0, 2, 0, 0], target_treeids=[0, 0, 0, 1, 1, 1], target_nodeids=[1, 2, 2, 1, 2, 2],
        target_ids=[0, 0, 1, 1, 1, 1], target_weights=[-3.0, 5.0, -7.0, -2.0, 4.0, 0.5], aggregate_function=agg, post_transform=post,
    )
    if base:
        kw["base_values"] = base
    return graph([helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", **kw)], [tin("X", 2)], [tout("Y")])


@pytest.mark.parametrize("agg", ["SUM", "AVERAGE", "MIN", "MAX"])
@pytest.mark.parametrize("base", [None, [10.0, -20.0]])
def test_aggregate_functions(agg, base):
    X = np.array([[a, b] for a in (0.5, 1.0, 1.5, np.nan) for b in (1.0, 2.0, 3.0, np.nan)])
    compare(_two_tree_regressor(agg, base), X.astype(np.float32), rtol=0, atol=0)


@pytest.mark.parametrize("post", ["LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
def test_regressor_post_transforms(post):
    X = np.array([[a, b] for a in (0.5, 1.5, np.nan) for b in (1.0, 3.0)], dtype=np.float32)
    compare(_two_tree_regressor("SUM", None, post), X)


def test_probit_is_refused():
    with pytest.raises(UnsupportedModelError, match="PROBIT"):
        compile_onnx(_two_tree_regressor("SUM", None, "PROBIT"))


# --------------------------------------------------------------------------- tree classifiers


def _classifier(class_ids, weights, labels, base=None, post="NONE", n_leaves=6):
    """A chain tree on x0 (node k: x0 <= k) whose leaves carry ``weights`` for ``class_ids``."""
    n_int = n_leaves - 1
    nodes = dict(nodes_treeids=[], nodes_nodeids=[], nodes_featureids=[], nodes_modes=[], nodes_values=[], nodes_truenodeids=[], nodes_falsenodeids=[])
    for k in range(n_int):
        for key, v in zip(nodes, (0, k, 0, "BRANCH_LEQ", float(k), n_int + k, k + 1 if k + 1 < n_int else 2 * n_int)):
            nodes[key].append(v)
    for k in range(n_leaves):
        for key, v in zip(nodes, (0, n_int + k, 0, "LEAF", 0.0, 0, 0)):
            nodes[key].append(v)
    cls = dict(class_treeids=[], class_nodeids=[], class_ids=[], class_weights=[])
    for k in range(n_leaves):
        for c, w in zip(class_ids, weights[k]):
            if w is None:
                continue
            for key, v in zip(cls, (0, n_int + k, c, w)):
                cls[key].append(v)
    kw = dict(nodes, **cls, post_transform=post)
    kw["classlabels_strings" if isinstance(labels[0], str) else "classlabels_int64s"] = labels
    if base is not None:
        kw["base_values"] = base
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["Y", "Z"], domain="ai.onnx.ml", **kw)
    yt = S if isinstance(labels[0], str) else I64
    return graph([node], [tin("X", 1)], [tout("Y", yt), tout("Z")])


CHAIN_X = np.arange(6, dtype=np.float32).reshape(-1, 1)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
@pytest.mark.parametrize("signs", ["positive", "mixed"])
@pytest.mark.parametrize("base", [None, [0.25]])
@pytest.mark.parametrize("labels", [[3, 7], ["no", "yes"]])
def test_binary_tree_classifier_follows_onnxruntime(post, signs, base, labels):
    """Weights for class id 0 only: the layout skl2onnx and onnxmltools write."""
    w = [0.0, 0.2, 0.5, 0.7, 0.9, 1.3] if signs == "positive" else [-1.0, -0.25, 0.0, 0.3, 0.5, 0.6]
    compare(_classifier([0], [[v] for v in w], labels, base, post), CHAIN_X)


@pytest.mark.parametrize("class_ids,base", [([1], None), ([0, 1], None), ([0], [0.1, 0.2])])
def test_other_binary_layouts_are_refused(class_ids, base):
    m = _classifier(class_ids, [[0.5] * len(class_ids)] * 6, [3, 7], base)
    with pytest.raises(UnsupportedModelError, match="two-class layout"):
        compile_onnx(m)


@pytest.mark.parametrize("post", ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"])
def test_multiclass_label_skips_classes_without_a_weight(post):
    """onnxruntime's label ignores a class no reached leaf scored: with negative scores, plain
    argmax would pick the unscored class (score 0)."""
    w = [[None, -1.0, -2.0], [-3.0, None, -1.0], [None, None, -0.5], [-1.0, -1.0, -1.0], [2.0, None, None], [None, 0.0, None]]
    m = _classifier([0, 1, 2], w, ["a", "b", "c"], post=post)
    model = compare(m, CHAIN_X)
    labels = evaluate(model.output("predict"), {"x0": CHAIN_X[:, 0].astype(np.float64)})
    assert list(labels[:3]) == ["b", "c", "c"]


def test_multiclass_with_base_values():
    w = [[0.1, -1.0, -2.0], [-3.0, 0.5, -1.0], [0.0, 0.0, -0.5], [-1.0, -1.0, -1.0], [2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    compare(_classifier([0, 1, 2], w, [1, 2, 3], base=[0.5, -0.5, 0.0], post="SOFTMAX"), CHAIN_X)


# --------------------------------------------------------------------------- linear models


@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
def test_linear_classifier_follows_onnxruntime(rows, post):
    labels = [3, 7, 9][: max(rows, 2)]
    node = helper.make_node("LinearClassifier", ["X"], ["Y", "Z"], domain="ai.onnx.ml", coefficients=[1.0, -0.5, 2.0, 0.25, -1.0, 0.5][: 2 * rows],
                            intercepts=[0.0, 0.25, -1.0][:rows], post_transform=post, classlabels_ints=labels)
    m = graph([node], [tin("X", 2)], [tout("Y", I64), tout("Z")])
    X = np.array([[a, b] for a in (-2.0, -0.3, 0.0, 0.2, 0.5, 3.0) for b in (0.0, 1.0, -1.0)], dtype=np.float32)
    compare(m, X)


def test_linear_regressor_targets():
    node = helper.make_node("LinearRegressor", ["X"], ["Y"], domain="ai.onnx.ml", coefficients=[1.0, 2.0, -3.0, 0.5], intercepts=[0.5, -1.0], targets=2)
    m = graph([node], [tin("X", 2)], [tout("Y")])
    model = compare(m, np.array([[1.0, 2.0], [np.nan, 0.0], [1e30, -1e30]], dtype=np.float32))
    assert model.output_kinds == ("transform",)


# --------------------------------------------------------------------------- preprocessing operators


def test_scaler_normalizer_binarizer_imputer_chain():
    nodes = [
        helper.make_node("Imputer", ["X"], ["a"], domain="ai.onnx.ml", imputed_value_floats=[7.0, 8.0, 9.0], replaced_value_float=float("nan")),
        helper.make_node("Imputer", ["a"], ["b"], domain="ai.onnx.ml", imputed_value_floats=[-1.0], replaced_value_float=0.1),
        helper.make_node("Scaler", ["b"], ["c"], domain="ai.onnx.ml", offset=[1.0, 0.5, -2.0], scale=[2.0, 0.5, 1.5]),
        helper.make_node("Normalizer", ["c"], ["d"], domain="ai.onnx.ml", norm="L2"),
        helper.make_node("Normalizer", ["c"], ["e"], domain="ai.onnx.ml", norm="L1"),
        helper.make_node("Normalizer", ["c"], ["f"], domain="ai.onnx.ml", norm="MAX"),
        helper.make_node("Binarizer", ["d"], ["g"], domain="ai.onnx.ml", threshold=0.25),
        helper.make_node("Concat", ["d", "e", "f", "g"], ["Y"], axis=1),
    ]
    m = graph(nodes, [tin("X", 3)], [tout("Y")])
    X = np.array([[np.nan, 1.0, -2.0], [0.1, 0.1, 0.1], [1.0, 0.5, 2.0], [2.0, -1.0, 3.0], [0.0, 0.0, 0.0], [1.5, 1.0, -2.0]], dtype=np.float32)
    compare(m, X)


def test_binarizer_refuses_nan_rows():
    node = helper.make_node("Binarizer", ["X"], ["Y"], domain="ai.onnx.ml", threshold=0.5)
    m = graph([node], [tin("X", 2)], [tout("Y")])
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises its own, version-specific type
        run_ort(m, np.array([[np.nan, 1.0]], dtype=np.float32))  # onnxruntime has no answer
    _, (got,) = run_ir(m, np.array([[np.nan, 1.0], [0.5, 0.6], [float(np.float32(0.5)), float32_le_bound(0.5) + 1e-17]]))
    assert np.isnan(got[0]).all() and got[1].tolist() == [0.0, 1.0]


def test_binarizer_threshold_in_float32():
    node = helper.make_node("Binarizer", ["X"], ["Y"], domain="ai.onnx.ml", threshold=0.1)
    m = graph([node], [tin("X", 1)], [tout("Y")])
    X = np.array([v for v in probe_values(0.1) if not np.isnan(v)]).reshape(-1, 1)
    want = run_ort(m, X.astype(np.float32))[0]
    _, (got,) = run_ir(m, X)
    assert_same(got, want)


def test_one_hot_and_label_encoders_on_strings():
    nodes = [
        helper.make_node("OneHotEncoder", ["s"], ["oh"], domain="ai.onnx.ml", cats_strings=["a", "b", "c"], zeros=1),
        helper.make_node("LabelEncoder", ["s"], ["le"], domain="ai.onnx.ml", keys_strings=["a", "b"], values_int64s=[10, 20], default_int64=-1),
        helper.make_node("CategoryMapper", ["s"], ["cm"], domain="ai.onnx.ml", cats_strings=["b", "c"], cats_int64s=[5, 6], default_int64=-7),
        helper.make_node("Cast", ["le"], ["lef"], to=F),
        helper.make_node("Cast", ["cm"], ["cmf"], to=F),
        helper.make_node("Reshape", ["oh", "shape"], ["ohr"]),
        helper.make_node("Concat", ["ohr", "lef", "cmf"], ["Y"], axis=1),
    ]
    shape = helper.make_tensor("shape", I64, [2], [-1, 3])
    m = graph(nodes, [tin("s", 1, S)], [tout("Y")], inits=[shape])
    X = {"s": np.array([["a"], ["b"], ["c"], ["zz"], [""]], dtype=object)}
    want = run_ort(m, X)[0]
    model, (got,) = run_ir(m, X)
    assert model.features == (ir.FeatureSpec("x0", ir.TEXT),)  # a single input tensor: x0, x1, ...
    assert_same(got, want)
    # NULL text has no ONNX value: the row is refused (every output missing)
    _, (null_row,) = run_ir(m, {"s": np.array([None], dtype=object)})
    assert np.isnan(np.asarray(null_row, dtype=float)).all()


def test_one_hot_on_numbers_truncates_like_onnxruntime():
    node = helper.make_node("OneHotEncoder", ["X"], ["Y"], domain="ai.onnx.ml", cats_int64s=[-1, 0, 2, 3], zeros=1)
    m = graph([node], [tin("X", 1)], [tout("Y", F, [None, 1, 4])])
    X = np.array([-1.5, -1.0, -0.5, 0.0, 0.7, 1.0, 2.0, 2.9, 3.0, 3.5, 4.0]).reshape(-1, 1)
    want = run_ort(m, X.astype(np.float32))[0]
    _, (got,) = run_ir(m, X)
    assert_same(got, want.reshape(len(X), -1))


def test_one_hot_zeros_0_refuses_unknown_rows():
    node = helper.make_node("OneHotEncoder", ["X"], ["Y"], domain="ai.onnx.ml", cats_strings=["a", "b"], zeros=0)
    m = graph([node], [tin("X", 1, S)], [tout("Y", F, [None, 1, 2])])
    _, (got,) = run_ir(m, {"X": np.array(["a", "zz"], dtype=object)})
    got = np.asarray(got, dtype=float)
    assert got[0].tolist() == [1.0, 0.0] and np.isnan(got[1]).all()


@pytest.mark.parametrize("ml", [2, 4])
def test_label_encoder_float_keys(ml):
    """A NaN key matches NaN input from ai.onnx.ml 4 on (before, onnxruntime never matches it)."""
    keys, values = [0.1, 2.0, float("nan")], [1.5, -2.0, 9.0]
    if ml < 4:
        kw = dict(keys_floats=keys, values_floats=values, default_float=-1.0)
    else:
        kw = dict(keys_tensor=helper.make_tensor("k", F, [3], keys), values_tensor=helper.make_tensor("v", F, [3], values),
                  default_tensor=helper.make_tensor("d", F, [1], [-1.0]))
    m = graph([helper.make_node("LabelEncoder", ["X"], ["a"], domain="ai.onnx.ml", **kw)], [tin("X", 1)], [tout("a")], ml=ml, opset=18)
    X = np.array([0.1, float(np.float32(0.1)), float32_le_bound(0.1), np.nextafter(float32_le_bound(0.1), 1), 2.0, np.nan, 5.0]).reshape(-1, 1)
    want = run_ort(m, X.astype(np.float32))[0]
    _, (got,) = run_ir(m, X)
    assert_same(got, want)


def test_label_encoder_ints_to_strings_fuses_with_argmax():
    nodes = [
        helper.make_node("ArgMax", ["X"], ["i"], axis=1, keepdims=0),
        helper.make_node("LabelEncoder", ["i"], ["Y"], domain="ai.onnx.ml", keys_int64s=[0, 1, 2], values_strings=["lo", "mid", "hi"], default_string="?"),
    ]
    m = graph(nodes, [tin("X", 3)], [tout("Y", S)], ml=2)
    model = compare(m, np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 3.0], [0.0, 5.0, -1.0], [np.nan, 1.0, 2.0], [1.0, np.nan, 0.0]], dtype=np.float32))
    assert front.argmax_items(model.output("predict"))[1] == ("lo", "mid", "hi")


def test_array_feature_extractor_feature_vectorizer_zipmap():
    nodes = [
        helper.make_node("ArrayFeatureExtractor", ["X", "idx"], ["a"], domain="ai.onnx.ml"),
        helper.make_node("FeatureVectorizer", ["a", "X"], ["b"], domain="ai.onnx.ml", inputdimensions=[2, 3]),
        helper.make_node("Softmax", ["b"], ["p"], axis=1),
        helper.make_node("ArgMax", ["p"], ["i"], axis=1, keepdims=1),
        helper.make_node("ArrayFeatureExtractor", ["labels", "i"], ["lab"], domain="ai.onnx.ml"),
        helper.make_node("Reshape", ["lab", "flat"], ["label"]),
        helper.make_node("ZipMap", ["p"], ["probs"], domain="ai.onnx.ml", classlabels_strings=["u", "v", "w", "x", "y"]),
    ]
    inits = [helper.make_tensor("idx", I64, [2], [2, 0]), helper.make_tensor("labels", S, [5], [b"u", b"v", b"w", b"x", b"y"]),
             helper.make_tensor("flat", I64, [1], [-1])]
    zip_type = helper.make_sequence_type_proto(helper.make_map_type_proto(S, helper.make_tensor_type_proto(F, [])))
    m = graph(nodes, [tin("X", 3)], [tout("label", S), helper.make_value_info("probs", zip_type)], inits=inits)
    X = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-1.0, 5.0, 0.5]], dtype=np.float32)
    model = compare(m, X)
    assert model.classes == ("u", "v", "w", "x", "y")
    # the ArgMax index and the label table fuse into one ArgMax of labels
    assert front.argmax_items(model.output("predict"))[1] == ("u", "v", "w", "x", "y")


# --------------------------------------------------------------------------- ai.onnx operators


def test_elementwise_and_shape_operators():
    c = helper.make_tensor
    inits = [
        c("w", F, [3, 4], np.linspace(-1, 1, 12).tolist()), c("b", F, [4], [0.1, -0.2, 0.3, 0.0]), c("two", F, [], [2.0]),
        c("lo", F, [], [-0.5]), c("hi", F, [], [0.75]), c("gi", I64, [2], [3, 1]), c("shape", I64, [3], [0, 2, 4]),
        c("axes", I64, [1], [1]), c("g", F, [4, 2], [0.5, -1.0, 1.5, 0.25, -0.75, 1.0, 0.0, 2.0]), c("gb", F, [2], [0.5, -0.5]),
    ]
    nodes = [
        helper.make_node("MatMul", ["X", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Sigmoid", ["a"], ["s"]),
        helper.make_node("Tanh", ["a"], ["t"]),
        helper.make_node("Mul", ["s", "two"], ["s2"]),
        helper.make_node("Sub", ["t", "s2"], ["d"]),
        helper.make_node("Div", ["d", "two"], ["d2"]),
        helper.make_node("Abs", ["d2"], ["ab"]),
        helper.make_node("Neg", ["ab"], ["ng"]),
        helper.make_node("Exp", ["ng"], ["ex"]),
        helper.make_node("Log", ["ex"], ["lg"]),
        helper.make_node("Sqrt", ["ex"], ["sq"]),
        helper.make_node("Max", ["r", "lg"], ["mx"]),
        helper.make_node("Min", ["mx", "sq", "two"], ["mn"]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["cl"]),
        helper.make_node("Gather", ["cl", "gi"], ["ga"], axis=1),
        helper.make_node("Gemm", ["mn", "g", "gb"], ["ge"], alpha=0.5, beta=2.0),
        helper.make_node("Concat", ["ge", "ga", "mn"], ["cc"], axis=1),
        helper.make_node("Reshape", ["cc", "shape"], ["rs"]),
        helper.make_node("ReduceSum", ["rs", "axes"], ["rsum"], keepdims=0),
        helper.make_node("ReduceMax", ["rs"], ["rmax"], axes=[2], keepdims=0),
        helper.make_node("Flatten", ["rs"], ["fl"], axis=1),
        helper.make_node("Softmax", ["fl"], ["sm"], axis=-1),
        helper.make_node("Unsqueeze", ["rsum", "axes"], ["us"]),
        helper.make_node("Squeeze", ["us", "axes"], ["sqz"]),
        helper.make_node("Identity", ["sqz"], ["id"]),
        helper.make_node("Greater", ["ge", "lo"], ["gt"]),
        helper.make_node("Where", ["gt", "ge", "lo"], ["wh"]),
        helper.make_node("Cast", ["gt"], ["gtf"], to=F),
        helper.make_node("Concat", ["id", "rmax", "sm", "wh", "gtf"], ["Y"], axis=1),
    ]
    m = graph(nodes, [tin("X", 3)], [tout("Y")], inits=inits)
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(40, 3)) * 2, [[0.0, 0.0, 0.0], [np.nan, 1.0, 2.0], [1e30, 0.0, -1e30]]]).astype(np.float32)
    want = run_ort(m, X)[0]
    _, (got,) = run_ir(m, X)
    finite = np.isfinite(want).all(axis=1)
    assert finite.sum() >= 40
    assert_same(got[finite], want[finite], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op,last", [("ArgMax", 0), ("ArgMax", 1), ("ArgMin", 0), ("ArgMin", 1)])
def test_argmax_scans_like_onnxruntime_through_nan(op, last):
    """A NaN in first place wins, any other NaN never does (onnxruntime's scan)."""
    node = helper.make_node(op, ["X"], ["Y"], axis=1, keepdims=0, select_last_index=last)
    m = graph([node], [tin("X", 3)], [tout("Y", I64)])
    nan, inf = np.nan, np.inf
    X = np.array([[nan, 1, 2], [1, nan, 2], [1, nan, 0], [nan, nan, 1], [-inf, nan, -inf], [2, 2, nan], [0, nan, nan], [1, 2, nan], [inf, nan, inf], [3, 3, 3]], dtype=np.float32)
    compare(m, X, rtol=0, atol=0)


def test_argmax_select_last_index_and_cast_truncation():
    nodes = [
        helper.make_node("ArgMax", ["X"], ["a"], axis=1, keepdims=0, select_last_index=1),
        helper.make_node("Cast", ["X"], ["i"], to=I64),
        helper.make_node("Cast", ["i"], ["f"], to=F),
        helper.make_node("Cast", ["a"], ["af"], to=F),
        helper.make_node("Unsqueeze", ["af", "axes"], ["au"]),
        helper.make_node("Concat", ["au", "f"], ["Y"], axis=1),
    ]
    m = graph(nodes, [tin("X", 3)], [tout("Y")], inits=[helper.make_tensor("axes", I64, [1], [1])])
    X = np.array([[1.0, 3.0, 3.0], [2.5, -2.5, 0.0], [-0.5, 0.5, -0.5], [7.9, -7.9, 7.9]], dtype=np.float32)
    compare(m, X, rtol=0, atol=0)


# --------------------------------------------------------------------------- refusals


def test_unsupported_operator_is_named_with_the_supported_list():
    m = graph([helper.make_node("TopK", ["X", "k"], ["v", "i"])], [tin("X", 3)], [tout("v"), tout("i", I64)], inits=[helper.make_tensor("k", I64, [1], [1])])
    with pytest.raises(UnsupportedModelError, match=r"TopK is not supported.*Supported: .*ai\.onnx\.ml\.TreeEnsembleClassifier"):
        compile_onnx(m)


def test_unsupported_attribute_is_named():
    node = helper.make_node("Relu", ["X"], ["Y"], bogus=3)
    with pytest.raises(UnsupportedModelError, match="attribute 'bogus' is not supported"):
        compile_onnx(graph([node], [tin("X", 2)], [tout("Y")]))


def test_reduction_over_the_batch_is_refused():
    node = helper.make_node("ReduceSum", ["X", "axes"], ["Y"], keepdims=1)
    m = graph([node], [tin("X", 2)], [tout("Y")], inits=[helper.make_tensor("axes", I64, [1], [0])])
    with pytest.raises(UnsupportedModelError, match="batch dimension"):
        compile_onnx(m)


def test_control_flow_is_refused():
    then = helper.make_graph([helper.make_node("Identity", ["X"], ["o"])], "t", [], [tout("o")])
    node = helper.make_node("If", ["c"], ["Y"], then_branch=then, else_branch=then)
    m = graph([node], [tin("X", 2)], [tout("Y")], inits=[helper.make_tensor("c", TensorProto.BOOL, [], [True])])
    with pytest.raises(UnsupportedModelError, match="If"):
        compile_onnx(m)


def test_unreadable_bytes_are_refused():
    with pytest.raises(UnsupportedModelError, match="not a readable ONNX model"):
        compile_onnx(b"\x00definitely not protobuf\xff" * 3)


# --------------------------------------------------------------------------- names and files


def test_feature_names_single_input_multiple_inputs_and_features():
    single = graph([helper.make_node("Identity", ["X"], ["Y"])], [tin("X", 3)], [tout("Y")])
    assert compile_onnx(single).feature_names == ("x0", "x1", "x2")
    assert compile_onnx(single, features=["a", "b", "c"]).feature_names == ("a", "b", "c")
    with pytest.raises(CompileError, match="names 2 columns"):
        compile_onnx(single, features=["a", "b"])
    multi = graph([helper.make_node("Concat", ["age", "pair"], ["Y"], axis=1)], [tin("age", 1), tin("pair", 2)], [tout("Y")])
    assert compile_onnx(multi).feature_names == ("age", "pair_0", "pair_1")
    renamed = rename_features(compile_onnx(single), ["p", "q", "r"])
    assert renamed.feature_names == ("p", "q", "r") and ir.features_used(renamed.output("transform")) == ["p", "q", "r"]


def test_onnx_file_compiles_to_sql(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from indb.compilers.files import load_model_file
    from indb.sqlgen.compile import compile_file, compile_sql

    X, y = zoo._classification(100, 3, 0)
    path = tmp_path / "m.onnx"
    path.write_bytes(zoo.to_onnx(LogisticRegression().fit(X.astype(np.float32), y), 3).SerializeToString())
    model, digest = load_model_file(str(path))
    assert isinstance(model, ir.Model) and model.classes == (0, 1, 2) and len(digest) == 64
    sql = compile_file(str(path), dialect="duckdb", output="proba", features=["a", "b", "c"], table="t", keep=["id"])
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id INTEGER, a DOUBLE, b DOUBLE, c DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(i, *map(float, row)) for i, row in enumerate(X[:20])])
    got = np.array([r[1:] for r in sorted(con.execute(sql).fetchall())])
    want = run_ort(zoo.to_onnx(LogisticRegression().fit(X.astype(np.float32), y), 3), X[:20].astype(np.float32))[1]
    want = np.array([[d[k] for k in (0, 1, 2)] for d in want])
    assert_same(got, want, rtol=1e-6, atol=1e-7)
    assert compile_sql(model, "sqlite", "predict")


def test_compiled_graph_survives_json():
    m = compile_onnx(zoo.to_onnx(__import__("sklearn.tree", fromlist=["x"]).DecisionTreeClassifier(max_depth=3).fit(*zoo._classification(80, 3, 2)), 3))
    assert ir.model_from_json(ir.model_to_json(m)) == m


def test_every_handler_is_registered_once():
    ops = front.supported_ops()
    assert len(ops) == len(set(ops))
    for name in ("ai.onnx.MatMul", "ai.onnx.Gemm", "ai.onnx.ml.TreeEnsemble", "ai.onnx.ml.ZipMap", "ai.onnx.ml.CategoryMapper", "ai.onnx.Gather"):
        assert name in ops
    with pytest.raises(ValueError, match="already has a handler"):
        front.register("", "Relu")(lambda node, ins, g: ins)


@pytest.mark.slow
def test_bench_mlp_factory():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 20))
    m = zoo.bench_mlp(X, X @ rng.normal(size=20))
    assert compile_onnx(m).output_kinds == ("predict",)
    compare(m, X[:100].astype(np.float32), rtol=1e-5, atol=1e-5)


def test_more_elementwise_reductions_and_logic():
    c = helper.make_tensor
    inits = [c("half", F, [], [0.5]), c("three", F, [3], [3.0, -1.0, 0.25]), c("axes", I64, [1], [1]), c("perm_shape", I64, [3], [0, 10, 3])]
    nodes = [
        helper.make_node("Pow", ["X", "half"], ["pw"]),
        helper.make_node("LeakyRelu", ["X"], ["lr"], alpha=0.1),
        helper.make_node("Softplus", ["X"], ["sp"]),
        helper.make_node("Floor", ["X"], ["fl"]),
        helper.make_node("Ceil", ["X"], ["ce"]),
        helper.make_node("Sign", ["X"], ["sg"]),
        helper.make_node("Reciprocal", ["three"], ["rc0"]),
        helper.make_node("Mul", ["X", "rc0"], ["rc"]),
        helper.make_node("LogSoftmax", ["X"], ["ls"], axis=1),
        helper.make_node("Sum", ["X", "lr", "three"], ["sm"]),
        helper.make_node("Mean", ["X", "sp"], ["mn"]),
        helper.make_node("Concat", ["pw", "lr", "sp", "fl", "ce", "sg", "rc", "ls", "sm", "mn"], ["all"], axis=1),
        helper.make_node("Reshape", ["all", "perm_shape"], ["r3"]),
        helper.make_node("Transpose", ["r3"], ["tr"], perm=[0, 2, 1]),
        helper.make_node("ReduceMin", ["tr"], ["rmin"], axes=[2], keepdims=0),
        helper.make_node("ReduceMean", ["tr"], ["rmean"], axes=[2], keepdims=0),
        helper.make_node("ReduceSumSquare", ["tr"], ["rss"], axes=[1], keepdims=0),
        helper.make_node("ArgMin", ["X"], ["amin"], axis=1, keepdims=1),
        helper.make_node("Cast", ["amin"], ["aminf"], to=F),
        helper.make_node("Less", ["X", "half"], ["lt"]),
        helper.make_node("GreaterOrEqual", ["X", "three"], ["ge"]),
        helper.make_node("LessOrEqual", ["X", "half"], ["le"]),
        helper.make_node("Equal", ["fl", "ce"], ["eq"]),
        helper.make_node("And", ["lt", "le"], ["a"]),
        helper.make_node("Or", ["ge", "eq"], ["o"]),
        helper.make_node("Xor", ["a", "o"], ["xo"]),
        helper.make_node("Not", ["xo"], ["nt"]),
        helper.make_node("Cast", ["nt"], ["ntf"], to=F),
        helper.make_node("Cast", ["eq"], ["eqf"], to=F),
        helper.make_node("Concat", ["rmin", "rmean", "rss", "aminf", "ntf", "eqf"], ["Y"], axis=1),
    ]
    m = graph(nodes, [tin("X", 3)], [tout("Y")], inits=inits)
    rng = np.random.default_rng(2)
    X = np.vstack([np.abs(rng.normal(size=(30, 3))) * 3, [[0.0, 1.0, 2.0], [2.0, 2.0, 2.0], [0.5, 0.25, 3.0], [4.0, 0.0, 0.5]]]).astype(np.float32)
    compare(m, X, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
def test_normalizer_zero_and_missing_rows(norm):
    m = graph([helper.make_node("Normalizer", ["X"], ["Y"], domain="ai.onnx.ml", norm=norm)], [tin("X", 3)], [tout("Y")])
    X = np.array([[0.0, 0.0, 0.0], [-0.0, 0.0, -0.0], [np.nan, 1.0, 2.0], [1e-30, -2e-30, 0.0], [3.0, -4.0, 0.0], [-1.0, -2.0, -3.0], [1e-45, 0.0, 0.0]], dtype=np.float32)
    compare(m, X, rtol=1e-6, atol=0)
