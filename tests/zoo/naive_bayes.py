"""Zoo cases: naive Bayes classifiers (predict, predict_proba).

Rows: ordinary rows, all zeros, and each feature in turn at +1e300, -1e300 and NaN.
scikit-learn refuses NaN here, so those rows must come back NULL. +-1e300 drives a
Gaussian likelihood to -inf for every class (scikit-learn then predicts the first class
and NaN probabilities), and BernoulliNB's binarization sends it to 1 or 0. Infinite
inputs are left out: every model here refuses them. Count models (Multinomial,
Complement) get non-negative counts for fitting; negative and huge values at predict
time are accepted by scikit-learn and follow the same arithmetic.
"""

from __future__ import annotations

import warnings

import numpy as np

from tests.zoo import ZooCase
from tests.zoo.linear import _classifier, _labels, _rng, _with_edges, lazy

OUTPUTS = ("predict", "proba")


def _nb(name: str):
    return lazy("sklearn.naive_bayes", name)


def _binary_features():
    def make():
        rng = _rng(43)
        X = (rng.random((300, 12)) < rng.uniform(0.1, 0.9, 12)).astype(float)
        score = X @ rng.normal(size=12) + rng.normal(scale=0.5, size=300)
        y = _labels(score, ["spam", "ham", "maybe"], [1 / 3, 2 / 3])
        est = lazy("sklearn.naive_bayes", "BernoulliNB")(binarize=None)().fit(X, y)
        return est, _with_edges(X)

    return make


def _counts(name: str, names: list, k: int):
    def make():
        rng = _rng(k)
        rates = rng.uniform(0.2, 6.0, size=(len(names), 15))
        y = rng.integers(0, len(names), size=300)
        X = rng.poisson(rates[y]).astype(float)
        labels = np.asarray(names, dtype=object)[y]
        if not isinstance(names[0], str):
            labels = labels.astype(type(names[0]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = _nb(name)()().fit(X, labels)
        return est, _with_edges(X)

    return make


CASES: list[ZooCase] = [
    ZooCase("nb_gaussian_25f_text", _classifier(_nb("GaussianNB")(), ["north", "east", "south", "west"], d=25, k=40), outputs=OUTPUTS),
    ZooCase("nb_gaussian_binary_numeric", _classifier(_nb("GaussianNB")(var_smoothing=1e-6), [0, 1], d=6, k=41), outputs=OUTPUTS),
    ZooCase("nb_bernoulli_binarized_text", _classifier(_nb("BernoulliNB")(binarize=1.0), ["a", "b", "c"], d=8, k=42), outputs=OUTPUTS),
    ZooCase("nb_bernoulli_01", _binary_features(), outputs=OUTPUTS),
    ZooCase("nb_multinomial_counts", _counts("MultinomialNB", ["sport", "tech", "news"], 44), outputs=OUTPUTS),
    ZooCase("nb_complement_counts", _counts("ComplementNB", [1, 2, 3, 4], 45), outputs=OUTPUTS),
]
