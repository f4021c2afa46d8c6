"""Zoo cases: ONNX graphs, compiled with ``compile_onnx`` and checked against onnxruntime.

The graphs come from skl2onnx (scikit-learn models and pipelines), onnxmltools and
skl2onnx's registered converters (XGBoost, LightGBM), and from graphs rewritten by hand
to use every tree split mode (``BRANCH_LT/GTE/GT/EQ/NEQ``, ``BRANCH_MEMBER`` of
ai.onnx.ml 5, missing-value tracks) and aggregate function.

Rows: ordinary rows, zeros, each feature in turn at NaN (sent to the engines as NaN
and as NULL), +1e30 and -1e30 (float32-safe extremes: onnxruntime's float32 inputs
cannot hold 1e300), and for tree graphs, for every split, a row that reaches it with
the split feature on the float32 threshold, one float32 ulp either side, on the
float64 bound the compiler folds the threshold into and the next double above it, and
NaN (the node's missing-value direction).

The reference (``onnx_reference``) is onnxruntime fed ``float32(X)``, exactly what a
user's float64 data becomes at a float32 graph input. A row onnxruntime fails on (it
refuses NaN in a Binarizer), or whose float outputs it computes as NaN or overflows to
+-inf in float32 (the IR computes in float64, where 1e30**2 is finite), has no answer
to reproduce; there the expectation is indb's documented rule (the IR evaluator).
Tolerance: 1e-6 relative (float32 arithmetic), with an absolute floor per case for
values near 0 (float32 resolution of the terms that cancel there).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tests.zoo import ZooCase

SEED = 20240917
F32 = np.float32
EXTREME = 1e30


# --------------------------------------------------------------------------- the reference


def _session(proto: Any) -> Any:
    import onnxruntime as ort  # noqa: PLC0415

    ort.set_default_logger_severity(3)
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


_NP = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(string)": object}


def _feeds(sess: Any, X: Any) -> dict[str, np.ndarray] | None:
    """onnxruntime inputs for ``X`` (None: a row it cannot be given, NULL text)."""
    inputs = sess.get_inputs()
    if len(inputs) == 1 and not hasattr(X, "columns"):
        i = inputs[0]
        return {i.name: np.asarray(X, dtype=np.float64).astype(_NP[i.type]).reshape(len(X), *([-1] if len(i.shape) == 2 else []))}
    feeds = {}
    for i in inputs:
        col = X[i.name].to_numpy()
        if _NP[i.type] is object:
            if any(v is None or (isinstance(v, float) and v != v) for v in col):
                return None
            arr = np.asarray([str(v) for v in col], dtype=object)
        else:
            arr = np.asarray(col, dtype=np.float64).astype(_NP[i.type])
        feeds[i.name] = arr.reshape(len(X), 1) if len(i.shape) == 2 else arr
    return feeds


def _kinds(sess: Any) -> dict[str, int]:
    """Output kind -> index of the onnxruntime output (the rule ``compile_onnx`` documents)."""
    outs = sess.get_outputs()
    labels = [k for k, o in enumerate(outs) if o.type in ("tensor(int64)", "tensor(string)", "tensor(int32)")]
    others = [k for k, o in enumerate(outs) if k not in labels]
    if labels:
        kinds = {"predict": labels[0]}
        if others:  # class probabilities, or scores such as k-means distances
            kinds["proba"] = kinds["transform"] = others[0]
        return kinds
    if len(others) == 1:
        return {"predict": others[0], "transform": others[0]}
    raise AssertionError("graph outputs not understood")


def _dense(out: Any, classes: Sequence | None) -> np.ndarray:
    if isinstance(out, list):  # ZipMap: one dict per row
        keys = list(classes) if classes is not None else list(out[0])
        return np.array([[d[k] for k in keys] for d in out], dtype=np.float64)
    a = np.asarray(out)
    if a.dtype.kind in "US":
        a = a.astype(object)
    return a.reshape(len(a), -1)


def _run(sess: Any, X: Any, classes: Sequence | None) -> list[np.ndarray] | None:
    feeds = _feeds(sess, X)
    if feeds is None:
        return None
    try:
        outs = sess.run(None, feeds)
    except Exception:  # noqa: BLE001 - onnxruntime's own error types
        return None
    dense = [_dense(o, classes) for o in outs]
    if any(d.dtype.kind == "f" and not np.isfinite(d).all() for d in dense):
        return None
    return dense


def _row(X: Any, i: int) -> Any:
    return X.iloc[i : i + 1] if hasattr(X, "iloc") else X[i : i + 1]


def onnx_reference(proto: Any, X: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's answer for ``kind`` (n, k), and the rows it has none for."""
    from indb.compilers.onnx import compile_onnx  # noqa: PLC0415

    sess = _session(proto)
    classes = compile_onnx(proto).classes
    index = _kinds(sess)[kind]
    n = len(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = _run(sess, X, classes)
        if whole is not None:
            return whole[index], np.zeros(n, dtype=bool)
        rows = [_run(sess, _row(X, i), classes) for i in range(n)]
    width = next(r[index].shape[1] for r in rows if r is not None)
    out = np.empty((n, width), dtype=object)
    rejected = np.zeros(n, dtype=bool)
    for i, r in enumerate(rows):
        if r is None:
            rejected[i] = True
        else:
            out[i] = r[index][0]
    return out, rejected


def onnx_case(id: str, make: Any, outputs: tuple[str, ...], atol: float = 1e-7, tags: Sequence[str] = ()) -> ZooCase:
    from indb.compilers.onnx import compile_onnx  # noqa: PLC0415

    return ZooCase(id, make, outputs, rtol=1e-6, atol=atol, tags=frozenset(("onnx", *tags)), compile=compile_onnx, reference=onnx_reference)


# --------------------------------------------------------------------------- rows


def edge_rows(base: np.ndarray, extreme: float = EXTREME) -> np.ndarray:
    """Zeros, then per feature: ``base`` with that feature at NaN, +extreme, -extreme."""
    rows = [np.zeros_like(base)]
    for j in range(base.size):
        for v in (np.nan, extreme, -extreme):
            r = base.copy()
            r[j] = v
            rows.append(r)
    return np.vstack(rows)


def float32_probes(t: float) -> list[float]:
    """The float32 threshold, its float32 neighbours, the float64 bounds either comparison
    folds to, and NaN (the node's missing-value direction)."""
    from indb.compilers.onnx import float32_le_bound, float32_lt_bound  # noqa: PLC0415

    f = F32(t)
    out = [float(f), float(np.nextafter(f, F32(-np.inf))), float(np.nextafter(f, F32(np.inf))), math.nan]
    for b in (float32_le_bound(float(f)), float32_lt_bound(float(f))):
        if np.isfinite(b):
            out.extend((b, float(np.nextafter(b, np.inf))))
    return out


def probe_rows(X: np.ndarray, splits: Sequence[tuple[int, int, float]], probes: Any = float32_probes) -> np.ndarray:
    """For each (sample, feature, threshold): the sample with the feature at each probe value."""
    rows = []
    for sample, feature, t in splits:
        for v in probes(t):
            r = np.array(X[sample], dtype=np.float64)
            r[feature] = v
            rows.append(r)
    return np.vstack(rows) if rows else np.empty((0, X.shape[1]))


def sklearn_splits(est: Any, X: np.ndarray, limit: int = 400) -> list[tuple[int, int, float]]:
    """(first sample reaching it, feature, threshold) for the split nodes of a scikit-learn tree model."""
    trees = [est.tree_] if hasattr(est, "tree_") else [e.tree_ for e in np.asarray(est.estimators_, dtype=object).ravel()]
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    out = []
    for tree in trees:
        path = tree.decision_path(X32).tocsc()
        for node in np.flatnonzero(tree.children_left >= 0):
            rows = path[:, node].nonzero()[0]
            if len(rows):
                out.append((int(rows[0]), int(tree.feature[node]), float(tree.threshold[node])))
    return out[:limit]


def _rng(k: int) -> np.random.Generator:
    return np.random.default_rng(SEED + k)


def _classification(n: int, d: int, k: int, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(k)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 5.0, size=d) + rng.normal(size=d)
    w = rng.normal(size=(d, classes))
    y = np.argmax(X @ w + rng.normal(scale=0.5, size=(n, classes)), axis=1)
    return X, y


def _regression(n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(k)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 5.0, size=d)
    y = X @ rng.normal(size=d) + np.sin(X[:, 0]) * 3 + rng.normal(scale=0.3, size=n)
    return X, y


def to_onnx(est: Any, d: int, zipmap: bool = True, ml_opset: int = 3) -> Any:
    from skl2onnx import to_onnx as convert  # noqa: PLC0415

    options = None if zipmap else {id(est): {"zipmap": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert(est, np.zeros((1, d), dtype=np.float32), target_opset={"": 17, "ai.onnx.ml": ml_opset}, options=options)


def _rows_for(X: np.ndarray, n_test: int = 60, splits: Sequence = ()) -> np.ndarray:
    return np.vstack([X[:n_test], edge_rows(X[0].copy()), probe_rows(X, splits)])


# --------------------------------------------------------------------------- scikit-learn through skl2onnx


def _sk_classifier(factory: Any, classes: int = 3, labels: Sequence | None = None, trees: bool = False, zipmap: bool = True, d: int = 6) -> Any:
    def make():
        X, y = _classification(300, d, 1, classes)
        if labels is not None:
            y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else np.int64)[y]
        est = factory().fit(X.astype(np.float32), y)
        return to_onnx(est, d, zipmap), _rows_for(X, splits=sklearn_splits(est, X) if trees else ())

    return make


def _sk_regressor(factory: Any, trees: bool = False, d: int = 5) -> Any:
    def make():
        X, y = _regression(300, d, 2)
        est = factory().fit(X.astype(np.float32), y)
        return to_onnx(est, d), _rows_for(X, splits=sklearn_splits(est, X) if trees else ())

    return make


def _sk_transformer(factory: Any, d: int = 4) -> Any:
    def make():
        X, _ = _regression(200, d, 3)
        est = factory().fit(X.astype(np.float32))
        small = np.array([[0.0] * d, [-0.0] + [0.0] * (d - 1), [1e-30] + [-2e-30] * (d - 1), [1e-45] + [0.0] * (d - 1), [3.0, -4.0] + [0.0] * (d - 2)])
        return to_onnx(est, d), np.vstack([_rows_for(X, 40), small])

    return make


def _linear_models() -> list[ZooCase]:
    from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier, SGDClassifier  # noqa: PLC0415
    from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.svm import LinearSVC  # noqa: PLC0415

    both = ("predict", "proba")
    return [
        onnx_case("onnx_logistic_binary", _sk_classifier(LogisticRegression, classes=2), both),
        onnx_case("onnx_logistic_multi_strings", _sk_classifier(LogisticRegression, labels=["setosa", "versi color", "Virginica"]), both),
        onnx_case("onnx_logistic_multi_nozipmap", _sk_classifier(LogisticRegression, zipmap=False), both),
        onnx_case("onnx_ridge_classifier", _sk_classifier(RidgeClassifier), both, atol=1e-6),
        onnx_case("onnx_linear_svc_binary", _sk_classifier(lambda: LinearSVC(C=0.5), classes=2), both, atol=1e-6),
        onnx_case("onnx_sgd_matmul_argmax", _sk_classifier(lambda: SGDClassifier(random_state=0)), both, atol=1e-4),
        onnx_case("onnx_linear_regression", _sk_regressor(LinearRegression), ("predict",), atol=1e-5),
        onnx_case("onnx_scalers_logistic", _sk_classifier(lambda: make_pipeline(StandardScaler(), MinMaxScaler(), LogisticRegression())), both),
        onnx_case("onnx_normalizer_l2", _sk_transformer(lambda: Normalizer()), ("transform",)),
        onnx_case("onnx_normalizer_l1", _sk_transformer(lambda: Normalizer(norm="l1")), ("transform",)),
        onnx_case("onnx_normalizer_max", _sk_transformer(lambda: Normalizer(norm="max")), ("transform",)),
    ]


def _more_sklearn() -> list[ZooCase]:
    """Converters whose graphs use Shape/ConstantOfShape, ReduceProd, ReduceLogSumExp, Gemm with a
    computed bias, and comparisons with bin edges."""
    from sklearn.cluster import KMeans  # noqa: PLC0415
    from sklearn.decomposition import PCA  # noqa: PLC0415
    from sklearn.linear_model import Lasso, Ridge  # noqa: PLC0415
    from sklearn.naive_bayes import GaussianNB  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import KBinsDiscretizer, PolynomialFeatures  # noqa: PLC0415

    def kbins():
        X, y = _regression(300, 4, 9)
        est = make_pipeline(KBinsDiscretizer(5, encode="onehot-dense", quantile_method="averaged_inverted_cdf"), Ridge()).fit(X.astype(np.float32), y)
        edges = [(0, j, float(e)) for j, col in enumerate(est[0].bin_edges_) for e in col[1:-1]]
        return to_onnx(est, 4), _rows_for(X, splits=edges)

    def kmeans():
        X, _ = _regression(300, 4, 10)
        est = KMeans(4, n_init=3, random_state=0).fit(X.astype(np.float32))
        return to_onnx(est, 4), _rows_for(X)

    return [
        onnx_case("onnx_polynomial_ridge", _sk_regressor(lambda: make_pipeline(PolynomialFeatures(2), Ridge()), d=3), ("predict",), atol=1e-4),
        onnx_case("onnx_kbins_onehot_ridge", kbins, ("predict",), atol=1e-5),
        onnx_case("onnx_pca_lasso", _sk_regressor(lambda: make_pipeline(PCA(3), Lasso(alpha=0.01)), d=5), ("predict",), atol=1e-5),
        onnx_case("onnx_kmeans", kmeans, ("predict", "transform"), atol=1e-5),
        # joint log-likelihoods of tens in float32 carry ~1e-6 of them into the probabilities
        onnx_case("onnx_gaussian_nb", _sk_classifier(GaussianNB, d=4), ("predict", "proba"), atol=1e-5),
    ]


def _tree_models() -> list[ZooCase]:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor  # noqa: PLC0415
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: PLC0415

    both = ("predict", "proba")
    return [
        onnx_case("onnx_decision_tree_binary_labels_3_7", _sk_classifier(lambda: DecisionTreeClassifier(max_depth=5, random_state=0), classes=2, labels=[3, 7], trees=True), both),
        onnx_case("onnx_random_forest_strings", _sk_classifier(lambda: RandomForestClassifier(8, max_depth=4, random_state=0), labels=["a", "b", "c"], trees=True), both),
        onnx_case("onnx_gradient_boosting_binary", _sk_classifier(lambda: GradientBoostingClassifier(n_estimators=15, max_depth=2, random_state=0), classes=2, trees=True), both),
        onnx_case("onnx_gradient_boosting_multi", _sk_classifier(lambda: GradientBoostingClassifier(n_estimators=6, max_depth=2, random_state=0), trees=True), both),
        onnx_case("onnx_decision_tree_regressor", _sk_regressor(lambda: DecisionTreeRegressor(max_depth=6, random_state=0), trees=True), ("predict",), atol=1e-6),
        onnx_case("onnx_random_forest_regressor", _sk_regressor(lambda: RandomForestRegressor(6, max_depth=4, random_state=0), trees=True), ("predict",), atol=1e-6),
        onnx_case("onnx_gradient_boosting_regressor", _sk_regressor(lambda: GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0), trees=True), ("predict",), atol=1e-5),
    ]


def _neural_models() -> list[ZooCase]:
    from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    def clf(hidden: tuple[int, ...], classes: int):
        return lambda: make_pipeline(StandardScaler(), MLPClassifier(hidden, max_iter=400, random_state=0))

    return [
        # a softmax over three networks: megabytes of SQL without shared subexpressions (the
        # PL/Python engine's job); checked on the IR only (tests/compilers/test_onnx.py)
        onnx_case("onnx_mlp_classifier_relu", _sk_classifier(clf((4, 3), 3)), ("predict", "proba"), atol=1e-6, tags=("large",)),
        onnx_case("onnx_mlp_classifier_binary", _sk_classifier(clf((8,), 2), classes=2), ("predict", "proba"), atol=1e-6),
        onnx_case(
            "onnx_mlp_regressor_tanh",
            _sk_regressor(lambda: make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(12,), activation="tanh", max_iter=500, random_state=0))),
            ("predict",),
            atol=1e-5,
        ),
    ]


def _column_transformer() -> Any:
    """Named numeric and text inputs: Imputer, Scaler, OneHotEncoder, Concat, LinearClassifier."""

    def make():
        from sklearn.compose import ColumnTransformer  # noqa: PLC0415
        from sklearn.impute import SimpleImputer  # noqa: PLC0415
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
        from sklearn.pipeline import make_pipeline  # noqa: PLC0415
        from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: PLC0415
        from skl2onnx import convert_sklearn  # noqa: PLC0415
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType  # noqa: PLC0415

        rng = _rng(5)
        n = 300
        df = pd.DataFrame(
            {
                "age": rng.normal(40, 12, n).astype(np.float32),
                "income": rng.lognormal(10, 1, n).astype(np.float32),
                "region": rng.choice(["north", "south", "east", "west"], n).astype(object),
                "plan": rng.choice(["basic", "pro"], n).astype(object),
            }
        )
        df.loc[df.index % 9 == 0, "income"] = np.nan
        y = (df["age"] > 40).astype(int) ^ (df["region"] == "east").astype(int)
        ct = ColumnTransformer(
            [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age", "income"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["region", "plan"])]
        )
        est = make_pipeline(ct, LogisticRegression()).fit(df, y)
        types = [("age", FloatTensorType([None, 1])), ("income", FloatTensorType([None, 1])), ("region", StringTensorType([None, 1])), ("plan", StringTensorType([None, 1]))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto = convert_sklearn(est, initial_types=types, target_opset={"": 17, "ai.onnx.ml": 3})
        test = df.iloc[:60].copy()
        edge = pd.DataFrame(
            {
                "age": [0.0, np.nan, EXTREME, -EXTREME, 30.0, 30.0, 55.0],
                "income": [0.0, 5e4, np.nan, 1e5, 2e4, 2e4, EXTREME],
                "region": ["north", "south", "east", "zz_unseen", None, "west", "east"],
                "plan": ["pro", "basic", "pro", "pro", "basic", None, "unknown"],
            }
        )
        X = pd.concat([test, edge], ignore_index=True)
        X["age"] = X["age"].astype(np.float64)
        X["income"] = X["income"].astype(np.float64)
        return proto, X

    return make


# --------------------------------------------------------------------------- every split mode, by hand


def rewrite_modes(proto: Any, seed: int = 0, member: bool = False) -> Any:
    """A tree graph with its ``BRANCH_LEQ`` nodes rewritten to the other modes.

    ``x <= t`` becomes the equivalent ``x > t`` with the children swapped, ``x < t'`` or
    ``x >= t'`` (t' the next float32 above t, children swapped for ``>=``); some nodes
    become ``BRANCH_EQ``/``BRANCH_NEQ`` (a different model, still exercising them), and
    missing-value tracks are set at random.
    """
    import onnx  # noqa: PLC0415
    from onnx import helper  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    node = next(n for n in m.graph.node if n.op_type.startswith("TreeEnsemble"))
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    modes = [x.decode() if isinstance(x, bytes) else x for x in attrs["nodes_modes"]]
    values = [float(v) for v in attrs["nodes_values"]]
    trues, falses = list(attrs["nodes_truenodeids"]), list(attrs["nodes_falsenodeids"])
    missing = [int(v) for v in attrs.get("nodes_missing_value_tracks_true", [0] * len(modes))]
    for k, mode in enumerate(modes):
        if mode != "BRANCH_LEQ":
            continue
        r = rng.integers(0, 6)
        t = F32(values[k])
        up = float(np.nextafter(t, F32(np.inf)))
        if r == 1:
            modes[k], trues[k], falses[k] = "BRANCH_GT", falses[k], trues[k]
        elif r == 2:
            modes[k], values[k] = "BRANCH_LT", up
        elif r == 3:
            modes[k], values[k], trues[k], falses[k] = "BRANCH_GTE", up, falses[k], trues[k]
        elif r == 4:
            modes[k] = "BRANCH_EQ" if rng.integers(0, 2) else "BRANCH_NEQ"
        missing[k] = int(rng.integers(0, 2))
    new = dict(attrs, nodes_modes=modes, nodes_values=values, nodes_truenodeids=trues, nodes_falsenodeids=falses, nodes_missing_value_tracks_true=missing)
    if member:
        return _as_tree_ensemble5(m, node, new)
    rebuilt = helper.make_node(node.op_type, list(node.input), list(node.output), domain=node.domain, name=node.name, **new)
    node.CopyFrom(rebuilt)
    return m


def member_set(t: float) -> tuple[float, float]:
    """The BRANCH_MEMBER set that replaces a split at ``t`` in the hand-made TreeEnsemble graphs."""
    c = float(abs(np.round(t)) % 10)
    return c, c + 1.0


def _as_tree_ensemble5(m: Any, node: Any, attrs: dict) -> Any:
    """A TreeEnsembleRegressor's attributes as an ai.onnx.ml 5 TreeEnsemble, some splits as BRANCH_MEMBER."""
    from onnx import TensorProto, helper  # noqa: PLC0415

    codes = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5}
    tids, nids = list(attrs["nodes_treeids"]), list(attrs["nodes_nodeids"])
    key = {(t, i): k for k, (t, i) in enumerate(zip(tids, nids))}
    internal = [k for k, mode in enumerate(attrs["nodes_modes"]) if mode != "LEAF"]
    pos = {k: j for j, k in enumerate(internal)}
    leaves = [k for k, mode in enumerate(attrs["nodes_modes"]) if mode == "LEAF"]
    lpos = {k: j for j, k in enumerate(leaves)}
    weight = {(t, i): w for t, i, w in zip(attrs["target_treeids"], attrs["target_nodeids"], attrs["target_weights"])}
    modes, splits, members = [], [], []
    tchild, tleaf, fchild, fleaf = [], [], [], []
    for j, k in enumerate(internal):
        mode = codes[attrs["nodes_modes"][k]]
        t = float(attrs["nodes_values"][k])
        if j % 5 == 4:  # membership in a set of small integers (what onnxruntime compares exactly)
            mode = 6
            members.extend([*member_set(t), float("nan")])
        modes.append(mode)
        splits.append(t)
        for child, out_c, out_l in ((attrs["nodes_truenodeids"][k], tchild, tleaf), (attrs["nodes_falsenodeids"][k], fchild, fleaf)):
            c = key[tids[k], child]
            if c in lpos:
                out_c.append(lpos[c])
                out_l.append(1)
            else:
                out_c.append(pos[c])
                out_l.append(0)
    roots = [pos[key[t, 0]] for t in sorted(set(tids))]
    kw = dict(
        n_targets=1,
        aggregate_function=0,  # AVERAGE, as the forest it came from
        post_transform=0,
        tree_roots=roots,
        nodes_featureids=[int(attrs["nodes_featureids"][k]) for k in internal],
        nodes_modes=helper.make_tensor("modes", TensorProto.UINT8, [len(modes)], modes),
        nodes_splits=helper.make_tensor("splits", TensorProto.FLOAT, [len(splits)], splits),
        nodes_truenodeids=tchild,
        nodes_trueleafs=tleaf,
        nodes_falsenodeids=fchild,
        nodes_falseleafs=fleaf,
        nodes_missing_value_tracks_true=[int(attrs["nodes_missing_value_tracks_true"][k]) for k in internal],
        leaf_targetids=[0] * len(leaves),
        leaf_weights=helper.make_tensor("weights", TensorProto.FLOAT, [len(leaves)], [float(weight[tids[k], nids[k]]) for k in leaves]),
    )
    if members:
        kw["membership_values"] = helper.make_tensor("members", TensorProto.FLOAT, [len(members)], members)
    new = helper.make_node("TreeEnsemble", list(node.input), list(node.output), domain="ai.onnx.ml", **kw)
    node.CopyFrom(new)
    for o in m.opset_import:
        if o.domain == "ai.onnx.ml":
            o.version = 5
        if o.domain in ("", "ai.onnx"):
            o.version = max(o.version, 21)
    m.ir_version = max(m.ir_version, 10)
    return m


def _modes_regressor(member: bool, aggregate: str | None = None) -> Any:
    def make():
        from onnx import helper  # noqa: PLC0415
        from sklearn.ensemble import RandomForestRegressor  # noqa: PLC0415

        X, y = _regression(300, 4, 7)
        est = RandomForestRegressor(5, max_depth=4, random_state=0).fit(X.astype(np.float32), y)
        proto = rewrite_modes(to_onnx(est, 4), seed=3, member=member)
        if aggregate is not None:
            node = next(n for n in proto.graph.node if n.op_type == "TreeEnsembleRegressor")
            for a in node.attribute:
                if a.name == "aggregate_function":
                    a.CopyFrom(helper.make_attribute("aggregate_function", aggregate))
        splits = sklearn_splits(est, X)
        extra = (lambda t: [v for m in member_set(t) for v in float32_probes(m)]) if member else (lambda t: [])
        return proto, np.vstack([X[:40], edge_rows(X[0].copy()), probe_rows(X, splits, lambda t: float32_probes(t) + extra(t))])

    return make


def _modes_classifier() -> Any:
    def make():
        from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415

        X, y = _classification(300, 5, 8)
        est = RandomForestClassifier(5, max_depth=4, random_state=0).fit(X.astype(np.float32), np.asarray(["x", "y", "z"], dtype=object)[y])
        return rewrite_modes(to_onnx(est, 5), seed=4), _rows_for(X, 40, sklearn_splits(est, X))

    return make


# --------------------------------------------------------------------------- XGBoost and LightGBM graphs


def _booster_graph(kind: str, converter: str) -> Any:
    def make():
        from tests.zoo.boosters import booster_rows, fit_booster  # noqa: PLC0415

        est, X = fit_booster(kind, float32_input=True)
        d = X.shape[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if converter == "onnxmltools":
                import onnxmltools  # noqa: PLC0415
                from onnxmltools.convert.common.data_types import FloatTensorType  # noqa: PLC0415

                conv = onnxmltools.convert_xgboost if kind.startswith("xgb") else onnxmltools.convert_lightgbm
                proto = conv(est, initial_types=[("input", FloatTensorType([None, d]))], target_opset=15)
            else:
                proto = _skl2onnx_registered(est, d)
        return proto, booster_rows(est, X, float32_probes)

    return make


def _skl2onnx_registered(est: Any, d: int) -> Any:
    """skl2onnx with onnxmltools' converters registered for the booster classes."""
    import lightgbm  # noqa: PLC0415
    import xgboost  # noqa: PLC0415
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm  # noqa: PLC0415
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost  # noqa: PLC0415
    from skl2onnx import to_onnx as convert, update_registered_converter  # noqa: PLC0415
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes, calculate_linear_regressor_output_shapes  # noqa: PLC0415

    for cls, conv, shape, alias in (
        (xgboost.XGBClassifier, convert_xgboost, calculate_linear_classifier_output_shapes, "XGBoostXGBClassifier"),
        (xgboost.XGBRegressor, convert_xgboost, calculate_linear_regressor_output_shapes, "XGBoostXGBRegressor"),
        (lightgbm.LGBMClassifier, convert_lightgbm, calculate_linear_classifier_output_shapes, "LightGbmLGBMClassifier"),
        (lightgbm.LGBMRegressor, convert_lightgbm, calculate_linear_regressor_output_shapes, "LightGbmLGBMRegressor"),
    ):
        opts = {"nocl": [True, False], "zipmap": [True, False, "columns"]} if "Classifier" in alias else None
        update_registered_converter(cls, alias, shape, conv, options=opts)
    return convert(est, np.zeros((1, d), dtype=np.float32), target_opset={"": 15, "ai.onnx.ml": 3})


def _boosters() -> list[ZooCase]:
    both = ("predict", "proba")
    out = []
    for kind, outputs, atol in (("xgb_binary", both, 1e-7), ("xgb_multi", both, 1e-7), ("xgb_regression", ("predict",), 1e-6),
                                ("lgb_binary", both, 1e-7), ("lgb_multi", both, 1e-7), ("lgb_regression", ("predict",), 1e-6)):
        out.append(onnx_case(f"onnx_onnxmltools_{kind}", _booster_graph(kind, "onnxmltools"), outputs, atol))
    out.append(onnx_case("onnx_skl2onnx_xgb_binary", _booster_graph("xgb_binary", "skl2onnx"), both))
    out.append(onnx_case("onnx_skl2onnx_lgb_multi", _booster_graph("lgb_multi", "skl2onnx"), both))
    return out


def _cases() -> list[ZooCase]:
    try:
        import onnxruntime  # noqa: F401, PLC0415
        import skl2onnx  # noqa: F401, PLC0415
    except ImportError:
        return []
    cases = _linear_models() + _more_sklearn() + _tree_models() + _neural_models()
    cases.append(onnx_case("onnx_column_transformer_text_inputs", _column_transformer(), ("predict", "proba"), tags=("text",)))
    cases.append(onnx_case("onnx_tree_all_modes_regressor", _modes_regressor(member=False), ("predict",), atol=1e-6))
    cases.append(onnx_case("onnx_tree_ensemble5_member_average", _modes_regressor(member=True), ("predict",), atol=1e-6))
    cases.append(onnx_case("onnx_tree_min_aggregate", _modes_regressor(member=False, aggregate="MIN"), ("predict",), atol=1e-6))
    cases.append(onnx_case("onnx_tree_max_aggregate", _modes_regressor(member=False, aggregate="MAX"), ("predict",), atol=1e-6))
    cases.append(onnx_case("onnx_tree_all_modes_classifier", _modes_classifier(), ("predict", "proba")))
    try:
        import lightgbm  # noqa: F401, PLC0415
        import onnxmltools  # noqa: F401, PLC0415
        import xgboost  # noqa: F401, PLC0415
    except ImportError:
        return cases
    return cases + _boosters()


CASES = _cases()


# --------------------------------------------------------------------------- benchmark factories


def bench_mlp(X: np.ndarray, y: np.ndarray) -> Any:
    """An ONNX graph of a scikit-learn MLP with two hidden layers of 64 units (for ``bench/``).

    A regressor for a continuous ``y``, a classifier when ``y`` has at most 10 values;
    the graph takes ``float32[N, F]`` and compiles with ``compile_onnx`` (or use the
    returned graph's producer model, ``bench_mlp_estimator``, through ``compile_model``).
    """
    est = bench_mlp_estimator(X, y)
    return to_onnx(est, X.shape[1])


def bench_mlp_estimator(X: np.ndarray, y: np.ndarray) -> Any:
    """The fitted scikit-learn MLP (2 x 64 hidden units, relu) behind :func:`bench_mlp`."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: PLC0415

    classify = len(np.unique(y)) <= 10
    cls = MLPClassifier if classify else MLPRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(hidden_layer_sizes=(64, 64), max_iter=50, random_state=0).fit(np.asarray(X, dtype=np.float32), y)
