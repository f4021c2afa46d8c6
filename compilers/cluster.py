"""Converters for scikit-learn's k-means: ``KMeans`` and ``MiniBatchKMeans``.

Both share ``_BaseKMeans.predict`` and ``transform``, mirrored here:

* ``predict`` is the index of the nearest centre, with scikit-learn's own distance
  formula from ``_k_means_lloyd.pyx``: ``d_j = ||c_j||^2 + (-2 * x . c_j)`` (the row's
  own norm is left out, it does not change the argmin), and its tie rule: the first
  centre with the smallest ``d_j`` wins (a strict ``<`` scan). ``||c_j||^2`` is
  scikit-learn's ``row_norms`` of the centres, folded at compile time.
* ``transform`` is ``euclidean_distances(X, cluster_centers_)`` for float64:
  ``sqrt(max((-2 * x . c_j + ||x||^2) + ||c_j||^2, 0))``, in that order.

scikit-learn computes ``x . c_j`` and ``||x||^2`` with BLAS/einsum kernels whose
summation order (and use of fused multiply-add) depends on the machine; the IR adds
left to right, so results agree to a few units in the last place, not bit for bit.
A point exactly equidistant from two centres can therefore, in principle, be assigned
differently; the zoo checks that ordinary and edge rows agree.

Missing values: k-means refuses NaN, so a row with a missing input has no label
(NULL) and missing distances (NaN propagates). Inputs of +-1e300 follow IEEE-754 like
numpy. A row whose distances come out NaN without a missing input (two inputs so large
that ``x . c_j`` overflows with both signs) gets a NULL label, where scikit-learn's scan
would pick centre 0.

Refused: models fitted on float32 data (their centres are float32 and scikit-learn
predicts in float32); ``BisectingKMeans`` (a different ``predict``).

    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> from indb.compilers import compile_model
    >>> km = KMeans(n_clusters=2, n_init=1, random_state=0).fit(np.array([[0.0], [0.1], [5.0], [5.1]]))
    >>> compile_model(km).output_kinds
    ('predict', 'transform')
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.utils.extmath import row_norms

from indb import ir
from indb.compilers.converters import Compiled, Context, label_guard, register
from indb.errors import UnsupportedModelError


def _dot(xs: Sequence[ir.Expr], weights: np.ndarray) -> ir.Expr:
    return ir.add(*[ir.mul(x, ir.const(float(w))) for x, w in zip(xs, weights)])


@register(KMeans, MiniBatchKMeans)
def convert_kmeans(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """predict (nearest centre, first on ties) and transform (Euclidean distances).

    >>> import numpy as np
    >>> from indb.compilers.converters import Context
    >>> km = KMeans(n_clusters=2, n_init=1, random_state=0).fit(np.array([[0.0], [4.0]]))
    >>> len(convert_kmeans(km, [ir.Feature("a")], Context(["a"])).transform)
    2
    """
    name = type(est).__name__
    centers = est.cluster_centers_
    if centers.dtype != np.float64:
        raise UnsupportedModelError(
            f"{name} fitted on {centers.dtype} data is not supported; supported: models fitted on float64 data "
            "(scikit-learn predicts a float32 model in float32)"
        )
    xs = [ctx.as_float(x, name) for x in inputs]
    minus_two = ir.const(-2.0)
    # each -2 x.c_j is built once and shared by predict and transform
    scaled = [ir.mul(minus_two, _dot(xs, c)) for c in centers]
    center_norms = row_norms(centers, squared=True)
    nearest = [ir.func("neg", ir.add(ir.const(float(cc)), s)) for cc, s in zip(center_norms, scaled)]
    labels = tuple(float(j) for j in range(len(centers)))
    predict = label_guard(ctx, nearest, ir.ArgMax(tuple(nearest), labels), f"{name}.predict")
    # einsum's SIMD order is the machine's; numpy's pairwise order is as close, and keeps
    # the overflow guards a backend may add around each addition shallow
    row_norm = ir.pairwise_sum([ir.mul(x, x) for x in xs])
    zero = ir.const(0.0)
    transform = [
        # a Sum node of its own: ir.add would flatten the row norm's terms into it
        ir.func("sqrt", ir.func("max", ir.Sum((s, row_norm, ir.const(float(cc)))), zero))
        for s, cc in zip(scaled, center_norms)
    ]
    return Compiled(predict=predict, transform=transform, names=[f"{name.lower()}{j}" for j in range(len(centers))])
