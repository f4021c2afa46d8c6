"""MLPs: model -> IR structure (each unit built once), IR parity with scikit-learn, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier, MLPRegressor

from indb import ir
from indb.compilers import compile_model
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import check_docstring_examples, check_parity, check_zoo_case
from tests.zoo import neural as zoo
from tests.zoo.linear import _classes, _data, _with_edges
from tests.zoo.preprocessing import _fit

ACTIVATIONS = ("identity", "logistic", "tanh", "relu")



# ------------------------------------------------------------------ structure


def test_forward_pass_ir_for_a_tiny_network():
    net = _fit(MLPRegressor(hidden_layer_sizes=(2,), activation="tanh", max_iter=5, random_state=0), np.array([[0.0], [1.0], [2.0]]), [0.0, 1.0, 0.5])
    (w1, w2), (b1, b2) = net.coefs_, net.intercepts_
    x = ir.Feature("x0")
    hidden = [ir.func("tanh", ir.linear([x], w1[:, j], float(b1[j]))) for j in range(2)]
    assert compile_model(net).output("predict") == ir.linear(hidden, w2[:, 0], float(b2[0]))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_hidden_units_are_built_once_and_shared(activation):
    from indb.compilers.neural import output_layer
    from indb.compilers.converters import Context

    X, y = _data(200, 10, 160)
    net = _fit(MLPClassifier(hidden_layer_sizes=(7, 5), activation=activation, max_iter=20, random_state=0), X, _classes(y, ["a", "b", "c"]))
    names = [f"x{i}" for i in range(10)]
    z = output_layer(net, [ir.Feature(n) for n in names], Context(names))
    # every output unit refers to the very same layer-2 unit objects, and those to layer 1's
    units = [[t.left for t in zk.terms[:-1]] for zk in z]
    assert all(a is b for u in units[1:] for a, b in zip(units[0], u))
    inner = [[t.left for t in (u.args[0] if activation != "identity" else u).terms[:-1]] for u in units[0]]
    assert all(a is b for u in inner[1:] for a, b in zip(inner[0], u))
    # the IR grows with the number of weights, SQL without sharing with their product
    proba = compile_model(net).output("proba")
    n_weights = sum(w.size for w in net.coefs_)
    assert 2 * n_weights < ir.size(proba) < 6 * n_weights
    assert ir.inline_size(proba) > 20 * ir.size(proba)


def test_benchmark_mlp_ir_stays_linear_in_the_weights():
    X, y = _data(300, 20, 161)
    net = zoo.bench_mlp(X, _classes(y, ["low", "mid", "high"]))
    assert net.hidden_layer_sizes == (64, 64)
    m = compile_model(net)
    n_weights = sum(w.size for w in net.coefs_)  # 20*64 + 64*64 + 64*3
    size = ir.size(m.output("proba"))
    assert n_weights < size < 3 * n_weights, size
    assert ir.inline_size(m.output("proba")) > 1_000_000  # SQL would spell every path out: the PL/Python engine's job
    check_parity(net, _with_edges(X, 100), ("predict", "proba"))


# ------------------------------------------------------------------ parity


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_multiclass_parity_20_features_text_labels(activation):
    X, y = _data(400, 20, 162)
    net = _fit(MLPClassifier(hidden_layer_sizes=(12, 6), activation=activation, max_iter=200, random_state=0), X, _classes(y, ["n", "e", "s", "w"]))
    check_parity(net, _with_edges(X, 120), ("predict", "proba"))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_binary_parity_numeric_labels(activation):
    X, y = _data(300, 8, 163)
    net = _fit(MLPClassifier(hidden_layer_sizes=(6,), activation=activation, max_iter=200, random_state=0), X, _classes(y, [-1, 1]))
    assert net.out_activation_ == "logistic"
    check_parity(net, _with_edges(X), ("predict", "proba"))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_parity(activation, loss):
    X, y = _data(300, 20, 164)
    target = np.exp((y - y.mean()) / y.std()) if loss == "poisson" else y
    net = _fit(MLPRegressor(hidden_layer_sizes=(9, 4), activation=activation, loss=loss, max_iter=200, random_state=0), X, target)
    check_parity(net, _with_edges(X, 120), ("predict",))


def _nan_network(n_classes: int):
    """A network whose output is inf - inf = NaN for a huge first input, though no input is missing."""
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]] * 3)
    y = np.arange(len(X)) % n_classes
    net = _fit(MLPClassifier(hidden_layer_sizes=(2,), activation="identity", max_iter=5, random_state=0), X, y)
    # the hidden units overflow to +inf and -inf on their own (one product each, so in
    # any summation order and with or without fused multiply-add); the output adds them
    net.coefs_[0][:] = [[1e10, -1e10], [0.0, 0.0]]
    net.intercepts_[0][:] = 0.0
    net.coefs_[1][:] = 1.0
    return net


@pytest.mark.parametrize("n_classes", [2, 3])
def test_nan_outputs_follow_sklearns_label_rules(n_classes):
    net = _nan_network(n_classes)
    rows = np.array([[1e300, 0.0], [1.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(net.predict_proba(rows[:1])).all()
        want = net.predict(rows)
    m = check_parity(net, rows, ("predict", "proba"))
    got = evaluate(m.output("predict"), columns_from_matrix(m, rows))
    assert got.tolist() == want.tolist() and got[0] == 0  # NaN > 0.5 is false; argmax takes the first NaN


def test_missing_input_gives_null_label_even_where_argmax_would_pick_one():
    net = _nan_network(3)
    m = compile_model(net)
    cols = {"x0": np.array([np.nan]), "x1": np.array([0.0])}
    assert evaluate(m.output("predict"), cols)[0] != evaluate(m.output("predict"), cols)[0]  # NaN, not class 0
    with pytest.raises(ValueError, match="NULL or NaN"):
        evaluate(compile_model(net, on_missing="error").output("predict"), cols)


# ------------------------------------------------------------------ refusals


def test_multilabel_classifier_is_refused():
    X, y = _data(100, 4, 165)
    net = _fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, np.column_stack([y > 0, y > 1]).astype(int))
    with pytest.raises(UnsupportedModelError, match=r"MLPClassifier: multi-label classification \(n_outputs_=2\)"):
        compile_model(net)


def test_multi_output_regressor_is_refused():
    X, y = _data(100, 4, 166)
    net = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, np.column_stack([y, -y]))
    with pytest.raises(UnsupportedModelError, match=r"MLPRegressor: multi-output regression \(n_outputs_=2\)"):
        compile_model(net)


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    check_zoo_case(case)


def test_docstring_examples():
    from indb.compilers import neural as module

    check_docstring_examples(module, ignore_warnings=True)
