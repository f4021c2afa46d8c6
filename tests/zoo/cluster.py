"""Zoo cases: k-means (predict: the nearest centre; transform: the distances).

Rows: ordinary rows, all zeros, and each feature in turn at +1e300, -1e300 and NaN
(scikit-learn refuses NaN: NULL label, NULL distances). Infinite inputs are left out:
k-means refuses them.

Two kinds of rows are deliberately not here, because scikit-learn's own answer on them
is rounding noise of its (machine-dependent) BLAS: points halfway between two centres
(which centre is nearer), and points on a centre (``euclidean_distances`` computes
``||x||^2 - 2 x.c + ||c||^2``, whose cancellation leaves about ``sqrt(eps * ||x||^2)``
where the true distance is 0). ``tests/compilers/test_cluster.py`` tests the tie rule on
exactly representable ties and bounds the distance near a centre.
"""

from __future__ import annotations

import warnings

from tests.zoo import ZooCase
from tests.zoo.linear import _rng, _with_edges, lazy

OUTPUTS = ("predict", "transform")


def _kmeans(name: str, n_clusters: int, d: int, k: int, **kw):
    def make():
        rng = _rng(k)
        centres = rng.normal(size=(n_clusters, d)) * 6
        X = centres[rng.integers(0, n_clusters, 300)] + rng.normal(size=(300, d)) * rng.uniform(0.5, 3.0, d)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = lazy("sklearn.cluster", name)(n_clusters=n_clusters, random_state=0, **kw)().fit(X)
        return est, _with_edges(X)

    return make


CASES: list[ZooCase] = [
    ZooCase("kmeans_20f", _kmeans("KMeans", 6, 20, 50, n_init=3), outputs=OUTPUTS),
    ZooCase("kmeans_elkan", _kmeans("KMeans", 3, 5, 51, n_init=2, algorithm="elkan"), outputs=OUTPUTS),
    ZooCase("minibatch_kmeans", _kmeans("MiniBatchKMeans", 4, 8, 52, n_init=3, batch_size=64), outputs=OUTPUTS),
]
