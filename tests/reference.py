"""The expected answer for each row: the model's own output, where the model gives one.

scikit-learn refuses some rows outright (NaN for models without a missing-value rule,
an unknown category under ``handle_unknown='error'``, values beyond float32 for its
trees). For those rows indb's documented rule applies instead, which the IR evaluator
implements; ``Reference.rejected`` marks them so tests can check the rule separately.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from indb import ir
from indb.ir.evaluate import columns_from_matrix, evaluate

METHODS = {"predict": "predict", "proba": "predict_proba", "decision": "decision_function", "transform": "transform"}


@dataclass
class Reference:
    #: one list of expected values per output column
    columns: list[list[Any]]
    #: rows the model itself refused (their expectation comes from the IR evaluator)
    rejected: np.ndarray


def _rows(X: Any, lo: int, hi: int) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[lo:hi]
    return X[lo:hi]


def _as_2d(a: Any) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != object and a.dtype.kind in "US":
        a = a.astype(object)
    return a.reshape(len(a), -1)


def own_output(est: Any, X: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's own output (n, k) and a mask of the rows it refused."""
    method = getattr(est, METHODS[kind])
    n = len(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _as_2d(method(X)), np.zeros(n, dtype=bool)
        except (ValueError, TypeError):
            pass
        out: list[np.ndarray | None] = [None] * n
        rejected = np.zeros(n, dtype=bool)
        _accepted_rows(method, X, 0, n, out, rejected)
    width = next((len(r) for r in out if r is not None), 1)
    full = np.empty((n, width), dtype=object)
    for i, r in enumerate(out):
        if r is not None:
            full[i, :] = r
    return full, rejected


def _accepted_rows(method: Any, X: Any, lo: int, hi: int, out: list, rejected: np.ndarray) -> None:
    """Rows lo..hi-1 through ``method``: a refused block is halved until each refused row is
    alone (a few calls per refused row, where one call per row made pipelines crawl)."""
    try:
        block = _as_2d(method(_rows(X, lo, hi)))
    except (ValueError, TypeError):
        if hi - lo == 1:
            rejected[lo] = True
            return
        mid = (lo + hi) // 2
        _accepted_rows(method, X, lo, mid, out, rejected)
        _accepted_rows(method, X, mid, hi, out, rejected)
        return
    out[lo:hi] = list(block)


def reference(est: Any, model: ir.Model, X: Any, kind: str, own: Any = None) -> Reference:
    """Expected outputs; ``own`` replaces the estimator's methods (``ZooCase.reference``)."""
    own, rejected = own_output(est, X, kind) if own is None else own(est, X, kind)
    cols = columns_from_matrix(model, X)
    ev = np.asarray(evaluate(model.output(kind), cols), dtype=object).reshape(len(X), -1)
    exp = np.where(rejected[:, None], ev, own)
    return Reference([list(exp[:, j]) for j in range(exp.shape[1])], rejected)


def evaluator_output(model: ir.Model, X: Any, kind: str) -> list[list[Any]]:
    cols = columns_from_matrix(model, X)
    ev = np.asarray(evaluate(model.output(kind), cols), dtype=object).reshape(len(X), -1)
    return [list(ev[:, j]) for j in range(ev.shape[1])]
