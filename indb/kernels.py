"""A compiled tree-ensemble kernel for the PL/Python engine's batch path (optional: numba).

numpy evaluates a tree ensemble level by level over all rows, a dozen array passes per
level and tree: three times slower than scikit-learn's own compiled traversal. When
numba is importable (Debian's ``python3-numba``, built on the same LLVM as
PostgreSQL's JIT), this module compiles one generic kernel per backend that walks
the structure-of-arrays trees row by row, with exactly the evaluator's semantics:
``x <= threshold`` (``<`` when strict), NaN follows ``missing_left``, and each row's
sums are added tree by tree in order, so results are bitwise those of
``indb.evaluate``. Without numba, ``tree_sums`` returns None and the caller uses
numpy.

Ensembles with categorical splits or text inputs stay on the numpy path.
"""

from __future__ import annotations

import numpy as np

try:
    from indb import ir
except ImportError:  # pragma: no cover - loaded stand-alone inside PL/Python
    import ir  # type: ignore[no-redef]

_kernel = None
_tried = False


def _build():
    from numba import njit

    @njit(cache=False, nogil=True)
    def kernel(X, feat, thr, left, right, mleft, values, roots, base, strict, out):  # pragma: no cover - compiled
        n = X.shape[0]
        k = values.shape[1]
        for i in range(n):
            for j in range(k):
                out[i, j] = base[j]
            for t in range(roots.shape[0]):
                node = roots[t]
                while feat[node] >= 0:
                    x = X[i, feat[node]]
                    if x != x:
                        node = left[node] if mleft[node] else right[node]
                    elif (x < thr[node]) if strict else (x <= thr[node]):
                        node = left[node]
                    else:
                        node = right[node]
                for j in range(k):
                    out[i, j] += values[node, j]

    return kernel


def available() -> bool:
    """True when numba is importable (the kernel is compiled on first use)."""
    global _tried, _kernel
    if not _tried:
        _tried = True
        try:
            _kernel = _build()
        except Exception:  # noqa: BLE001 - any failure to import or build means "use numpy"
            _kernel = None
    return _kernel is not None


class Flat:
    """An ensemble's trees concatenated into flat arrays (built once per ensemble)."""

    def __init__(self, te: "ir.TreeEnsemble") -> None:
        feats, thrs, lefts, rights, mls, vals, roots = [], [], [], [], [], [], []
        off = 0
        for t in te.trees:
            roots.append(off)
            f = np.asarray(t.feature, dtype=np.int64)
            feats.append(f)
            thrs.append(np.asarray(t.threshold, dtype=np.float64))
            lefts.append(np.asarray(t.left, dtype=np.int64) + off)
            rights.append(np.asarray(t.right, dtype=np.int64) + off)
            mls.append(np.asarray(t.missing_left, dtype=np.bool_))
            vals.append(np.asarray(t.value, dtype=np.float64).reshape(len(f), te.n_outputs))
            off += len(f)
        self.feat = np.concatenate(feats)
        self.thr = np.concatenate(thrs)
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.mleft = np.concatenate(mls)
        self.values = np.concatenate(vals)
        self.roots = np.asarray(roots, dtype=np.int64)
        self.base = np.asarray(te.base, dtype=np.float64)
        self.strict = bool(te.strict)


def supported(te: "ir.TreeEnsemble") -> bool:
    return not any(t.categories and any(c is not None for c in t.categories) for t in te.trees) and all(
        i.type == ir.FLOAT for i in te.inputs
    )


def tree_sums(te: "ir.TreeEnsemble", flat: Flat, inputs: list[np.ndarray]) -> np.ndarray | None:
    """(n, n_outputs) sums, or None when the kernel cannot be used."""
    if not available() or not supported(te):
        return None
    X = np.ascontiguousarray(np.column_stack(inputs), dtype=np.float64) if inputs else np.empty((0, 0))
    out = np.empty((X.shape[0], te.n_outputs))
    _kernel(X, flat.feat, flat.thr, flat.left, flat.right, flat.mleft, flat.values, flat.roots, flat.base, flat.strict, out)
    return out
