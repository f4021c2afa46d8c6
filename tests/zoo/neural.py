"""Zoo cases: multi-layer perceptrons (predict, predict_proba), and the benchmark MLP.

Rows: ordinary rows, all zeros, and each feature in turn at +1e300, -1e300 and NaN
(scikit-learn refuses NaN: every output NULL). +-1e300 saturates logistic and tanh
units and drives relu and identity units to huge values or +-inf, sometimes to
``inf - inf = NaN`` in a later layer, where scikit-learn's own label rules apply
(``NaN > 0.5`` is false; ``argmax`` returns the first NaN). Infinite inputs are left
out: MLPs refuse them.

The networks are small on purpose: SQL writes every hidden unit out at each of its
uses, so its size grows with the product of the layer widths (``ir.inline_size``);
wide networks such as the benchmark's 2x64 MLP (``bench_mlp``, tagged ``large``) are
for the PL/Python engine.
"""

from __future__ import annotations

import warnings
from typing import Any

from tests.zoo import ZooCase
from tests.zoo.linear import _classifier, _data, _labels, _regressor, _with_edges, lazy


def _mlp(name: str):
    return lazy("sklearn.neural_network", name)


def bench_mlp(X: Any, y: Any) -> Any:
    """The benchmark's MLP: ``MLPClassifier(hidden_layer_sizes=(64, 64))`` fitted on (X, y)."""
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier(hidden_layer_sizes=(64, 64), random_state=0).fit(X, y)


def _bench_case():
    X, y = _data(400, 20, 60)
    return bench_mlp(X, _labels(y, ["low", "mid", "high"], [1 / 3, 2 / 3])), _with_edges(X)


def _scaled_pipeline():
    def make():
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X, y = _data(300, 20, 61)
        labels = _labels(y, ["bronze", "silver", "gold"], [1 / 3, 2 / 3])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), random_state=0, max_iter=400)).fit(X, labels)
        return est, _with_edges(X)

    return make


PROBA = ("predict", "proba")

CASES: list[ZooCase] = [
    ZooCase("mlp_classifier_relu_text", _classifier(_mlp("MLPClassifier")(hidden_layer_sizes=(6,), random_state=0, max_iter=300), ["red", "green", "blue"], d=8, k=62), outputs=PROBA),
    ZooCase("mlp_classifier_tanh_binary_20f", _classifier(_mlp("MLPClassifier")(hidden_layer_sizes=(5,), activation="tanh", random_state=0, max_iter=300), [0, 1], d=20, k=63), outputs=PROBA),
    ZooCase("mlp_classifier_logistic_2layers", _classifier(_mlp("MLPClassifier")(hidden_layer_sizes=(4, 3), activation="logistic", random_state=0, max_iter=300), [1, 2, 3, 4], d=6, k=64), outputs=PROBA),
    ZooCase("mlp_classifier_identity", _classifier(_mlp("MLPClassifier")(hidden_layer_sizes=(3,), activation="identity", random_state=0, max_iter=300), ["x", "y", "z"], d=5, k=65), outputs=PROBA),
    ZooCase("mlp_classifier_scaled_pipeline_20f", _scaled_pipeline(), outputs=PROBA),
    ZooCase("mlp_regressor_relu_20f", _regressor(_mlp("MLPRegressor")(hidden_layer_sizes=(6, 3), random_state=0, max_iter=300), d=20, k=66)),
    ZooCase("mlp_regressor_tanh", _regressor(_mlp("MLPRegressor")(hidden_layer_sizes=(5,), activation="tanh", random_state=0, max_iter=300), k=67)),
    ZooCase("mlp_regressor_poisson", _regressor(_mlp("MLPRegressor")(hidden_layer_sizes=(4,), loss="poisson", solver="lbfgs", random_state=0, max_iter=300), target=lambda y: (y - y.min()) / y.std(), k=68)),
    ZooCase("mlp_bench_64x64", _bench_case, outputs=PROBA, tags=frozenset({"large"})),
]
