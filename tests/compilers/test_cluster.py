"""k-means: model -> IR structure, IR parity with scikit-learn, the tie rule, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import row_norms

from indb import ir
from indb.compilers import compile_model
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import check_docstring_examples, check_parity, check_zoo_case
from tests.zoo import cluster as zoo
from tests.zoo.linear import _data, _with_edges
from tests.zoo.preprocessing import _fit

x0, x1 = ir.Feature("x0"), ir.Feature("x1")



def _blobs(n=400, d=22, k=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 5
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d)


# ------------------------------------------------------------------ structure


def test_predict_is_first_argmin_of_sklearns_distance_formula():
    est = _fit(KMeans(n_clusters=2, n_init=1, random_state=0), np.array([[0.0, 0.0], [0.5, 0.0], [9.0, 9.0], [9.5, 9.0]]))
    m = compile_model(est)
    norms = row_norms(est.cluster_centers_, squared=True)
    items = []
    for c, cc in zip(est.cluster_centers_, norms):
        dot = ir.add(ir.mul(x0, ir.const(float(c[0]))), ir.mul(x1, ir.const(float(c[1]))))
        items.append(ir.func("neg", ir.add(ir.const(float(cc)), ir.mul(ir.const(-2.0), dot))))
    assert m.output("predict") == ir.ArgMax(tuple(items), (0.0, 1.0))
    assert m.output_kinds == ("predict", "transform") and m.classes is None


def test_transform_is_euclidean_distances_in_sklearns_order():
    est = _fit(KMeans(n_clusters=2, n_init=1, random_state=0), np.array([[0.0, 0.0], [0.5, 0.0], [9.0, 9.0], [9.5, 9.0]]))
    t0 = compile_model(est).output("transform").items[0]
    assert t0.name == "sqrt" and t0.args[0].name == "max"
    total = t0.args[0].args[0]
    # (-2 x.c + ||x||^2) + ||c||^2, with the row norm as a sum of its own
    assert isinstance(total, ir.Sum) and len(total.terms) == 3
    assert total.terms[0].op == "*" and isinstance(total.terms[1], ir.Sum) and isinstance(total.terms[2], ir.Const)


def test_each_scaled_dot_product_is_shared_by_predict_and_transform():
    est = _fit(KMeans(n_clusters=3, n_init=1, random_state=0), _blobs(d=4, k=3))
    m = compile_model(est)
    scaled_p = [item.args[0].terms[1] for item in m.output("predict").items]
    scaled_t = [item.args[0].args[0].terms[0] for item in m.output("transform").items]
    assert all(a is b for a, b in zip(scaled_p, scaled_t))


# ------------------------------------------------------------------ the tie rule


def test_exact_ties_go_to_the_first_centre():
    est = _fit(KMeans(n_clusters=3, n_init=1, random_state=0), _blobs(d=2, k=3))
    # integer centres: every distance below is computed exactly by BLAS and by the IR
    est.cluster_centers_ = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 6.0]])
    rows = np.array([[2.0, 0.0], [2.0, 2.0], [3.0, 3.0], [1.0, 3.0], [2.0, 1.0]])
    want = est.predict(rows)
    m = compile_model(est)
    got = evaluate(m.output("predict"), columns_from_matrix(m, rows))
    assert got.tolist() == want.tolist()
    assert got[0] == 0.0  # equidistant from centres 0 and 1
    assert got[2] == 1.0  # (3, 3): 18 from centre 0, 10 from centre 1, 10 from centre 2


# ------------------------------------------------------------------ parity


@pytest.mark.parametrize(
    "est",
    [KMeans(n_clusters=5, n_init=2, random_state=0), KMeans(n_clusters=8, n_init=1, init="random", random_state=1), MiniBatchKMeans(n_clusters=6, n_init=3, random_state=0)],
    ids=["kmeans", "kmeans_random_init", "minibatch"],
)
def test_parity_22_features(est):
    X = _blobs()
    check_parity(_fit(est, X), _with_edges(X, 150), ("predict", "transform"))


def test_parity_in_a_pipeline():
    X, _ = _data(300, 20, 150)
    est = _fit(make_pipeline(StandardScaler(), KMeans(n_clusters=4, n_init=2, random_state=0)), X)
    check_parity(est, _with_edges(X), ("predict", "transform"))


def test_distance_near_a_centre_is_within_sklearns_own_rounding():
    X = _blobs(d=20)
    est = _fit(KMeans(n_clusters=5, n_init=1, random_state=0), X)
    rows = est.cluster_centers_
    m = compile_model(est)
    got = evaluate(m.output("transform"), columns_from_matrix(m, rows))
    want = est.transform(rows)
    # ||x||^2 - 2 x.c + ||c||^2 cancels: both results are sqrt of rounding noise there
    noise = np.sqrt(8 * np.finfo(float).eps * (row_norms(rows, squared=True)[:, None] + row_norms(rows, squared=True)[None, :]))
    assert (np.abs(got - want) <= noise).all()
    assert (np.diag(got) <= noise.diagonal()).all()
    off = ~np.eye(len(rows), dtype=bool)
    assert np.allclose(got[off], want[off], rtol=1e-9, atol=1e-12)


def test_missing_input_gives_null_label_and_distances():
    X = _blobs(d=3, k=3)
    est = _fit(KMeans(n_clusters=3, n_init=1, random_state=0), X)
    m = compile_model(est)
    cols = {"x0": np.array([np.nan, 1.0]), "x1": np.array([0.0, 0.0]), "x2": np.array([0.0, 0.0])}
    assert np.isnan(evaluate(m.output("predict"), cols)[0]) and not np.isnan(evaluate(m.output("predict"), cols)[1])
    assert np.isnan(evaluate(m.output("transform"), cols)[0]).all()
    with pytest.raises(ValueError, match="NULL or NaN"):
        evaluate(compile_model(est, on_missing="error").output("predict"), cols)


# ------------------------------------------------------------------ refusals


def test_float32_model_is_refused():
    est = _fit(KMeans(n_clusters=2, n_init=1, random_state=0), _blobs(d=3, k=2).astype(np.float32))
    with pytest.raises(UnsupportedModelError, match="KMeans fitted on float32 data"):
        compile_model(est)


def test_bisecting_kmeans_is_refused_by_name():
    est = _fit(BisectingKMeans(n_clusters=2, random_state=0), _blobs(d=3, k=2))
    with pytest.raises(UnsupportedModelError, match="BisectingKMeans is not supported"):
        compile_model(est)


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    check_zoo_case(case)


def test_docstring_examples():
    from indb.compilers import cluster as module

    check_docstring_examples(module)
